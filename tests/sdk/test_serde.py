"""The SDK's serdes: round trips, schemas, errors, empty bodies and the rules of serde_for."""

from __future__ import annotations

import dataclasses
import datetime
import enum
import inspect
import json
import subprocess
import sys
from typing import Annotated, Any, Literal, NewType, NotRequired, Optional, TypedDict, Union

import msgspec
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from undying.errors import SerdeError, UndyingError
from undying.sdk.serde import (
    BytesSerde,
    DataclassSerde,
    JsonSerde,
    MsgspecSerde,
    NoneSerde,
    PydanticSerde,
    Serde,
    TypedDictSerde,
    serde_for,
)

# --- Types used by the tests (module level, so that their string annotations resolve) --------


class Color(enum.Enum):
    RED = "red"
    BLUE = "blue"


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


@dataclasses.dataclass
class Inner:
    n: int
    tags: list[str] = dataclasses.field(default_factory=list)


@dataclasses.dataclass
class Outer:
    name: str
    color: Color
    inner: Inner | None = None
    items: list[Inner] = dataclasses.field(default_factory=list)
    by_key: dict[str, Inner] = dataclasses.field(default_factory=dict)
    pair: tuple[int, str] = (0, "")
    ratio: float = 1.0


@dataclasses.dataclass
class Node:
    value: int
    children: list[Node]


@dataclasses.dataclass
class Positive:
    n: int

    def __post_init__(self) -> None:
        if self.n <= 0:
            raise ValueError("n must be positive")


@dataclasses.dataclass
class Computed:
    a: int
    doubled: int = dataclasses.field(init=False)

    def __post_init__(self) -> None:
        self.doubled = 2 * self.a


@dataclasses.dataclass
class Broken:
    x: Undefined  # type: ignore[name-defined]  # noqa: F821


class Greeting(TypedDict):
    name: str
    count: NotRequired[int]


class Palette(TypedDict):
    main: Color
    others: list[Color]


class TreeDict(TypedDict):
    label: str
    kids: list[TreeDict]


class Person(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(populate_by_name=True)

    name: str
    age: int = pydantic.Field(alias="yearsOld")


@dataclasses.dataclass
class Holder:
    person: Person


class Point(msgspec.Struct):
    x: int
    y: int


class Weird:
    """A class no serde knows."""


UserId = NewType("UserId", str)


# --- JsonSerde without a hint: the hot path ----------------------------------------------------


def test_untyped_json_round_trip_is_compact_utf8() -> None:
    serde = JsonSerde()
    value = {"name": "Zoë", "tags": ["a", "b"], "n": 3, "ok": True, "none": None}
    data = serde.serialize(value)
    assert data == '{"name":"Zoë","tags":["a","b"],"n":3,"ok":true,"none":null}'.encode()
    assert serde.deserialize(data) == value
    assert serde.content_type == "application/json"
    assert serde.json_schema() is None
    assert repr(serde) == "JsonSerde()"


@pytest.mark.parametrize("body", [b"", b"  \n"])
def test_untyped_json_reads_an_empty_body_as_none(body: bytes) -> None:
    assert JsonSerde().deserialize(body) is None


def test_json_accepts_bytearray_and_memoryview() -> None:
    assert JsonSerde().deserialize(bytearray(b"[1]")) == [1]  # type: ignore[arg-type]
    assert JsonSerde().deserialize(memoryview(b"[1]")) == [1]  # type: ignore[arg-type]


@pytest.mark.parametrize("body", [b"{", b"[1,]", b"\xff\xfe", b"NaN", b"[-Infinity]", b"1 2"])
def test_json_refuses_bad_data(body: bytes) -> None:
    with pytest.raises(SerdeError, match="invalid JSON"):
        JsonSerde().deserialize(body)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), object(), {1, 2}, b"raw"])
def test_json_refuses_values_json_cannot_encode(value: object) -> None:
    with pytest.raises(SerdeError, match="cannot serialize"):
        JsonSerde().serialize(value)


