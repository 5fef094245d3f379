"""The UI's Jinja2 environment: templates from the package, autoescaped, and display filters.

Every value a page shows goes through autoescaping (``autoescape=True`` for every template, not
only ``.html``), and pages carry no inline scripts at all, so no user data ever ends up in one.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from jinja2 import Environment, PackageLoader, StrictUndefined, pass_context
from jinja2.runtime import Context

from undying.protocol.statuses import INVOCATION_STATUSES

__all__ = ["STATUS_ORDER", "create_environment", "human_duration", "relative", "timestamp"]

#: Invocation statuses in the order of their life, as ``sys_invocation.status`` names them.
STATUS_ORDER: Final = INVOCATION_STATUSES


def timestamp(value: datetime | None, *, short: bool = False) -> str:
    """``2026-11-24 05:00:21.748`` (UTC); ``short``: ``05:00:21`` only."""
    if value is None:
        return ""
    value = value.astimezone(UTC)
    if short:
        return value.strftime("%H:%M:%S")
    return value.strftime("%Y-%m-%d %H:%M:%S.") + f"{value.microsecond // 1000:03d}"


def human_duration(delta: timedelta | float | None) -> str:
    """``850 ms``, ``2.3 s``, ``4 min 5 s``, ``3 h 20 min``, ``2 days 4 h``."""
    if delta is None:
        return ""
    seconds = delta.total_seconds() if isinstance(delta, timedelta) else float(delta)
    seconds = abs(seconds)
    if seconds < 1:
        return f"{round(seconds * 1000)} ms"
    if seconds < 10:
        return f"{seconds:.1f} s"
    if seconds < 60:
        return f"{int(seconds)} s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {secs} s" if secs else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    unit = "day" if days == 1 else "days"
    return f"{days} {unit} {hours} h" if hours else f"{days} {unit}"


def relative(value: datetime | None, now: datetime) -> str:
    """``in 2.3 s`` or ``4 min ago`` (``now`` is the server's clock)."""
    if value is None:
        return ""
    delta = value - now
    if abs(delta.total_seconds()) < 0.05:
        return "now"
    text = human_duration(delta)
    return f"in {text}" if delta.total_seconds() > 0 else f"{text} ago"


@pass_context
def _relative(ctx: Context, value: datetime | None) -> str:
    now: datetime = ctx["now"]
    return relative(value, now)


@pass_context
def _short_time(ctx: Context, value: datetime | None) -> str:
    """The time of day if ``value`` is today (server clock), else the date and the minute."""
    if value is None:
        return ""
    now: datetime = ctx["now"]
    value = value.astimezone(UTC)
    if value.date() == now.astimezone(UTC).date():
        return value.strftime("%H:%M:%S")
    return value.strftime("%Y-%m-%d %H:%M")


def _first_line(text: str | None, limit: int = 120) -> str:
    if not text:
        return ""
    line = text.strip().splitlines()[0] if text.strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _query(params: Mapping[str, Any], **changes: Any) -> str:
    """A query string from ``params`` with ``changes``; empty values are left out."""
    merged = {**params, **changes}
    return urllib.parse.urlencode({k: v for k, v in merged.items() if v not in (None, "")})


def _pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=False, ensure_ascii=False)


def create_environment() -> Environment:
    """The environment that renders the UI's templates."""
    env = Environment(
        loader=PackageLoader("undying.server.ui", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.filters["ts"] = timestamp
    env.filters["ts_short"] = _short_time
    env.filters["rel"] = _relative
    env.filters["duration"] = human_duration
    env.filters["first_line"] = _first_line
    env.filters["pretty_json"] = _pretty_json
    env.globals["query"] = _query
    env.globals["STATUS_ORDER"] = STATUS_ORDER
    return env
