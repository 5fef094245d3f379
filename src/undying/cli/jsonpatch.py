"""JSON Patch (RFC 6902) on plain JSON values, for ``undying state patch``.

>>> apply_patch({"count": 1}, [{"op": "replace", "path": "/count", "value": 2}])
{'count': 2}
"""

from __future__ import annotations

import copy
from typing import Any

__all__ = ["PatchError", "apply_patch"]


class PatchError(ValueError):
    """A patch that is malformed or does not apply to the document."""


def _tokens(pointer: Any) -> list[str]:
    if not isinstance(pointer, str) or (pointer and not pointer.startswith("/")):
        raise PatchError(f"{pointer!r} is not a JSON pointer (it starts with '/')")
    if pointer == "":
        return []
    return [t.replace("~1", "/").replace("~0", "~") for t in pointer[1:].split("/")]


def _index(container: list[Any], token: str, *, for_add: bool) -> int:
    if for_add and token == "-":
        return len(container)
    if not token.isdigit() or (token != "0" and token.startswith("0")):
        raise PatchError(f"{token!r} is not an array index")
    index = int(token)
    if index > len(container) or (index == len(container) and not for_add):
        raise PatchError(f"array index {index} is out of range")
    return index


def _parent(doc: Any, tokens: list[str]) -> Any:
    node = doc
    for token in tokens[:-1]:
        if isinstance(node, dict):
            if token not in node:
                raise PatchError(f"no member {token!r}")
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, for_add=False)]
        else:
            raise PatchError(f"cannot descend into {type(node).__name__} at {token!r}")
    return node


def _get(doc: Any, pointer: Any) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        return doc
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"no member {last!r} at {pointer}")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, for_add=False)]
    raise PatchError(f"nothing at {pointer}")


def _remove(doc: Any, pointer: Any) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"no member {last!r} to remove at {pointer}")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, for_add=False))
    raise PatchError(f"nothing to remove at {pointer}")


def _add(doc: Any, pointer: Any, value: Any, *, replace: bool) -> Any:
    tokens = _tokens(pointer)
    if not tokens:
        return value
    parent = _parent(doc, tokens)
    last = tokens[-1]
    if isinstance(parent, dict):
        if replace and last not in parent:
            raise PatchError(f"no member {last!r} to replace at {pointer}")
        parent[last] = value
    elif isinstance(parent, list):
        index = _index(parent, last, for_add=not replace)
        if replace:
            parent[index] = value
        else:
            parent.insert(index, value)
    else:
        raise PatchError(f"cannot add into {type(parent).__name__} at {pointer}")
    return doc


def apply_patch(document: Any, patch: Any) -> Any:
    """``document`` with the operations of ``patch`` applied (the input is not modified).

    Raises:
        PatchError: the patch is not a list of operations, or one of them does not apply.
    """
    if not isinstance(patch, list):
        raise PatchError("a JSON patch is a list of operations")
    doc = copy.deepcopy(document)
    for number, op in enumerate(patch, 1):
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"operation {number} needs 'op' and 'path': {op!r}")
        kind, path = op["op"], op["path"]
        try:
            if kind in ("add", "replace", "test") and "value" not in op:
                raise PatchError("it needs a 'value'")
            if kind == "add":
                doc = _add(doc, path, copy.deepcopy(op["value"]), replace=False)
            elif kind == "replace":
                doc = _add(doc, path, copy.deepcopy(op["value"]), replace=True)
            elif kind == "remove":
                _remove(doc, path)
            elif kind in ("move", "copy"):
                if "from" not in op:
                    raise PatchError("it needs a 'from'")
                if kind == "move":
                    if path.startswith(op["from"] + "/"):
                        raise PatchError("cannot move a value into itself")
                    value = _remove(doc, op["from"])
                else:
                    value = copy.deepcopy(_get(doc, op["from"]))
                doc = _add(doc, path, value, replace=False)
            elif kind == "test":
                if _get(doc, path) != op["value"]:
                    raise PatchError(f"test failed: {path} is not {op['value']!r}")
            else:
                raise PatchError(f"unknown op {kind!r}")
        except PatchError as e:
            raise PatchError(f"operation {number} ({kind} {path}): {e}") from None
    return doc