def test_untyped_json_writes_dataclasses_and_enums_as_plain_json() -> None:
    value = [Inner(1, ["a"]), {"c": Color.RED, "l": Level.LOW}]
    data = JsonSerde().serialize(value)
    assert data == b'[{"n":1,"tags":["a"]},{"c":"red","l":1}]'
    assert JsonSerde().deserialize(data) == [{"n": 1, "tags": ["a"]}, {"c": "red", "l": 1}]
    with pytest.raises(SerdeError, match="type is not JSON serializable"):
        JsonSerde().serialize(Inner)


def test_json_refuses_circular_values() -> None:
    loop: list[object] = []
    loop.append(loop)
    with pytest.raises(SerdeError, match="Circular"):
        JsonSerde().serialize(loop)


def test_serde_error_is_an_undying_error_and_a_value_error() -> None:
    with pytest.raises(SerdeError) as info:
        JsonSerde().deserialize(b"{")
    assert isinstance(info.value, UndyingError)
    assert isinstance(info.value, ValueError)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(), children, max_size=5)
    ),
    max_leaves=30,
)


@given(json_values)
def test_json_round_trips_every_json_value(value: object) -> None:
    serde = JsonSerde()
    data = serde.serialize(value)
    assert serde.deserialize(data) == value
    assert json.loads(data) == value


@given(json_values)
def test_typed_any_round_trips_every_json_value(value: object) -> None:
    serde = JsonSerde(list[Any])
    assert serde.deserialize(serde.serialize([value])) == [value]


# --- JsonSerde with a hint --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "schema"),
    [
        (int, {"type": "integer"}),
        (str, {"type": "string"}),
        (float, {"type": "number"}),
        (bool, {"type": "boolean"}),
        (list[int], {"type": "array", "items": {"type": "integer"}}),
        (list, {"type": "array", "items": {}}),
        (dict[str, bool], {"type": "object", "additionalProperties": {"type": "boolean"}}),
        (dict[str, Any], {"type": "object"}),
        (Optional[int], {"anyOf": [{"type": "integer"}, {"type": "null"}]}),  # noqa: UP045
        (int | str, {"anyOf": [{"type": "integer"}, {"type": "string"}]}),
        (Literal["a", "b"], {"enum": ["a", "b"], "type": "string"}),
        (Literal[1], {"const": 1, "type": "integer"}),
        (Literal["a", 1], {"enum": ["a", 1]}),
        (tuple[int, ...], {"type": "array", "items": {"type": "integer"}}),
        (
            tuple[int, str],
            {
                "type": "array",
                "minItems": 2,
                "maxItems": 2,
                "prefixItems": [{"type": "integer"}, {"type": "string"}],
            },
        ),
        (frozenset[str], {"type": "array", "items": {"type": "string"}, "uniqueItems": True}),
        (Color, {"title": "Color", "enum": ["red", "blue"], "type": "string"}),
        (Level, {"title": "Level", "enum": [1, 2], "type": "integer"}),
        (Annotated[int, "doc"], {"type": "integer"}),
        (UserId, {"type": "string"}),
    ],
)
def test_typed_json_schemas(hint: object, schema: dict[str, Any]) -> None:
    assert JsonSerde(hint).json_schema() == schema


def test_json_schema_is_a_copy() -> None:
    serde = JsonSerde(list[int])
    schema = serde.json_schema()
    assert schema is not None
    schema["items"]["type"] = "string"
    assert serde.json_schema() == {"type": "array", "items": {"type": "integer"}}


@pytest.mark.parametrize(
    ("hint", "value"),
    [
        (int, 5),
        (str, "hi"),
        (float, 1.5),
        (bool, False),
        (list[int], [1, 2]),
        (dict[str, list[int]], {"a": [1]}),
        (Optional[str], None),  # noqa: UP045
        (Union[int, str], "x"),  # noqa: UP007
        (Literal["a", "b"], "b"),
        (tuple[int, str], (1, "a")),
        (tuple[int, ...], (1, 2, 3)),
        (tuple[()], ()),
        (set[int], {1, 2}),
        (Color, Color.BLUE),
        (Level, Level.HIGH),
        (list[Color | None], [Color.RED, None]),
        (dict[str, tuple[int, int]], {"a": (1, 2)}),
    ],
)
def test_typed_json_round_trips(hint: object, value: object) -> None:
    serde = JsonSerde(hint)
    result = serde.deserialize(serde.serialize(value))
    assert result == value
    assert type(result) is type(value)


