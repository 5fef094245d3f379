"""The engine of the standard-library serdes: type hints compiled into shapes.

A :class:`Shape` is a hint compiled once: its JSON schema, a validator (with a converter where
the hint needs one: dataclasses, enums, tuples, sets) for values :mod:`json` decoded, and a
converter back for values to encode. :mod:`undying.sdk.serde` documents the rules.
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import json
import sys
import types
import typing
from collections.abc import Callable, Mapping, MutableMapping, MutableSequence, Sequence
from collections.abc import MutableSet as AbcMutableSet
from collections.abc import Set as AbcSet
from typing import (
    Annotated,
    Any,
    Final,
    Literal,
    NotRequired,
    Required,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
)

__all__ = [
    "ANY",
    "Load",
    "Mismatch",
    "Shape",
    "compile_hint",
    "describe",
    "is_any",
    "is_typeddict",
    "unwrap",
    "validate",
]

_NoneType: Final = types.NoneType

_JSON_NAMES: Final[dict[type, str]] = {
    _NoneType: "null",
    bool: "boolean",
    int: "integer",
    float: "number",
    str: "string",
    list: "array",
    dict: "object",
}


def _json_name(value: object) -> str:
    return _JSON_NAMES.get(type(value), type(value).__qualname__)


def _expected(json_types: frozenset[type]) -> str:
    names = {_JSON_NAMES[t] for t in json_types}
    if "number" in names:
        names.discard("integer")
    return " or ".join(sorted(names))


def describe(hint: object) -> str:
    """``hint`` as error messages show it."""
    if isinstance(hint, type):
        return hint.__qualname__
    return repr(hint).replace("typing.", "")


class Mismatch(Exception):
    """A decoded value does not fit the hint; ``path`` grows while the error unwinds."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message
        self.path: list[str] = []

    def where(self) -> str:
        return "$" + "".join(reversed(self.path))


def _type_of(value: object) -> type[Any]:
    return type(value)


def _key_segment(key: str) -> str:
    return f".{key}" if key.isidentifier() else f"[{json.dumps(key, ensure_ascii=False)}]"


Load = Callable[[Any], Any]
"""A validator or converter of one value."""


@dataclasses.dataclass(frozen=True, slots=True)
class Shape:
    """A compiled hint.

    A decoded value fits when its type is in ``json_types`` (None: any) and ``load`` (None:
    nothing more to check) accepts it; ``load`` returns the Python value, a new object only
    when ``converts``. ``dump`` (None: as it is) turns a Python value into one :mod:`json`
    encodes; ``py_types`` (None: any) are the Python types of the values, for unions.
    """

    schema: dict[str, Any]
    json_types: frozenset[type] | None
    py_types: tuple[type, ...] | None
    load: Load | None = None
    converts: bool = False
    dump: Load | None = None


def validate(shape: Shape, value: Any) -> Any:
    """Check a decoded ``value`` against ``shape`` and return the Python value.

    Raises:
        Mismatch: the value does not fit.
    """
    json_types = shape.json_types
    if json_types is not None and type(value) not in json_types:
        raise Mismatch(f"expected {_expected(json_types)}, got {_json_name(value)}")
    load = shape.load
    return value if load is None else load(value)


def _primitive(json_type: str, *types_: type) -> Shape:
    py = tuple(t for t in types_ if t is not _NoneType) or (_NoneType,)
    return Shape({"type": json_type}, frozenset(types_), py)


ANY: Final = Shape({}, None, None)
_PRIMITIVES: Final[dict[object, Shape]] = {
    _NoneType: _primitive("null", _NoneType),
    bool: _primitive("boolean", bool),
    int: _primitive("integer", int),
    float: _primitive("number", float, int),
    str: _primitive("string", str),
}
_LIST: Final = frozenset({list})
_DICT: Final = frozenset({dict})
_SEQUENCES: Final[dict[object, type]] = {
    list: list,
    Sequence: list,
    MutableSequence: list,
    tuple: tuple,
    set: set,
    AbcMutableSet: set,
    frozenset: frozenset,
    AbcSet: frozenset,
}
_MAPPINGS: Final[frozenset[object]] = frozenset({dict, Mapping, MutableMapping})
_TypeAliasType: Final = getattr(typing, "TypeAliasType", None)
_WRAPPERS: Final = frozenset({Annotated, Required, NotRequired})


