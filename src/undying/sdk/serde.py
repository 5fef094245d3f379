"""Serialization: handler inputs and outputs, state values, ``ctx.run`` results, call parameters.

A :class:`Serde` turns values into bytes and back. It also names the content type of those
bytes and gives the JSON schema that the discovery manifest advertises.

Picking a serde from a type hint
--------------------------------

:func:`serde_for` maps an annotation to a serde. It first unwraps ``Annotated[...]`` and
``NewType``; then the first rule that matches wins:

1. no annotation (``inspect.Parameter.empty``), ``Any`` or ``object``: :class:`JsonSerde` with
   no schema, so the value is whatever :mod:`json` makes of the body;
2. ``None``: :class:`NoneSerde`, an empty body both ways;
3. ``bytes``: :class:`BytesSerde`, the body as it is;
4. a hint that mentions a pydantic model or pydantic dataclass anywhere (``Model``,
   ``list[Model]``, a dataclass with a ``Model`` field): :class:`PydanticSerde` of the whole hint;
5. a hint that mentions a ``msgspec.Struct`` anywhere: :class:`MsgspecSerde` of the whole hint;
6. a hint that mentions a dataclass anywhere (``Point``, ``list[Point]``, ``Point | None``):
   :class:`DataclassSerde`;
7. a ``TypedDict``: :class:`TypedDictSerde`;
8. anything else built from ``bool``, ``int``, ``float``, ``str``, ``None``, lists, tuples, sets,
   dicts with string keys, ``Literal``, enums and unions: :class:`JsonSerde` with a schema.

So the richest library a hint mentions handles the whole hint: pydantic also validates
dataclasses, TypedDicts and enums, msgspec also decodes them, and the standard-library serdes
handle everything in rule 8. A hint that mentions both pydantic and msgspec types is refused.
pydantic and msgspec are never imported here: their classes only exist once the application has
imported them, so rules 4 and 5 look them up in :data:`sys.modules`.

Any other hint (``datetime``, a plain class, an unresolvable forward reference) raises
:class:`TypeError`: pass a serde explicitly, or use a pydantic model. Forward references are
resolved for dataclass and TypedDict fields; a top-level hint must already be a type (use
:func:`typing.get_type_hints` on the handler).

The standard-library serdes
---------------------------

:class:`JsonSerde`, :class:`DataclassSerde` and :class:`TypedDictSerde` share one engine that
compiles a hint once into a schema, a validator and a converter:

* bodies are compact UTF-8 JSON with non-ASCII characters as they are; NaN and the infinities
  are refused both ways, as JSON has no such values;
* decoded values are checked against the hint: exact JSON types (a boolean is not an integer,
  an integer is a number), ``Literal`` and enum values, tuple lengths, required TypedDict keys
  and dataclass fields; ``Any`` positions and unknown object keys pass through unchecked;
* positions that need it are converted: dataclasses, enums, tuples and sets;
* ``Any`` positions (and a serde without a hint) write dataclass instances as objects of their
  fields and enum members as their values, and read back whatever the JSON is;
* without a hint (or with ``Any``) deserializing costs exactly one :func:`json.loads`.

Empty bodies and errors
-----------------------

An empty (or all-whitespace) body deserializes to ``None`` whenever ``None`` is a valid value of
the hint (no hint, ``Any``, ``X | None``), and is an error otherwise. Data that cannot be
deserialized, and values that cannot be serialized, raise :class:`~undying.errors.SerdeError`.

Serdes are immutable and safe to share between threads; :func:`serde_for` caches them per hint.
"""

from __future__ import annotations

import copy
import dataclasses
import enum
import functools
import json
import sys
import types
import typing
from collections.abc import Iterator
from typing import (
    TYPE_CHECKING,
    Any,
    Final,
    Generic,
    Protocol,
    TypeVar,
    cast,
    get_args,
    get_origin,
    overload,
)

from undying.errors import SerdeError
from undying.sdk._shapes import (
    ANY,
    Load,
    Mismatch,
    compile_hint,
    describe,
    is_any,
    is_typeddict,
    unwrap,
    validate,
)