def test_an_integer_is_a_valid_float() -> None:
    assert JsonSerde(float).deserialize(b"2") == 2


def test_enum_members_and_values_both_serialize() -> None:
    assert JsonSerde(Color).serialize(Color.RED) == b'"red"'
    assert JsonSerde(Color).serialize("red") == b'"red"'  # type: ignore[arg-type]
    with pytest.raises(SerdeError):
        JsonSerde(Color).serialize("green")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("hint", "body", "message"),
    [
        (int, b'"5"', r"\$: expected integer, got string"),
        (int, b"true", r"\$: expected integer, got boolean"),
        (int, b"1.5", r"\$: expected integer, got number"),
        (bool, b"1", r"expected boolean, got integer"),
        (float, b"null", r"expected number, got null"),
        (list[int], b'[1, 2, "x"]', r"\$\[2\]: expected integer, got string"),
        (dict[str, int], b'{"a": 1, "b c": null}', r'\$\["b c"\]: expected integer, got null'),
        (dict[str, list[int]], b'{"a": [true]}', r"\$\.a\[0\]: expected integer"),
        (Optional[int], b'"x"', r"expected integer or null, got string"),  # noqa: UP045
        (Literal["a", "b"], b'"c"', r"expected one of 'a', 'b', got 'c'"),
        (Literal[1], b"true", r"expected integer, got boolean"),
        (tuple[int, str], b"[1]", r"expected 2 items, got 1"),
        (tuple[int, str], b"[1, 2]", r"\$\[1\]: expected string"),
        (set[int], b'"x"', r"expected array, got string"),
        (Color, b'"green"', r"'green' is not a valid Color"),
        (list[Color], b'["red", 3]', r"\$\[1\]: expected string, got integer"),
        (int | Color, b'"green"', r"'green' is not a valid Color"),
    ],
)
def test_typed_json_refuses_values_that_do_not_fit(hint: object, body: bytes, message: str) -> None:
    with pytest.raises(SerdeError, match=message):
        JsonSerde(hint).deserialize(body)


def test_empty_body_is_none_only_where_none_fits() -> None:
    assert JsonSerde(int | None).deserialize(b"") is None
    assert JsonSerde(Optional[list[int]]).deserialize(b" ") is None  # noqa: UP045
    with pytest.raises(SerdeError, match="cannot deserialize int: empty body"):
        JsonSerde(int).deserialize(b"")
    with pytest.raises(SerdeError, match="empty body"):
        JsonSerde(list[int]).deserialize(b"")


def test_unchecked_positions_pass_through() -> None:
    assert JsonSerde(list[Any]).deserialize(b'[1, "a", null]') == [1, "a", None]
    assert JsonSerde(dict[str, Any]).deserialize(b'{"a": [1]}') == {"a": [1]}
    assert JsonSerde(Any).json_schema() is None
    assert JsonSerde(object).json_schema() is None


@pytest.mark.parametrize(
    "hint",
    [
        datetime.datetime,
        Weird,
        list[bytes],
        dict[int, str],
        Literal[1.5],
        "int",
    ],
)
def test_hints_the_engine_cannot_handle_are_type_errors(hint: object) -> None:
    with pytest.raises(TypeError):
        JsonSerde(hint)


def test_typed_json_repr_names_the_hint() -> None:
    assert repr(JsonSerde(list[int])) == "JsonSerde(list[int])"


# --- DataclassSerde ---------------------------------------------------------------------------


def test_dataclass_round_trip_with_nesting() -> None:
    serde = DataclassSerde(Outer)
    value = Outer(
        name="o",
        color=Color.BLUE,
        inner=Inner(1, ["x"]),
        items=[Inner(2), Inner(3, ["y", "z"])],
        by_key={"k": Inner(4)},
        pair=(7, "seven"),
        ratio=0.5,
    )
    data = serde.serialize(value)
    assert json.loads(data) == {
        "name": "o",
        "color": "blue",
        "inner": {"n": 1, "tags": ["x"]},
        "items": [{"n": 2, "tags": []}, {"n": 3, "tags": ["y", "z"]}],
        "by_key": {"k": {"n": 4, "tags": []}},
        "pair": [7, "seven"],
        "ratio": 0.5,
    }
    assert serde.deserialize(data) == value