def unwrap(hint: object) -> object:
    """Strip ``Annotated``, ``Required``, ``NewType``... from the outside of ``hint``."""
    while True:
        if get_origin(hint) in _WRAPPERS:
            hint = get_args(hint)[0]
        elif isinstance(hint, typing.NewType):
            hint = hint.__supertype__
        elif _TypeAliasType is not None and isinstance(hint, _TypeAliasType):
            hint = cast(Any, hint).__value__  # pragma: no cover - Python 3.12+
        else:
            return hint


def is_any(hint: object) -> bool:
    """Whether ``hint`` says nothing: ``Any``, ``object`` or no annotation."""
    return hint is Any or hint is object or hint is inspect.Parameter.empty


def is_typeddict(hint: object) -> bool:
    """Whether ``hint`` is a TypedDict class (of :mod:`typing` or ``typing_extensions``)."""
    if typing.is_typeddict(hint):
        return True
    extensions = sys.modules.get("typing_extensions")
    return extensions is not None and bool(extensions.is_typeddict(hint))


def _field_hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls, include_extras=True)
    except Exception as exc:
        raise TypeError(f"cannot resolve the annotations of {cls.__qualname__}: {exc}") from exc


class _Compiler:
    """Compiles one hint; dataclasses, TypedDicts and enums become ``$defs``."""

    def __init__(self) -> None:
        self.defs: dict[str, dict[str, Any]] = {}
        self.refs: dict[str, int] = {}
        self.named: dict[type, tuple[str, Shape]] = {}

    def compile(self, hint: object) -> tuple[Shape, dict[str, Any]]:
        shape = self.shape(hint)
        schema = shape.schema
        ref = schema.get("$ref")
        if ref is not None and len(schema) == 1:
            name = ref.rpartition("/")[2]
            if self.refs[name] == 1:
                schema = self.defs.pop(name)
        if self.defs:
            schema = {**schema, "$defs": self.defs}
        return shape, schema

    def shape(self, hint: object) -> Shape:
        hint = unwrap(hint)
        if is_any(hint) or isinstance(hint, TypeVar):
            return ANY
        if hint is None:
            hint = _NoneType
        if isinstance(hint, type) and hint in _PRIMITIVES:
            return _PRIMITIVES[hint]
        origin, args = get_origin(hint), get_args(hint)
        if origin is None and isinstance(hint, type) and (hint in _SEQUENCES or hint in _MAPPINGS):
            origin = hint
        bare = getattr(hint, "__args__", None) is None  # list, typing.List: no parameters
        if origin is Literal:
            return self._literal(args)
        if origin is Union or origin is types.UnionType:
            return self._union([self.shape(a) for a in args])
        if origin in _SEQUENCES:
            return self._sequence(origin, args, bare)
        if origin in _MAPPINGS:
            return self._mapping(args)
        if isinstance(hint, type):
            cls: type[Any] = hint
            if issubclass(cls, enum.Enum):
                return self._named(cls, self._enum)
            if dataclasses.is_dataclass(cls):
                return self._named(cls, self._dataclass)
            if is_typeddict(cls):
                return self._named(cls, self._typeddict)
        if isinstance(origin, type) and dataclasses.is_dataclass(origin):
            return self.shape(origin)  # a generic dataclass: its type variables are Any
        raise TypeError(
            f"undying's standard-library serdes cannot handle {describe(hint)}: pass a serde "
            "explicitly, or use a pydantic model"
        )

    def _named(self, cls: type, build: Callable[[type, str], Shape]) -> Shape:
        known = self.named.get(cls)
        if known is None:
            name = cls.__name__
            if name in self.refs:
                name = f"{cls.__module__}.{cls.__qualname__}"
            self.refs[name] = 0
            known = name, build(cls, name)
        self.refs[known[0]] += 1
        return known[1]

    def _literal(self, values: tuple[Any, ...]) -> Shape:
        for value in values:
            if type(value) not in _PRIMITIVES or type(value) is float:
                raise TypeError(f"unsupported Literal value {value!r}")
        json_types = frozenset(_type_of(v) for v in values)
        allowed = frozenset((_type_of(v), v) for v in values)
        schema: dict[str, Any] = (
            {"const": values[0]} if len(values) == 1 else {"enum": list(values)}
        )
        if len(json_types) == 1:
            schema["type"] = _PRIMITIVES[next(iter(json_types))].schema["type"]
        shown = ", ".join(repr(v) for v in values)

        def load(value: Any) -> Any:
            if (type(value), value) not in allowed:
                raise Mismatch(f"expected one of {shown}, got {value!r}")
            return value

        return Shape(schema, json_types, tuple(json_types), load)

    def _union(self, members: list[Shape]) -> Shape:
        schema = {"anyOf": [m.schema for m in members]}
        json_types: frozenset[type] | None = frozenset()
        py_types: tuple[type, ...] | None = ()
        for m in members:
            json_types = (
                None if json_types is None or m.json_types is None else json_types | m.json_types
            )
            py_types = None if py_types is None or m.py_types is None else py_types + m.py_types
        load: Load | None = None
        if any(m.load is not None for m in members):

            def load_union(value: Any) -> Any:
                kind = _type_of(value)
                failure: Mismatch | None = None
                for m in members:
                    if m.json_types is not None and kind not in m.json_types:
                        continue
                    if m.load is None:
                        return value
                    try:
                        return m.load(value)
                    except Mismatch as exc:
                        failure = failure or exc
                if failure is None:  # pragma: no cover - json_types already admitted the value
                    raise Mismatch(f"no member of the union accepts {_json_name(value)}")
                raise failure

            load = load_union

        dump: Load | None = None
        if any(m.dump is not None for m in members):

            def dump_union(value: Any) -> Any:
                for m in members:
                    if m.py_types is None or isinstance(value, m.py_types):
                        return value if m.dump is None else m.dump(value)
                return value

            dump = dump_union

        converts = any(m.converts for m in members)
        return Shape(schema, json_types, py_types, load, converts, dump)

    def _sequence(self, origin: object, args: tuple[Any, ...], bare: bool) -> Shape:
        kind = _SEQUENCES[origin]
        if kind is tuple and not bare and (len(args) != 2 or args[1] is not Ellipsis):
            return self._fixed_tuple(args)
        item = self.shape(args[0]) if args else ANY
        schema: dict[str, Any] = {"type": "array", "items": item.schema}
        if kind is set or kind is frozenset:
            schema["uniqueItems"] = True
        checks = item.json_types is not None or item.load is not None
        load: Load | None = None
        if kind is list and not item.converts:
            if checks:

                def load_list(value: list[Any]) -> Any:
                    i = 0
                    try:
                        for i, x in enumerate(value):  # noqa: B007 - i is read on failure
                            validate(item, x)
                    except Mismatch as exc:
                        exc.path.append(f"[{i}]")
                        raise
                    return value

                load = load_list

        elif not checks:
            load = _checked(kind)
        else:
            make = _checked(kind)

            def load_items(value: list[Any]) -> Any:
                i, out = 0, list[Any]()
                try:
                    for i, x in enumerate(value):  # noqa: B007 - i is read on failure
                        out.append(validate(item, x))
                except Mismatch as exc:
                    exc.path.append(f"[{i}]")
                    raise
                return out if kind is list else make(out)

            load = load_items

        dump: Load | None = None
        if item.dump is not None:
            item_dump = item.dump

            def dump_items(value: Any) -> Any:
                return [item_dump(x) for x in value]

            dump = dump_items

        elif kind is set or kind is frozenset:
            dump = list
        converts = kind is not list or item.converts
        py_types = (kind,) if kind is not frozenset else (frozenset, set)
        return Shape(schema, _LIST, py_types, load, converts, dump)

    def _fixed_tuple(self, args: tuple[Any, ...]) -> Shape:
        items = [self.shape(a) for a in args]
        n = len(items)
        schema: dict[str, Any] = {"type": "array", "minItems": n, "maxItems": n}
        if items:
            schema["prefixItems"] = [i.schema for i in items]

        def load(value: list[Any]) -> Any:
            if len(value) != n:
                raise Mismatch(f"expected {n} items, got {len(value)}")
            out: list[Any] = []
            for i, (item, x) in enumerate(zip(items, value, strict=True)):
                try:
                    out.append(validate(item, x))
                except Mismatch as exc:
                    exc.path.append(f"[{i}]")
                    raise
            return tuple(out)

        dump: Load | None = None
        if any(i.dump is not None for i in items):

            def dump_tuple(value: Any) -> Any:
                return [
                    x if i.dump is None else i.dump(x) for i, x in zip(items, value, strict=True)
                ]

            dump = dump_tuple

        return Shape(schema, _LIST, (tuple,), load, True, dump)

    def _mapping(self, args: tuple[Any, ...]) -> Shape:
        if args and unwrap(args[0]) is not str and not is_any(unwrap(args[0])):
            raise TypeError(f"JSON object keys are strings, not {describe(args[0])}")
        item = self.shape(args[1]) if args else ANY
        schema: dict[str, Any] = {"type": "object"}
        if item.schema:
            schema["additionalProperties"] = item.schema
        load: Load | None = None
        if item.json_types is not None or item.load is not None:
            converts = item.converts

            def load_map(value: dict[str, Any]) -> Any:
                out = {} if converts else value
                for key, x in value.items():
                    try:
                        y = validate(item, x)
                    except Mismatch as exc:
                        exc.path.append(_key_segment(key))
                        raise
                    if converts:
                        out[key] = y
                return out

            load = load_map

        dump: Load | None = None
        if item.dump is not None:
            item_dump = item.dump

            def dump_map(value: Any) -> Any:
                return {k: item_dump(x) for k, x in value.items()}

            dump = dump_map

        return Shape(schema, _DICT, (Mapping,), load, item.converts, dump)

    def _enum(self, cls: type, name: str) -> Shape:
        members = list(cast("type[enum.Enum]", cls))
        values = [m.value for m in members]
        json_types = frozenset(_type_of(v) for v in values)
        if not json_types <= _PRIMITIVES.keys():
            raise TypeError(f"the values of {cls.__qualname__} are not JSON scalars")
        schema: dict[str, Any] = {"title": cls.__name__, "enum": values}
        if len(json_types) == 1:
            schema["type"] = _PRIMITIVES[next(iter(json_types))].schema["type"]
        self.defs[name] = schema
        by_value = {(_type_of(v), v): m for v, m in zip(values, members, strict=True)}

        def load(value: Any) -> Any:
            key = (_type_of(value), value)
            member = by_value.get(key)
            if member is None:
                raise Mismatch(f"{value!r} is not a valid {cls.__qualname__}")
            return member

        def dump(value: Any) -> Any:
            return cls(value).value

        ref = {"$ref": f"#/$defs/{name}"}
        return Shape(ref, json_types or None, (cls,), load, True, dump)

    def _dataclass(self, cls: type, name: str) -> Shape:
        codec = _DataclassCodec(cls)
        shape = Shape({"$ref": f"#/$defs/{name}"}, _DICT, (cls,), codec.load, True, codec.dump)
        self.named[cls] = name, shape  # before the fields, which may refer to cls
        hints = _field_hints(cls)
        properties: dict[str, Any] = {}
        required: list[str] = []
        fields: list[tuple[str, Shape, bool, bool]] = []
        for f in dataclasses.fields(cls):
            field = self.shape(hints[f.name])
            must = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
            fields.append((f.name, field, f.init, must))
            properties[f.name] = _with_default(field.schema, f.default)
            if must and f.init:
                required.append(f.name)
        codec.fields = tuple(fields)
        schema: dict[str, Any] = {"title": cls.__name__, "type": "object"}
        schema["properties"] = properties
        if required:
            schema["required"] = required
        self.defs[name] = schema
        return shape

    def _typeddict(self, cls: type, name: str) -> Shape:
        codec = _TypedDictCodec(cls)
        ref = {"$ref": f"#/$defs/{name}"}
        # converts: a recursive field may see the shape before its fields are known
        shape = Shape(ref, _DICT, (dict,), codec.load, True, codec.dump)
        self.named[cls] = name, shape
        hints = _field_hints(cls)
        fields = {key: self.shape(hint) for key, hint in hints.items()}
        codec.fields = fields
        codec.required = tuple(k for k in fields if _required(cls, k, hints[k]))
        codec.converts = any(f.converts for f in fields.values())
        codec.dumps = any(f.dump is not None for f in fields.values())
        schema: dict[str, Any] = {"title": cls.__name__, "type": "object"}
        schema["properties"] = {k: f.schema for k, f in fields.items()}
        if codec.required:
            schema["required"] = list(codec.required)
        self.defs[name] = schema
        return shape