if TYPE_CHECKING:
    import msgspec
    from pydantic import TypeAdapter

__all__ = [
    "BytesSerde",
    "DataclassSerde",
    "JsonSerde",
    "MsgspecSerde",
    "NoneSerde",
    "PydanticSerde",
    "Serde",
    "TypedDictSerde",
    "serde_for",
]

T = TypeVar("T")

_JSON: Final = "application/json"
_NoneType: Final = types.NoneType


class Serde(Protocol[T]):
    """Turns values of type ``T`` into bytes and back."""

    @property
    def content_type(self) -> str:
        """The MIME type of the bytes, e.g. ``application/json``."""
        ...

    def serialize(self, value: T) -> bytes:
        """Encode ``value``.

        Raises:
            SerdeError: the value cannot be encoded.
        """
        ...

    def deserialize(self, data: bytes) -> T:
        """Decode ``data``.

        Raises:
            SerdeError: the data is not a valid encoding of a ``T``.
        """
        ...

    def json_schema(self) -> dict[str, Any] | None:
        """The JSON schema of the encoded values (for the discovery manifest); None if unknown."""
        ...


# --- The JSON codec ------------------------------------------------------------------------


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _default(value: object) -> object:
    # Called by the encoder only for what JSON has no type for, so it costs nothing otherwise.
    if isinstance(value, enum.Enum):
        return value.value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: getattr(value, f.name) for f in dataclasses.fields(value)}
    raise TypeError(f"{type(value).__qualname__} is not JSON serializable")


_encode: Final = json.JSONEncoder(
    ensure_ascii=False, allow_nan=False, separators=(",", ":"), default=_default
).encode
_decode: Final = json.JSONDecoder(parse_constant=_refuse_constant).decode


def _is_blank(data: bytes) -> bool:
    return not bytes(data).strip()


# --- The serdes -----------------------------------------------------------------------------


class JsonSerde(Generic[T]):
    """JSON through the standard library, checked against (and converted to) a type hint.

    Without a hint (or with ``Any``) values go through :mod:`json` as they are and
    :meth:`json_schema` is None. With one, decoded values are checked against it, converted
    where it needs (enums, tuples, sets, dataclasses) and the schema describes it; see the
    module documentation for the rules.

    Args:
        hint: the type of the values.

    Raises:
        TypeError: the hint is not one the standard-library engine handles.
    """

    __slots__ = ("_check", "_dump", "_none_ok", "_schema", "_what")

    content_type: str = _JSON

    @overload
    def __init__(self: JsonSerde[Any]) -> None: ...
    @overload
    def __init__(self, hint: type[T]) -> None: ...
    @overload
    def __init__(self: JsonSerde[Any], hint: object) -> None: ...
    def __init__(self, hint: object = Any) -> None:
        shape, schema = compile_hint(hint)
        self._schema: dict[str, Any] | None = schema if shape is not ANY else None
        self._dump = shape.dump
        self._check: Load | None = None
        if shape.json_types is not None or shape.load is not None:
            self._check = functools.partial(validate, shape)
        self._what = "JSON" if shape is ANY else describe(hint)
        try:
            validate(shape, None)
            self._none_ok = True
        except Mismatch:
            self._none_ok = False

    def serialize(self, value: T) -> bytes:
        """Encode ``value`` as compact UTF-8 JSON.

        Raises:
            SerdeError: the value cannot be encoded (not JSON-able, NaN, a circular reference).
        """
        try:
            data = value if self._dump is None else self._dump(value)
            return _encode(data).encode()
        except (TypeError, ValueError, RecursionError) as exc:
            raise SerdeError(
                f"cannot serialize {type(value).__qualname__} as {self._what}: {exc}"
            ) from exc

    def deserialize(self, data: bytes) -> T:
        """Decode UTF-8 JSON and check it against the hint.

        Raises:
            SerdeError: the data is not JSON, or does not fit the hint.
        """
        try:
            value = _decode(str(data, "utf-8"))
        except ValueError as exc:
            if _is_blank(data):
                if self._none_ok:
                    return cast(T, None)
                raise SerdeError(f"cannot deserialize {self._what}: empty body") from None
            raise SerdeError(f"cannot deserialize {self._what}: invalid JSON: {exc}") from None
        if self._check is None:
            return cast(T, value)
        try:
            return cast(T, self._check(value))
        except Mismatch as exc:
            raise SerdeError(
                f"cannot deserialize {self._what}: {exc.where()}: {exc.message}"
            ) from None

    def json_schema(self) -> dict[str, Any] | None:
        """The JSON schema of the hint; None without one.

        Dataclasses, TypedDicts and enums are defined in ``$defs`` (a top-level one inline).
        """
        return copy.deepcopy(self._schema)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({'' if self._what == 'JSON' else self._what})"


