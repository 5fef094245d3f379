"""Printing: rich consoles and tables for people, JSON for programs, and time formatting.

Data goes to stdout, everything else (progress, prompts, summaries of actions) to stderr. Text
that comes from the server (names, failures, stack traces) is never read as rich markup.
When stdout is not a terminal (a pipe, a file) and ``$COLUMNS`` is unset, lines are not wrapped
at 80 columns, so ids stay whole for ``grep``.

rich is imported on first use, not when the CLI starts.
"""

from __future__ import annotations

import datetime
import json
import os
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Final

import click

if TYPE_CHECKING:
    from rich.console import Console, RenderableType
    from rich.table import Table
    from rich.text import Text

__all__ = [
    "STATUS_STYLES",
    "cell",
    "console",
    "due",
    "emit_json",
    "first_line",
    "format_duration",
    "format_time",
    "key_values",
    "parse_time",
    "relative",
    "status_text",
    "table",
    "text",
]

#: Width of a console that does not print to a terminal (pipes are not wrapped at 80).
PIPE_WIDTH: Final = 240

STATUS_STYLES: Final = {
    "pending": "magenta",
    "scheduled": "blue",
    "ready": "blue",
    "running": "green",
    "backing-off": "bold red",
    "suspended": "cyan",
    "paused": "yellow",
    "completed": "dim",
}

_META_KEY: Final = "undying.consoles"


def console(*, err: bool = False) -> Console:
    """The console of the current command for stdout (or stderr with ``err``)."""
    from rich.console import Console

    ctx = click.get_current_context(silent=True)
    consoles: dict[bool, Console] = {} if ctx is None else ctx.meta.setdefault(_META_KEY, {})
    found = consoles.get(err)
    if found is None:
        found = Console(stderr=err, highlight=False, soft_wrap=False)
        if not found.is_terminal and "COLUMNS" not in os.environ:
            found.width = PIPE_WIDTH
        consoles[err] = found
    return found


def emit_json(value: Any) -> None:
    """``value`` as indented JSON on stdout (keys in the order given)."""
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


def text(value: object, style: str = "") -> Text:
    """``value`` as plain text (never markup)."""
    from rich.text import Text

    return Text("" if value is None else str(value), style=style)


def status_text(status: str | None) -> Text:
    """An invocation status, coloured."""
    return text(status or "?", STATUS_STYLES.get(status or "", ""))


def cell(value: object) -> RenderableType:
    """``value`` itself if rich can render it, else as plain text (``None``: empty)."""
    if hasattr(value, "__rich_console__") or hasattr(value, "__rich__"):
        return value  # type: ignore[return-value]
    return text(value)


def table(
    columns: Sequence[str], rows: Iterable[Sequence[object]], *, no_wrap: Sequence[int] = ()
) -> Table:
    """A borderless table with bold headers.

    Columns at ``no_wrap`` indexes (ids, names) are never wrapped nor cut, however narrow the
    terminal: the others give way. Cells are rich renderables or anything else, shown as plain
    text (see :func:`cell`).
    """
    from rich import box
    from rich.table import Table
    from rich.text import Text

    cells = [[cell(v) for v in row] for row in rows]
    out = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, header_style="bold")
    for i, name in enumerate(columns):
        widest = None
        if i in no_wrap:
            texts = [r[i] for r in cells if i < len(r)]
            widest = max([len(name), *(t.cell_len for t in texts if isinstance(t, Text))])
        out.add_column(name, no_wrap=i in no_wrap, overflow="fold", min_width=widest)
    for row in cells:
        out.add_row(*row)
    return out


def key_values(pairs: Iterable[tuple[str, object]]) -> Table:
    """A two-column grid ``label  value``; rows whose value is ``None`` are left out."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    for label, value in pairs:
        if value is None:
            continue
        grid.add_row(label, cell(value))
    return grid


# ---- time ---------------------------------------------------------------------------------


def parse_time(value: object) -> datetime.datetime | None:
    """A timestamp as the SQL layer writes it (``2026-11-24T04:58:43.982Z``), in UTC."""
    if not isinstance(value, str) or not value:
        return None
    raw = value.strip()
    if raw.endswith("Z"):
        raw = raw[:-1] + "+00:00"
    try:
        parsed = datetime.datetime.fromisoformat(raw)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=datetime.UTC)
    return parsed.astimezone(datetime.UTC)


def format_time(value: object, *, millis: bool = True) -> str:
    """``2026-11-24 04:58:43.982`` (UTC), or the value as given if it is not a timestamp."""
    parsed = parse_time(value)
    if parsed is None:
        return "" if value is None else str(value)
    shown = parsed.strftime("%Y-%m-%d %H:%M:%S")
    return f"{shown}.{parsed.microsecond // 1000:03d}" if millis else shown


def format_duration(seconds: float) -> str:
    """``850ms``, ``12s``, ``3m 5s``, ``2h 10m``, ``3d 4h``."""
    seconds = abs(seconds)
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:.1f}s" if seconds < 10 else f"{int(seconds)}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m {secs}s"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours}h {minutes}m"
    days, hours = divmod(hours, 24)
    return f"{days}d {hours}h"


def relative(value: object, now: datetime.datetime | None = None) -> str:
    """``3m 5s ago`` or ``in 12s``; empty if ``value`` is not a timestamp."""
    parsed = parse_time(value)
    if parsed is None:
        return ""
    now = now or datetime.datetime.now(datetime.UTC)
    delta = (parsed - now).total_seconds()
    return f"in {format_duration(delta)}" if delta > 0 else f"{format_duration(delta)} ago"


def due(value: object, now: datetime.datetime | None = None) -> str:
    """``in 12s`` for a moment to come, ``due`` for one already past (a retry, a timer)."""
    shown = relative(value, now)
    return "due" if shown.endswith(" ago") else shown


def first_line(value: object, width: int = 80) -> str:
    """The first line of ``value``, cut to ``width`` characters."""
    if value is None:
        return ""
    line = str(value).strip().split("\n", 1)[0]
    return line if len(line) <= width else line[: width - 1] + "…"