def _required(cls: type, key: str, hint: object) -> bool:
    # With string annotations the class cannot see ``NotRequired`` (Python < 3.14), so the
    # resolved hint decides first.
    while get_origin(hint) is Annotated:
        hint = get_args(hint)[0]
    if get_origin(hint) is NotRequired:
        return False
    if get_origin(hint) is Required:
        return True
    return key in getattr(cls, "__required_keys__", ())


def _checked(kind: type) -> Load:
    def make(value: list[Any]) -> Any:
        try:
            return kind(value)
        except TypeError as exc:  # unhashable items of a set
            raise Mismatch(str(exc)) from None

    return make


def _with_default(schema: dict[str, Any], default: object) -> dict[str, Any]:
    if type(default) in _PRIMITIVES:
        return {**schema, "default": default}
    return schema


class _DataclassCodec:
    """Loads and dumps one dataclass; ``fields`` is filled after the shapes it refers to."""

    def __init__(self, cls: type) -> None:
        self.cls = cls
        self.fields: tuple[tuple[str, Shape, bool, bool], ...] = ()

    def load(self, value: dict[str, Any]) -> Any:
        kwargs = {}
        for name, field, init, required in self.fields:
            if not init:
                continue
            if name in value:
                try:
                    kwargs[name] = validate(field, value[name])
                except Mismatch as exc:
                    exc.path.append(_key_segment(name))
                    raise
            elif required:
                raise Mismatch(f"missing required field {name!r} of {self.cls.__qualname__}")
        try:
            return self.cls(**kwargs)
        except (TypeError, ValueError) as exc:
            raise Mismatch(f"{self.cls.__qualname__}: {exc}") from None

    def dump(self, value: Any) -> Any:
        if not isinstance(value, self.cls):
            raise TypeError(f"expected {self.cls.__qualname__}, got {type(value).__qualname__}")
        out: dict[str, Any] = {}
        for name, field, _, _ in self.fields:
            x = getattr(value, name)
            out[name] = x if field.dump is None else field.dump(x)
        return out