def test_dataclass_missing_fields_take_their_defaults_and_unknown_keys_are_ignored() -> None:
    serde = DataclassSerde(Outer)
    assert serde.deserialize(b'{"name": "o", "color": "red", "extra": 1}') == Outer("o", Color.RED)


def test_dataclass_recursion() -> None:
    serde = DataclassSerde(Node)
    tree = Node(1, [Node(2, []), Node(3, [Node(4, [])])])
    assert serde.deserialize(serde.serialize(tree)) == tree
    assert serde.json_schema() == {
        "$ref": "#/$defs/Node",
        "$defs": {
            "Node": {
                "title": "Node",
                "type": "object",
                "properties": {
                    "value": {"type": "integer"},
                    "children": {"type": "array", "items": {"$ref": "#/$defs/Node"}},
                },
                "required": ["value", "children"],
            }
        },
    }


def test_dataclass_schema_inlines_the_root_and_defines_the_rest() -> None:
    schema = DataclassSerde(Outer).json_schema()
    assert schema is not None
    assert schema["title"] == "Outer"
    assert schema["required"] == ["name", "color"]
    assert set(schema["$defs"]) == {"Color", "Inner"}
    assert schema["properties"]["inner"] == {
        "anyOf": [{"$ref": "#/$defs/Inner"}, {"type": "null"}],
        "default": None,
    }
    assert schema["properties"]["ratio"] == {"type": "number", "default": 1.0}
    assert schema["$defs"]["Inner"]["required"] == ["n"]


def test_containers_of_dataclasses_round_trip_to_dataclasses() -> None:
    serde = serde_for(list[Inner])
    assert isinstance(serde, DataclassSerde)
    assert serde.deserialize(b'[{"n": 1}, {"n": 2, "tags": ["a"]}]') == [Inner(1), Inner(2, ["a"])]
    optional = serde_for(Inner | None)
    assert optional.deserialize(b"") is None
    assert optional.deserialize(b'{"n": 5}') == Inner(5)
    assert optional.serialize(None) == b"null"
    assert optional.serialize(Inner(5)) == b'{"n":5,"tags":[]}'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"[]", r"\$: expected object, got array"),
        (b'{"color": "red"}', r"missing required field 'name' of Outer"),
        (b'{"name": "o", "color": "red", "items": [{"n": "1"}]}', r"\$\.items\[0\]\.n: expected"),
        (b'{"name": "o", "color": "red", "inner": {"tags": []}}', r"\$\.inner: missing required"),
        (b'{"name": "o", "color": "red", "pair": [1, 2, 3]}', r"\$\.pair: expected 2 items"),
    ],
)
def test_dataclass_refuses_bad_data(body: bytes, message: str) -> None:
    with pytest.raises(SerdeError, match=message):
        DataclassSerde(Outer).deserialize(body)


def test_dataclass_construction_errors_are_serde_errors() -> None:
    with pytest.raises(SerdeError, match="n must be positive"):
        DataclassSerde(Positive).deserialize(b'{"n": 0}')


def test_dataclass_non_init_fields_are_written_but_not_read() -> None:
    serde = DataclassSerde(Computed)
    assert serde.serialize(Computed(2)) == b'{"a":2,"doubled":4}'
    assert serde.deserialize(b'{"a": 3, "doubled": 0}') == Computed(3)


def test_dataclass_serialize_refuses_other_types() -> None:
    with pytest.raises(SerdeError, match="expected Inner, got dict"):
        DataclassSerde(Inner).serialize({"n": 1})  # type: ignore[arg-type]


def test_dataclass_serde_needs_a_dataclass() -> None:
    with pytest.raises(TypeError, match="not a dataclass"):
        DataclassSerde(int)
    with pytest.raises(TypeError, match="cannot resolve the annotations of Broken"):
        DataclassSerde(Broken)


# --- TypedDictSerde ---------------------------------------------------------------------------


