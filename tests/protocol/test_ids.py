from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from undying.errors import InvalidIdError
from undying.protocol.ids import AwakeableId, DeploymentId, InvocationId, new_ulid


def test_matches_restate_text_form() -> None:
    # Raw StartMessage.id and x-restate-invocation-id from a captured reference run.
    raw = bytes.fromhex("c989752fa9da46c0d18201bfc34f0f7701731f6484ba37ac")
    inv = InvocationId.from_bytes(raw)
    assert str(inv) == "inv_1gvu3oYTu4Ot5eY9bY7r0nEr8WFXOutkPL"
    assert inv.to_bytes() == raw
    assert InvocationId.parse(str(inv)) == inv


def test_awakeable_id_round_trip() -> None:
    text = "sign_1PWhu4wmWx1HeZTS4zOQ4uXtDqdLDqo7OAAAAEQ"
    awk = AwakeableId.parse(text)
    assert awk.signal_index == 17
    assert str(awk) == text


def test_deployment_id_round_trip() -> None:
    assert str(DeploymentId.parse("dp_114UqHl3AXh43PW9oxKp7H3")) == "dp_114UqHl3AXh43PW9oxKp7H3"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("inv_bogus", "unrecognized codec version"),
        ("inv_1abc", "bad length"),
        ("dp_1abc", "bad length"),
        ("prom_abc", "unrecognized codec version"),
        ("prom_1abc", "id doesn't match the expected type"),
    ],
)
def test_bad_ids_are_rejected_with_a_reason(text: str, reason: str) -> None:
    with pytest.raises(InvalidIdError, match=reason):
        if text.startswith("dp_"):
            DeploymentId.parse(text)
        else:
            InvocationId.parse(text)


def test_awakeable_rejects_legacy_prefix() -> None:
    with pytest.raises(InvalidIdError, match="bad awakeable id 'prom_abc': unrecognized codec"):
        AwakeableId.parse("prom_abc")


def test_ulids_are_26_crockford_characters_in_time_order() -> None:
    a, b = new_ulid(), new_ulid()
    assert len(a) == 26 and set(a) <= set("0123456789ABCDEFGHJKMNPQRSTVWXYZ")
    assert a[:9] <= b[:9]  # the first 45 bits are the time


@given(st.integers(0, 2**64 - 1), st.binary(min_size=16, max_size=16))
def test_invocation_id_round_trips(pk: int, uuid: bytes) -> None:
    inv = InvocationId(pk, uuid)
    text = str(inv)
    assert len(text) == 38
    assert InvocationId.parse(text) == inv
    assert InvocationId.from_bytes(inv.to_bytes()) == inv


def test_ids_sort_by_partition_key() -> None:
    a, b = InvocationId(1, bytes(16)), InvocationId(2, bytes(16))
    assert str(a) < str(b)
