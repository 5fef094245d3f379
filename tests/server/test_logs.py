"""Structured logs: JSON lines with the invocation id, text by default, and the serve options."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import undying
from undying.protocol.ids import InvocationId
from undying.server.logs import JsonFormatter, TextFormatter, configure, invocation_extra
from undying.testing import TestEnvironment
from undying.testing.clients import AdminClient, IngressClient
from undying.testing.servers import UndyingServer
from undying.testing.services import python_service

SERVICES_DIR = Path(__file__).parent / "services"
INV = InvocationId(12345, bytes(range(16)))


def _record(msg: str, *args: object, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("undying.test", logging.WARNING, __file__, 1, msg, args, None)
    record.__dict__.update(extra)
    return record


def test_json_lines_carry_time_level_logger_message_and_extras() -> None:
    record = _record("attempt %d failed", 2, **invocation_extra(INV.to_bytes()))
    line = JsonFormatter().format(record)
    assert "\n" not in line
    out = json.loads(line)
    assert out == {
        "time": out["time"],
        "level": "WARNING",
        "logger": "undying.test",
        "message": "attempt 2 failed",
        "invocation_id": str(INV),
    }
    assert out["time"].endswith("Z") and len(out["time"]) == len("2026-01-02T03:04:05.678Z")


def test_json_lines_carry_the_exception() -> None:
    try:
        raise ValueError("bad\nvalue")
    except ValueError:
        record = logging.LogRecord(
            "undying.test", logging.ERROR, __file__, 1, "it failed", (), sys.exc_info()
        )
    out = json.loads(JsonFormatter().format(record))
    assert out["message"] == "it failed"
    assert out["exception"].startswith("Traceback")
    assert out["exception"].endswith("ValueError: bad\nvalue")


def test_text_names_the_invocation_once() -> None:
    fmt = TextFormatter()
    named = fmt.format(_record("invocation %s: failed", str(INV), invocation_id=str(INV)))
    assert named.endswith(f"WARNING undying.test: invocation {INV}: failed")
    unnamed = fmt.format(_record("inactivity timeout", invocation_id=str(INV)))
    assert unnamed.endswith(f"WARNING undying.test: inactivity timeout [{INV}]")
    plain = fmt.format(_record("nothing to do with an invocation"))
    assert plain.endswith("WARNING undying.test: nothing to do with an invocation")


def test_invocation_extra_accepts_raw_and_text_ids_only() -> None:
    assert invocation_extra(INV.to_bytes()) == {"invocation_id": str(INV)}
    assert invocation_extra(str(INV)) == {"invocation_id": str(INV)}
    assert invocation_extra(b"too short") == {}
    assert invocation_extra(None) == {}


@pytest.fixture
def root_logger() -> Iterator[logging.Logger]:
    """The root logger, restored (handlers and level) after the test."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        yield root
    finally:
        for h in list(root.handlers):
            root.removeHandler(h)
        for h in handlers:
            root.addHandler(h)
        root.setLevel(level)


def test_configure_replaces_the_root_handlers(root_logger: logging.Logger) -> None:
    stream = io.StringIO()
    handler = configure("info", "json", stream)
    assert root_logger.handlers == [handler]
    assert root_logger.level == logging.INFO
    logging.getLogger("undying.x").debug("hidden")
    logging.getLogger("undying.x").info("shown", extra=invocation_extra(str(INV)))
    lines = stream.getvalue().splitlines()
    assert [json.loads(line)["message"] for line in lines] == ["shown"]
    assert json.loads(lines[0])["invocation_id"] == str(INV)
    with pytest.raises(ValueError, match="log format"):
        configure("info", "yaml", stream)  # type: ignore[arg-type]


# ---- the server's own log calls -------------------------------------------------------------


class Flaky:
    failures_left = 0


flaky = undying.Service("Flaky")


@flaky.handler()
async def eventually(ctx: undying.Context) -> str:
    if Flaky.failures_left > 0:
        Flaky.failures_left -= 1
        raise RuntimeError("not yet")
    return "done"


def test_retry_warnings_name_the_invocation_in_json() -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("undying")
    logger.addHandler(handler)

    async def test() -> str:
        Flaky.failures_left = 2
        async with TestEnvironment([flaky]) as env:
            handle = await env.send(eventually)
            assert await handle.result() == "done"
            return handle.id

    try:
        invocation_id = asyncio.run(test())
    finally:
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    retries = [line for line in lines if "failed, retrying" in line["message"]]
    assert len(retries) == 2, lines
    for line in retries:
        assert line["level"] == "WARNING"
        assert line["logger"] == "undying.invoker"
        assert line["invocation_id"] == invocation_id


def test_serve_writes_json_lines_with_the_invocation_id(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    server = UndyingServer(
        tmp_path / "data",
        log_dir=logs,
        extra_args=[
            "--log-format",
            "json",
            "--log-level",
            "debug",
            "--retry-initial-interval-ms",
            "10",
        ],
    )
    service = python_service(SERVICES_DIR / "flaky_app.py", log_dir=logs, name="flaky")
    try:
        server.start()
        service.start()
        registered = AdminClient(server.admin_url).request(
            "POST", "/deployments", {"uri": service.url}
        )
        assert registered.status == 201, registered
        ingress = IngressClient(server.ingress_url)
        invocation_id = ingress.send("Flaky", "eventually")
        answer = ingress.attach(invocation_id)
        assert answer.status == 200 and answer.json() == "done", answer
    finally:
        try:
            service.stop()
        finally:
            server.stop()
    text = (logs / "undying.stderr.log").read_text()
    lines = [line for line in text.splitlines() if not line.startswith("=== ")]  # harness marks
    records = [json.loads(line) for line in lines]  # every line is one JSON object
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    assert any(r["message"].startswith("undying ready") for r in records)
    about = [r for r in records if r.get("invocation_id") == invocation_id]
    retries = [r for r in about if "failed, retrying" in r["message"]]
    assert [r["level"] for r in retries] == ["WARNING", "WARNING"]
    assert "RuntimeError: not yet (1)" in retries[0]["message"]
    starts = [r for r in about if r["level"] == "DEBUG" and "starts" in r["message"]]
    assert len(starts) == 3  # --log-level debug: every attempt's start
