"""Time formatting and text that must never be read as markup."""

from __future__ import annotations

import datetime

import pytest

from undying.cli.render import (
    due,
    first_line,
    format_duration,
    format_time,
    parse_time,
    relative,
    table,
    text,
)

NOW = datetime.datetime(2026, 11, 24, 5, 0, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-24T04:58:43.982Z", "2026-11-24 04:58:43.982"),
        ("2026-11-24T04:58:35.582000000Z", "2026-11-24 04:58:35.582"),  # /deployments, ns
        ("2026-11-24T05:01:35.489442256", "2026-11-24 05:01:35.489"),  # now(), no zone
        ("2026-11-24T06:58:43.982+02:00", "2026-11-24 04:58:43.982"),
        ("not a time", "not a time"),
        (None, ""),
    ],
)
def test_format_time(value: str | None, expected: str) -> None:
    assert format_time(value) == expected


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (0.25, "250ms"),
        (2.54, "2.5s"),
        (42, "42s"),
        (185, "3m 5s"),
        (7800, "2h 10m"),
        (3 * 86400 + 4 * 3600, "3d 4h"),
        (-185, "3m 5s"),
    ],
)
def test_format_duration(seconds: float, expected: str) -> None:
    assert format_duration(seconds) == expected


def test_relative_and_due() -> None:
    assert relative("2026-11-24T05:00:12Z", NOW) == "in 12s"
    assert relative("2026-11-24T04:57:00Z", NOW) == "3m 0s ago"
    assert relative(None, NOW) == ""
    assert due("2026-11-24T05:00:02.500Z", NOW) == "in 2.5s"
    assert due("2026-11-24T04:59:59Z", NOW) == "due"
    assert parse_time(12) is None


def test_first_line() -> None:
    assert first_line("[500] boom\nTraceback...") == "[500] boom"
    assert first_line("x" * 100, 10) == "x" * 9 + "…"
    assert first_line(None) == ""


def test_server_text_is_never_markup() -> None:
    from rich.console import Console

    console = Console(width=200, no_color=True, record=True)
    failure = "[500 Internal] RuntimeError('[SIMULATED] [bold]x[/bold] [/nope]')"
    console.print(table(["A"], [[failure], [text(failure)]]))
    console.print(text(failure))
    shown = console.export_text()
    assert shown.count(failure) == 3