class _TypedDictCodec:
    """Checks (and converts, if a field needs it) one TypedDict."""

    def __init__(self, cls: type) -> None:
        self.name = cls.__qualname__
        self.fields: dict[str, Shape] = {}
        self.required: tuple[str, ...] = ()
        self.converts = False
        self.dumps = False

    def load(self, value: dict[str, Any]) -> Any:
        for key in self.required:
            if key not in value:
                raise Mismatch(f"missing required key {key!r} of {self.name}")
        out = dict(value) if self.converts else value
        for key, field in self.fields.items():
            if key in value:
                try:
                    x = validate(field, value[key])
                except Mismatch as exc:
                    exc.path.append(_key_segment(key))
                    raise
                if self.converts:
                    out[key] = x
        return out

    def dump(self, value: Mapping[str, Any]) -> Any:
        if not self.dumps:
            return value
        out = dict(value)
        for key, field in self.fields.items():
            if field.dump is not None and key in out:
                out[key] = field.dump(out[key])
        return out


def compile_hint(hint: object) -> tuple[Shape, dict[str, Any]]:
    """Compile ``hint`` into its shape and its whole JSON schema (with ``$defs``).

    Raises:
        TypeError: the hint (or a field of a dataclass or TypedDict in it) is not supported.
    """
    return _Compiler().compile(hint)