class DataclassSerde(JsonSerde[T]):
    """JSON for dataclasses, through the standard library.

    ``cls`` is a dataclass or a hint that mentions one (``list[Point]``, ``Point | None``). The
    dataclasses are encoded as objects of all their fields and built back from their ``init``
    fields; nested dataclasses, lists, dicts, optionals, enums and the rest of the
    :class:`JsonSerde` hints work at any depth. Unknown keys are ignored; missing fields take
    their defaults.

    Args:
        cls: the dataclass, or a hint that mentions one.

    Raises:
        TypeError: ``cls`` mentions no dataclass, or has a field type the engine cannot handle.
    """

    __slots__ = ()

    @overload
    def __init__(self, cls: type[T]) -> None: ...
    @overload
    def __init__(self: DataclassSerde[Any], cls: object) -> None: ...
    def __init__(self, cls: object) -> None:
        if "dataclass" not in _libraries(cls):
            raise TypeError(f"{describe(cls)} is not a dataclass and mentions none")
        super().__init__(cls)


class TypedDictSerde(JsonSerde[T]):
    """JSON for a ``TypedDict``: plain dicts, with their required keys checked.

    Values stay dicts. Deserializing checks that the required keys are there and that the known
    keys' values fit their annotations; unknown keys pass through.

    Args:
        cls: the TypedDict class.

    Raises:
        TypeError: ``cls`` is not a TypedDict.
    """

    __slots__ = ()

    @overload
    def __init__(self, cls: type[T]) -> None: ...
    @overload
    def __init__(self: TypedDictSerde[Any], cls: object) -> None: ...
    def __init__(self, cls: object) -> None:
        if not is_typeddict(unwrap(cls)):
            raise TypeError(f"{describe(cls)} is not a TypedDict")
        super().__init__(cls)


class NoneSerde:
    """No value: an empty body both ways (``None`` ↔ ``b""``); ``null`` is also accepted."""

    __slots__ = ()

    content_type: str = _JSON

    def serialize(self, value: None) -> bytes:
        """Encode ``None`` as an empty body.

        Raises:
            SerdeError: ``value`` is not None.
        """
        if value is not None:
            raise SerdeError(f"cannot serialize {type(value).__qualname__}: expected None")
        return b""

    def deserialize(self, data: bytes) -> None:
        """Accept an empty (or all-whitespace) body, or ``null``.

        Raises:
            SerdeError: the body holds something else.
        """
        body = bytes(data).strip()
        if body and body != b"null":
            raise SerdeError("cannot deserialize None: expected an empty body")

    def json_schema(self) -> dict[str, Any] | None:
        """``{"type": "null"}``."""
        return {"type": "null"}

    def __repr__(self) -> str:
        return "NoneSerde()"


