"""The invocations filter: query parameters in, SQL conditions out, user text quoted."""

from __future__ import annotations

from undying.server.ui.data import InvocationFilter, literal


def test_literal_doubles_quotes() -> None:
    assert literal("it's") == "'it''s'"
    assert literal("a\\b") == "'a\\b'"


def test_filter_from_parameters() -> None:
    f = InvocationFilter.from_params(
        {"service": " Greeter ", "key": "k'1", "status": "backing-off", "since": "1h", "limit": "5"}
    )
    assert (f.service, f.key, f.status, f.since, f.limit) == (
        "Greeter",
        "k'1",
        "backing-off",
        "1h",
        5,
    )
    assert f.params() == {
        "service": "Greeter",
        "key": "k'1",
        "status": "backing-off",
        "since": "1h",
        "limit": "5",
    }
    assert f.where(10_000_000) == (
        "target_service_name = 'Greeter' AND target_service_key = 'k''1' AND "
        "(status = 'backing-off') AND created_at >= to_timestamp_millis(6400000)"
    )


def test_unknown_values_fall_back_to_no_filter() -> None:
    f = InvocationFilter.from_params({"status": "DROP TABLE", "since": "forever", "limit": "x"})
    assert (f.status, f.since, f.limit) == ("", "", 100)
    assert f.where(0) == "TRUE" and f.params() == {}
    assert InvocationFilter.from_params({"limit": "100000"}).limit == 1000
    assert InvocationFilter.from_params({"limit": "-3"}).limit == 1