def test_typeddict_round_trip_and_schema() -> None:
    serde = TypedDictSerde(Greeting)
    value: Greeting = {"name": "Bob", "count": 2}
    assert serde.deserialize(serde.serialize(value)) == value
    assert serde.deserialize(b'{"name": "Al", "extra": true}') == {"name": "Al", "extra": True}
    assert serde.json_schema() == {
        "title": "Greeting",
        "type": "object",
        "properties": {"name": {"type": "string"}, "count": {"type": "integer"}},
        "required": ["name"],
    }


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"count": 1}', r"missing required key 'name' of Greeting"),
        (b'{"name": 1}', r"\$\.name: expected string, got integer"),
        (b'["name"]', r"expected object, got array"),
    ],
)
def test_typeddict_refuses_bad_data(body: bytes, message: str) -> None:
    with pytest.raises(SerdeError, match=message):
        TypedDictSerde(Greeting).deserialize(body)


def test_typeddict_fields_are_converted_where_needed() -> None:
    serde = TypedDictSerde(Palette)
    value = serde.deserialize(b'{"main": "red", "others": ["blue"]}')
    assert value == {"main": Color.RED, "others": [Color.BLUE]}
    assert serde.serialize(value) == b'{"main":"red","others":["blue"]}'


def test_recursive_typeddict() -> None:
    serde = TypedDictSerde(TreeDict)
    value: TreeDict = {"label": "a", "kids": [{"label": "b", "kids": []}]}
    assert serde.deserialize(serde.serialize(value)) == value
    with pytest.raises(SerdeError, match=r"\$\.kids\[0\]: missing required key 'kids'"):
        serde.deserialize(b'{"label": "a", "kids": [{"label": "b"}]}')


def test_typeddict_serde_needs_a_typeddict() -> None:
    with pytest.raises(TypeError, match="not a TypedDict"):
        TypedDictSerde(dict)


# --- NoneSerde and BytesSerde -----------------------------------------------------------------


def test_none_serde() -> None:
    serde = NoneSerde()
    assert serde.serialize(None) == b""
    assert serde.deserialize(b"") is None  # type: ignore[func-returns-value]
    assert serde.deserialize(b" null ") is None  # type: ignore[func-returns-value]
    assert serde.json_schema() == {"type": "null"}
    with pytest.raises(SerdeError, match="expected an empty body"):
        serde.deserialize(b"{}")
    with pytest.raises(SerdeError, match="expected None"):
        serde.serialize(1)  # type: ignore[arg-type]


def test_bytes_serde() -> None:
    serde = BytesSerde()
    assert serde.content_type == "application/octet-stream"
    raw = b"\x00\xffraw"
    assert serde.serialize(raw) is raw
    assert serde.serialize(bytearray(b"ab")) == b"ab"  # type: ignore[arg-type]
    assert serde.serialize(memoryview(b"ab")) == b"ab"  # type: ignore[arg-type]
    assert serde.deserialize(raw) == raw
    assert serde.deserialize(b"") == b""
    assert serde.json_schema() is None
    with pytest.raises(SerdeError):
        serde.serialize("text")  # type: ignore[arg-type]


# --- PydanticSerde ----------------------------------------------------------------------------


def test_pydantic_model_round_trip_by_alias() -> None:
    serde = PydanticSerde(Person)
    data = serde.serialize(Person(name="Ann", yearsOld=30))
    assert json.loads(data) == {"name": "Ann", "yearsOld": 30}
    assert serde.deserialize(data) == Person(name="Ann", yearsOld=30)
    assert serde.json_schema() == Person.model_json_schema()
    assert serde.content_type == "application/json"


def test_pydantic_validation_errors_are_serde_errors() -> None:
    with pytest.raises(SerdeError, match="yearsOld"):
        PydanticSerde(Person).deserialize(b'{"name": "Ann"}')
    with pytest.raises(SerdeError, match="cannot deserialize Person"):
        PydanticSerde(Person).deserialize(b"")
    with pytest.raises(SerdeError, match="cannot serialize"):
        PydanticSerde(Person).serialize("not a person")  # type: ignore[arg-type]


def test_pydantic_containers_and_optional() -> None:
    serde = serde_for(list[Person])
    assert isinstance(serde, PydanticSerde)
    people = [Person(name="A", yearsOld=1), Person(name="B", yearsOld=2)]
    assert serde.deserialize(serde.serialize(people)) == people
    optional = serde_for(Optional[Person])  # noqa: UP045
    assert optional.deserialize(b"") is None
    assert optional.deserialize(b"null") is None


