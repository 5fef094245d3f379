"""Row filters taken from a query's ``WHERE``, evaluated in Python while building a table.

:func:`translate` turns a DataFusion filter expression over one table into a
:class:`Predicate`: comparisons of a column with a literal (``=``, ``!=``, ``<``…, ``IN``,
``NOT IN``, ``LIKE``), ``IS [NOT] NULL``, and ``AND``/``OR`` of those. What it cannot translate
(functions, casts, ``NOT``, ``ILIKE``, comparisons between columns…) becomes "no filter", so a
translated predicate never rejects a row the query would keep; :func:`translate` also says
whether the translation is *exact*, i.e. keeps exactly the rows the expression keeps.

SQL's three-valued logic needs no special care: without ``NOT``, a row passes a filter only if
it evaluates to TRUE, and treating NULL (a comparison with a missing value) as FALSE gives the
same answer.

Values are compared the way the builders hold them: strings, integers, booleans, and timestamps
and durations as integer milliseconds.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

import pyarrow as pa  # type: ignore[import-untyped]

__all__ = [
    "And",
    "Compare",
    "InList",
    "IsNull",
    "Like",
    "Or",
    "Predicate",
    "both",
    "bounds",
    "compile_predicate",
    "either",
    "translate",
]

Getter = Callable[[Any], Any]
Test = Callable[[Any], bool]

_OPS: Final[dict[str, Callable[[Any, Any], bool]]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_FLIPPED: Final = {"=": "=", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


class Predicate:
    """A row filter over some columns."""

    __slots__ = ()

    @property
    def columns(self) -> frozenset[str]:
        """The columns the filter reads."""
        raise NotImplementedError


@dataclass(frozen=True, slots=True)
class Compare(Predicate):
    column: str
    op: str
    value: Any

    @property
    def columns(self) -> frozenset[str]:
        return frozenset({self.column})


@dataclass(frozen=True, slots=True)
class InList(Predicate):
    column: str
    values: frozenset[Any]
    negated: bool

    @property
    def columns(self) -> frozenset[str]:
        return frozenset({self.column})


@dataclass(frozen=True, slots=True)
class IsNull(Predicate):
    column: str
    negated: bool

    @property
    def columns(self) -> frozenset[str]:
        return frozenset({self.column})


@dataclass(frozen=True, slots=True)
class Like(Predicate):
    column: str
    pattern: str
    negated: bool

    @property
    def columns(self) -> frozenset[str]:
        return frozenset({self.column})


@dataclass(frozen=True, slots=True)
class And(Predicate):
    parts: tuple[Predicate, ...]

    @property
    def columns(self) -> frozenset[str]:
        return frozenset().union(*(p.columns for p in self.parts))


@dataclass(frozen=True, slots=True)
class Or(Predicate):
    parts: tuple[Predicate, ...]

    @property
    def columns(self) -> frozenset[str]:
        return frozenset().union(*(p.columns for p in self.parts))


# ---- translation -------------------------------------------------------------------------------


def _kind(t: Any) -> str | None:
    """How values of Arrow type ``t`` are held: ``str``, ``int``, ``bool``, ``ms`` or None."""
    types = pa.types
    if types.is_string(t) or types.is_large_string(t):
        return "str"
    if types.is_integer(t):
        return "int"
    if types.is_boolean(t):
        return "bool"
    if (types.is_timestamp(t) or types.is_duration(t)) and t.unit == "ms":
        return "ms"
    return None


def _literal(expr: Any, kind: str) -> tuple[bool, Any]:
    """``(True, value)`` if ``expr`` is a non-NULL literal of ``kind``, else ``(False, None)``."""
    if type(expr.to_variant()).__name__ != "Literal":
        return False, None
    try:
        scalar = expr.python_value()
    except Exception:  # an exotic literal
        return False, None
    if not isinstance(scalar, pa.Scalar) or not scalar.is_valid:
        return False, None
    if _kind(scalar.type) != kind:
        return False, None
    value = scalar.value if kind == "ms" else scalar.as_py()
    return True, value


def _column(expr: Any, schema: Any) -> tuple[str, str] | None:
    """``(name, kind)`` if ``expr`` is a column of ``schema`` with a comparable type."""
    node = expr.to_variant()
    if type(node).__name__ != "Column":
        return None
    name = str(node.name())
    if name not in schema.names:
        return None
    kind = _kind(schema.field(name).type)
    return None if kind is None else (name, kind)


def _is_column(expr: Any, schema: Any) -> str | None:
    node = expr.to_variant()
    if type(node).__name__ != "Column":
        return None
    name = str(node.name())
    return name if name in schema.names else None


def translate(expr: Any, schema: Any) -> tuple[Predicate | None, bool]:
    """The predicate for DataFusion expression ``expr`` over a table of ``schema``.

    Returns ``(predicate, exact)``; ``predicate`` is None when nothing could be translated.
    """
    node = expr.to_variant()
    kind = type(node).__name__
    if kind == "BinaryExpr":
        op = str(node.op()).upper()
        if op in ("AND", "OR"):
            left, lex = translate(node.left(), schema)
            right, rex = translate(node.right(), schema)
            if op == "AND":
                return both(left, right), lex and rex and left is not None and right is not None
            if left is None or right is None:
                return None, False
            return Or((left, right)), lex and rex
        if op not in _OPS:
            return None, False
        col, lit, flipped = node.left(), node.right(), False
        found = _column(col, schema)
        if found is None:
            col, lit, flipped = lit, col, True
            found = _column(col, schema)
        if found is None:
            return None, False
        ok, value = _literal(lit, found[1])
        if not ok:
            return None, False
        return Compare(found[0], _FLIPPED[op] if flipped else op, value), True
    if kind == "InList":
        found = _column(node.expr(), schema)
        if found is None:
            return None, False
        values = []
        for item in node.list():
            ok, value = _literal(item, found[1])
            if not ok:
                return None, False
            values.append(value)
        return InList(found[0], frozenset(values), bool(node.negated())), True
    if kind in ("IsNull", "IsNotNull"):
        name = _is_column(node.expr(), schema)
        if name is None:
            return None, False
        return IsNull(name, kind == "IsNotNull"), True
    if kind == "Like":
        return _like(expr, node, schema)
    return None, False


def _like(expr: Any, node: Any, schema: Any) -> tuple[Predicate | None, bool]:
    found = _column(node.expr(), schema)
    if found is None or found[1] != "str" or node.escape_char() is not None:
        return None, False
    # ILIKE is a Like node too; only its text tells them apart.
    text = str(expr.canonical_name())
    col = str(node.expr().canonical_name())
    if not text.startswith((col + " LIKE ", col + " NOT LIKE ")):
        return None, False
    ok, pattern = _literal(node.pattern(), "str")
    if not ok or "\\" in pattern:
        return None, False
    return Like(found[0], pattern, bool(node.negated())), True


def both(a: Predicate | None, b: Predicate | None) -> Predicate | None:
    """The AND of ``a`` and ``b`` (a missing one is no filter)."""
    if a is None:
        return b
    if b is None:
        return a
    parts = [*(a.parts if isinstance(a, And) else (a,)), *(b.parts if isinstance(b, And) else (b,))]
    return And(tuple(parts))


def either(preds: list[Predicate | None]) -> Predicate | None:
    """The OR of ``preds`` (None if any is None: no filter)."""
    if not preds or any(p is None for p in preds):
        return None
    kept = [p for p in preds if p is not None]
    return kept[0] if len(kept) == 1 else Or(tuple(kept))


# ---- evaluation -------------------------------------------------------------------------------


def _like_regex(pattern: str) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def compile_predicate(pred: Predicate, getters: Mapping[str, Getter]) -> Test:
    """A function telling whether a row passes ``pred``; ``getters`` read columns of a row."""
    if isinstance(pred, And):
        tests = [compile_predicate(p, getters) for p in pred.parts]
        return lambda row: all(t(row) for t in tests)
    if isinstance(pred, Or):
        tests = [compile_predicate(p, getters) for p in pred.parts]
        return lambda row: any(t(row) for t in tests)
    if isinstance(pred, Compare):
        get, fn, value = getters[pred.column], _OPS[pred.op], pred.value

        def compare(row: Any) -> bool:
            v = get(row)
            return v is not None and fn(v, value)

        return compare
    if isinstance(pred, InList):
        get, values, negated = getters[pred.column], pred.values, pred.negated

        def member(row: Any) -> bool:
            v = get(row)
            return v is not None and (v in values) != negated

        return member
    if isinstance(pred, IsNull):
        get, negated = getters[pred.column], pred.negated
        return lambda row: (get(row) is None) != negated
    if isinstance(pred, Like):
        get, regex, negated = getters[pred.column], _like_regex(pred.pattern), pred.negated

        def like(row: Any) -> bool:
            v = get(row)
            return v is not None and (regex.fullmatch(v) is not None) != negated

        return like
    raise TypeError(f"unknown predicate {pred!r}")  # pragma: no cover - exhaustive


def bounds(pred: Predicate | None, column: str) -> tuple[int | None, int | None]:
    """Inclusive integer bounds on ``column`` that every passing row respects."""
    lo: int | None = None
    hi: int | None = None
    parts = pred.parts if isinstance(pred, And) else (() if pred is None else (pred,))
    for p in parts:
        if not isinstance(p, Compare) or p.column != column or not isinstance(p.value, int):
            continue
        v = p.value
        if p.op in (">", ">=", "="):
            low = v + 1 if p.op == ">" else v
            lo = low if lo is None else max(lo, low)
        if p.op in ("<", "<=", "="):
            high = v - 1 if p.op == "<" else v
            hi = high if hi is None else min(hi, high)
    return lo, hi
