"""Small parsers of the ingress: delays and content types."""

from __future__ import annotations

import pytest

from undying.server.ingress.app import _content_type_matches, parse_delay


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2s", 2000),
        ("500ms", 500),
        ("1m 30s", 90_000),
        ("1h", 3_600_000),
        ("1d", 86_400_000),
        ("1.5s", 1500),
        ("PT2S", 2000),
        ("PT1M30S", 90_000),
        ("P1DT1H", 90_000_000),
    ],
)
def test_delays(text: str, ms: int) -> None:
    assert parse_delay(text) == ms


@pytest.mark.parametrize("text", ["", "2", "2x", "s", "2s junk", "PTXS"])
def test_bad_delays(text: str) -> None:
    with pytest.raises(ValueError, match="cannot parse"):
        parse_delay(text)


@pytest.mark.parametrize(
    ("pattern", "actual", "ok"),
    [
        ("application/json", "application/json", True),
        ("application/json", "application/json; charset=utf-8", True),
        ("application/json", "Application/JSON", True),
        ("application/json", "text/plain", False),
        ("*/*", "text/plain", True),
        ("text/*", "text/plain", True),
        ("text/*", "application/json", False),
        ("application/json, text/plain", "text/plain", True),
    ],
)
def test_content_types(pattern: str, actual: str, ok: bool) -> None:
    assert _content_type_matches(pattern, actual) is ok