def test_pydantic_handles_a_dataclass_that_holds_a_model() -> None:
    serde = serde_for(Holder)
    assert isinstance(serde, PydanticSerde)
    value = Holder(Person(name="A", yearsOld=1))
    assert serde.deserialize(serde.serialize(value)) == value


# --- MsgspecSerde -----------------------------------------------------------------------------


def test_msgspec_struct_round_trip() -> None:
    serde = MsgspecSerde(Point)
    assert serde.serialize(Point(1, 2)) == b'{"x":1,"y":2}'
    assert serde.deserialize(b'{"x": 1, "y": 2}') == Point(1, 2)
    assert serde.json_schema() == msgspec.json.schema(Point)
    with pytest.raises(SerdeError, match="Expected `int`"):
        serde.deserialize(b'{"x": "1", "y": 2}')
    with pytest.raises(SerdeError, match="cannot deserialize Point"):
        serde.deserialize(b"")
    with pytest.raises(SerdeError, match="cannot serialize"):
        serde.serialize(object())  # type: ignore[arg-type]


def test_msgspec_containers_and_optional() -> None:
    serde = serde_for(list[Point])
    assert isinstance(serde, MsgspecSerde)
    assert serde.deserialize(b'[{"x": 1, "y": 2}]') == [Point(1, 2)]
    assert serde_for(Point | None).deserialize(b"") is None


# --- serde_for --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hint", "kind"),
    [
        (inspect.Parameter.empty, JsonSerde),
        (Any, JsonSerde),
        (None, NoneSerde),
        (type(None), NoneSerde),
        (bytes, BytesSerde),
        (Annotated[bytes, "raw"], BytesSerde),
        (Person, PydanticSerde),
        (dict[str, Person], PydanticSerde),
        (Point, MsgspecSerde),
        (Inner, DataclassSerde),
        (dict[str, list[Inner]], DataclassSerde),
        (Greeting, TypedDictSerde),
        (list[Greeting], JsonSerde),
        (int, JsonSerde),
        (Color, JsonSerde),
        (Literal["x"], JsonSerde),
    ],
)
def test_serde_for_picks_by_kind(hint: object, kind: type) -> None:
    assert type(serde_for(hint)) is kind


def test_serde_for_untyped_has_no_schema() -> None:
    for hint in (inspect.Parameter.empty, Any, object):
        assert serde_for(hint).json_schema() is None


def test_serde_for_caches_per_hint() -> None:
    assert serde_for(list[int]) is serde_for(list[int])
    unhashable = Annotated[int, ["metadata"]]
    assert serde_for(unhashable).deserialize(b"3") == 3


def test_serde_for_refuses_mixing_pydantic_and_msgspec() -> None:
    with pytest.raises(TypeError, match="mixes pydantic and msgspec"):
        serde_for(tuple[Person, Point])


def test_serde_for_refuses_unknown_types() -> None:
    with pytest.raises(TypeError, match="pass a serde explicitly"):
        serde_for(Weird)


def test_every_serde_satisfies_the_protocol() -> None:
    serdes: list[Serde[Any]] = [
        JsonSerde(),
        DataclassSerde(Inner),
        TypedDictSerde(Greeting),
        NoneSerde(),
        BytesSerde(),
        PydanticSerde(Person),
        MsgspecSerde(Point),
    ]
    for serde in serdes:
        assert isinstance(serde.content_type, str)
        assert repr(serde).startswith(type(serde).__name__)


def test_pydantic_and_msgspec_are_imported_only_when_needed() -> None:
    code = (
        "import sys\n"
        "from dataclasses import dataclass\n"
        "from typing import TypedDict\n"
        "from undying.sdk.serde import serde_for\n"
        "@dataclass\n"
        "class D:\n"
        "    x: int\n"
        "class T(TypedDict):\n"
        "    y: list[int]\n"
        "for hint in (int, list[str], D, T, bytes, None):\n"
        "    serde_for(hint).json_schema()\n"
        "print(sorted(m for m in ('pydantic', 'msgspec') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