class BytesSerde:
    """Raw bytes, as they are (``application/octet-stream``); no schema."""

    __slots__ = ()

    content_type: str = "application/octet-stream"

    def serialize(self, value: bytes) -> bytes:
        """Return ``value`` (a ``bytearray`` or ``memoryview`` is copied into ``bytes``).

        Raises:
            SerdeError: ``value`` is not bytes-like.
        """
        if type(value) is bytes:
            return value
        if isinstance(value, bytes | bytearray | memoryview):  # pyright: ignore[reportUnnecessaryIsInstance]
            return bytes(value)
        raise SerdeError(f"cannot serialize {type(value).__qualname__} as bytes")

    def deserialize(self, data: bytes) -> bytes:
        """Return ``data`` as ``bytes``."""
        return bytes(data)

    def json_schema(self) -> dict[str, Any] | None:
        """None: the bytes have no JSON schema."""
        return None

    def __repr__(self) -> str:
        return "BytesSerde()"


class PydanticSerde(Generic[T]):
    """JSON through pydantic v2, for a model or any type a ``TypeAdapter`` accepts.

    Values are serialized by alias (so the output matches the schema and validates back) and
    validated on the way in. pydantic is imported when the serde is made.

    Args:
        model: a ``BaseModel`` subclass, or any type (``list[Model]``, a dataclass, ...).

    Raises:
        ImportError: pydantic is not installed.
    """

    __slots__ = ("_adapter", "_none_ok", "_what")

    content_type: str = _JSON

    @overload
    def __init__(self, model: type[T]) -> None: ...
    @overload
    def __init__(self: PydanticSerde[Any], model: object) -> None: ...
    def __init__(self, model: object) -> None:
        from pydantic import TypeAdapter

        self._adapter: TypeAdapter[T] = TypeAdapter(cast("type[T]", model))
        self._what = describe(model)
        try:
            self._adapter.validate_python(None)
            self._none_ok = True
        except ValueError:
            self._none_ok = False

    def serialize(self, value: T) -> bytes:
        """Encode ``value`` with ``TypeAdapter.dump_json`` (by alias).

        Raises:
            SerdeError: the value does not fit the type, or cannot be encoded.
        """
        try:
            return self._adapter.dump_json(value, by_alias=True, warnings="error")
        except (TypeError, ValueError) as exc:
            raise SerdeError(
                f"cannot serialize {type(value).__qualname__} as {self._what}: {exc}"
            ) from exc

    def deserialize(self, data: bytes) -> T:
        """Validate JSON ``data`` with ``TypeAdapter.validate_json``.

        Raises:
            SerdeError: the data is not JSON, or fails validation.
        """
        try:
            return self._adapter.validate_json(data)
        except ValueError as exc:
            if self._none_ok and _is_blank(data):
                return cast(T, None)
            raise SerdeError(f"cannot deserialize {self._what}: {exc}") from None

    def json_schema(self) -> dict[str, Any] | None:
        """The type's JSON schema, as pydantic generates it (validation mode)."""
        return self._adapter.json_schema()

    def __repr__(self) -> str:
        return f"PydanticSerde({self._what})"


class MsgspecSerde(Generic[T]):
    """JSON through msgspec, for a ``msgspec.Struct`` or any type msgspec decodes.

    msgspec is imported when the serde is made.

    Args:
        type_: a ``msgspec.Struct`` subclass, or any type msgspec supports.

    Raises:
        ImportError: msgspec is not installed.
        TypeError: msgspec does not support the type.
    """

    __slots__ = ("_decoder", "_encoder", "_none_ok", "_type", "_what")

    content_type: str = _JSON

    @overload
    def __init__(self, type_: type[T]) -> None: ...
    @overload
    def __init__(self: MsgspecSerde[Any], type_: object) -> None: ...
    def __init__(self, type_: object) -> None:
        import msgspec

        self._type = type_
        self._what = describe(type_)
        self._decoder: msgspec.json.Decoder[T] = msgspec.json.Decoder(cast("type[T]", type_))
        self._encoder = msgspec.json.Encoder()
        try:
            msgspec.convert(None, type_)
            self._none_ok = True
        except msgspec.ValidationError:
            self._none_ok = False

    def serialize(self, value: T) -> bytes:
        """Encode ``value`` with ``msgspec.json``.

        Raises:
            SerdeError: the value cannot be encoded.
        """
        import msgspec

        try:
            return self._encoder.encode(value)
        except (TypeError, ValueError, msgspec.MsgspecError) as exc:
            raise SerdeError(
                f"cannot serialize {type(value).__qualname__} as {self._what}: {exc}"
            ) from exc

    def deserialize(self, data: bytes) -> T:
        """Decode and validate JSON ``data`` with ``msgspec.json``.

        Raises:
            SerdeError: the data is not JSON, or does not fit the type.
        """
        import msgspec

        try:
            return self._decoder.decode(data)
        except msgspec.MsgspecError as exc:
            if self._none_ok and _is_blank(data):
                return cast(T, None)
            raise SerdeError(f"cannot deserialize {self._what}: {exc}") from None

    def json_schema(self) -> dict[str, Any] | None:
        """The type's JSON schema, as ``msgspec.json.schema`` generates it."""
        import msgspec

        return msgspec.json.schema(self._type)

    def __repr__(self) -> str:
        return f"MsgspecSerde({self._what})"


