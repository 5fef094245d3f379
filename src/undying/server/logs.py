"""The server's logs: plain text, or one JSON object per line, with the invocation id.

Log calls about an invocation pass its id as ``extra=invocation_extra(inv)``; the JSON format
writes it as ``invocation_id`` (``inv_…``, as the CLI and the SQL tables show it), and the text
format appends ``[inv_…]`` when the message does not already name it.
"""

from __future__ import annotations

import json
import logging
import sys
import time
import traceback
from typing import IO, Any, Final, Literal

from undying.errors import InvalidIdError
from undying.protocol.ids import InvocationId

__all__ = ["LOG_FORMATS", "JsonFormatter", "TextFormatter", "configure", "invocation_extra"]

LogFormat = Literal["text", "json"]
LOG_FORMATS: Final = ("text", "json")

#: Attributes every LogRecord has: anything else was passed with ``extra=``.
_STANDARD: Final = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)


def invocation_extra(inv: bytes | str | None) -> dict[str, str]:
    """``extra=`` for a log call about invocation ``inv`` (raw id bytes or ``inv_…``)."""
    if isinstance(inv, str):
        return {"invocation_id": inv}
    if isinstance(inv, bytes):
        try:
            return {"invocation_id": str(InvocationId.from_bytes(inv))}
        except InvalidIdError:
            return {}
    return {}


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (UTC, ISO 8601, milliseconds), ``level``,
    ``logger``, ``message``, then every ``extra`` field (``invocation_id``, …), and
    ``exception`` with the formatted traceback when there is one.
    """

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": _iso(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exception"] = "".join(traceback.format_exception(*record.exc_info)).rstrip()
        elif record.exc_text:
            out["exception"] = record.exc_text
        if record.stack_info:
            out["stack"] = record.stack_info
        return json.dumps(out, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``time level logger: message``, with ``[inv_…]`` when the message does not name it."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def formatMessage(self, record: logging.LogRecord) -> str:
        text = super().formatMessage(record)
        inv = record.__dict__.get("invocation_id")
        if isinstance(inv, str) and inv not in text:
            text = f"{text} [{inv}]"
        return text


def configure(
    level: str | int = "WARNING", fmt: LogFormat = "text", stream: IO[str] | None = None
) -> logging.Handler:
    """Send every log record at ``level`` or above to ``stream`` (stderr) in format ``fmt``.

    Replaces the root logger's handlers; returns the new handler.
    """
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, not {fmt!r}")
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper() if isinstance(level, str) else level)
    return handler


def _iso(created: float) -> str:
    seconds = int(created)
    millis = int((created - seconds) * 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