# --- Picking a serde ------------------------------------------------------------------------


def _is_pydantic(hint: object) -> bool:
    pydantic = sys.modules.get("pydantic")
    if pydantic is None or not isinstance(hint, type):
        return False
    if issubclass(hint, pydantic.BaseModel):
        return True
    return dataclasses.is_dataclass(hint) and "__pydantic_validator__" in vars(hint)


def _is_msgspec(hint: object) -> bool:
    msgspec = sys.modules.get("msgspec")
    return msgspec is not None and isinstance(hint, type) and issubclass(hint, msgspec.Struct)


def _mentioned(hint: object) -> Iterator[object]:
    """Every hint ``hint`` is built from, through dataclass and TypedDict fields, once each."""
    seen: dict[int, object] = {}  # keeps what it saw alive, so that ids are not reused
    stack = [hint]
    while stack:
        h = unwrap(stack.pop())
        if id(h) in seen:
            continue
        seen[id(h)] = h
        yield h
        if _is_pydantic(h) or _is_msgspec(h):
            continue
        stack.extend(get_args(h))
        origin = get_origin(h)
        if origin is not None:
            stack.append(origin)
        elif isinstance(h, type) and (is_typeddict(h) or dataclasses.is_dataclass(h)):
            try:
                stack.extend(typing.get_type_hints(h).values())
            except Exception:
                pass  # the engine reports it, if it gets there


def _libraries(hint: object) -> set[str]:
    found: set[str] = set()
    for h in _mentioned(hint):
        if _is_pydantic(h):
            found.add("pydantic")
        elif _is_msgspec(h):
            found.add("msgspec")
        elif isinstance(h, type) and dataclasses.is_dataclass(h):
            found.add("dataclass")
    return found


def _pick(hint: object) -> Serde[Any]:
    hint = unwrap(hint)
    if is_any(hint):
        return JsonSerde()
    if hint is None or hint is _NoneType:
        return NoneSerde()
    if hint is bytes:
        return BytesSerde()
    found = _libraries(hint)
    if "pydantic" in found:
        if "msgspec" in found:
            raise TypeError(f"{describe(hint)} mixes pydantic and msgspec types")
        return PydanticSerde(hint)
    if "msgspec" in found:
        return MsgspecSerde(hint)
    if "dataclass" in found:
        return DataclassSerde(hint)
    if is_typeddict(hint):
        return TypedDictSerde(hint)
    return JsonSerde(hint)


_pick_cached: Final = functools.lru_cache(maxsize=1024)(_pick)


def serde_for(hint: object) -> Serde[Any]:
    """The serde for values annotated with ``hint``; see the module documentation for the rules.

    Args:
        hint: a type hint; ``inspect.Parameter.empty`` when there is no annotation.

    Returns:
        A serde, shared with every other caller that asks for the same hint.

    Raises:
        TypeError: no serde handles the hint.
    """
    try:
        hash(hint)
    except TypeError:
        return _pick(hint)
    return _pick_cached(hint)
