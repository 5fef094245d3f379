"""The world the official-CLI tests look at, and readers of what the CLI prints.

:class:`CliWorld` runs one server (``--target undying|restate``) whose default retry policy
starts at :data:`RETRY_INITIAL_INTERVAL_S` (so a retrying invocation stays in backoff long enough
to be looked at), and three deployments:

- the interop Python SDK app (``Greeter``, ``Long``, ``Failing``), registered over HTTP/1.1
  (request/response, so a sleeping handler suspends at once);
- the conformance undying SDK app (``CounterUd``, ``WfUd``, ``FailingUd``, ``CallerUd``,
  ``EchoUd``...), over HTTP/2;
- the misbehaving app (service ``Misbehaving``), for registering a second version and removing
  the first.

The readers turn the CLI's tables and trees into dicts and lists, so tests compare values rather
than layout (column widths and the order of hash-ordered lists differ from run to run).
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from undying.testing import (
    CliResult,
    RestateCli,
    RestateServer,
    Server,
    ServiceProcess,
    UndyingServer,
    poll_until,
    python_service,
)

INTEROP_SERVICES: Final = Path(__file__).parent / "services"
CONFORMANCE_SERVICES: Final = Path(__file__).parent.parent / "conformance" / "services"

#: First retry delay of the server's default retry policy (it doubles after each failure).
RETRY_INITIAL_INTERVAL_S: Final = 5
#: A sleep that outlives the tests.
LONG_SLEEP_S: Final = 3600

_INVOCATION_ID: Final = re.compile(r"^inv_[0-9A-Za-z]+$")
_LIST_HEAD: Final = re.compile(r"^\s*❯ \[([^\]]+)\] (inv_[0-9A-Za-z]+)\s*$")
#: The fields ``invocations describe`` and ``invocations list`` print for an invocation.
_FIELD: Final = re.compile(
    r"^\s+(Created at|Target|Status|Idempotency key|Invoked by|Deployment|Error|Caused by"
    r"|Modified at):\s+(.*?)\s*$"
)
_JOURNAL_LINE: Final = re.compile(r"^\s*[├└]──── #(\d+) \[([^\]]+)\] (.*?)\s*$")
_CLI_TIME: Final = "%Y-%m-%d %H:%M:%S.%f %z"


def start_server(target: str, root: Path) -> Server:
    """A started server of ``target`` with the slow default retry policy."""
    data, logs = root / "data", root / "logs"
    server: Server
    if target == "undying":
        interval_ms = str(RETRY_INITIAL_INTERVAL_S * 1000)
        server = UndyingServer(
            data, log_dir=logs, extra_args=["--retry-initial-interval-ms", interval_ms]
        )
    elif target == "restate":
        server = RestateServer(
            data,
            log_dir=logs,
            extra_config=(
                f'[default-retry-policy]\ninitial-interval = "{RETRY_INITIAL_INTERVAL_S}s"\n'
            ),
        )
    else:
        raise ValueError(f"`target` must be 'undying' or 'restate', got {target!r}")
    server.start()
    return server


def check(result: CliResult) -> CliResult:
    """``result``, after asserting the command succeeded."""
    assert result.returncode == 0, str(result)
    return result


@dataclass
class CliWorld:
    """The server, the official CLI pointed at it, and the deployments (see the module doc)."""

    server: Server
    cli: RestateCli
    py: ServiceProcess
    ud: ServiceProcess
    misbehaving: ServiceProcess
    py_registration: CliResult
    ud_registration: CliResult

    @classmethod
    def start(cls, target: str, root: Path) -> CliWorld:
        logs = root / "logs"
        processes: list[ServiceProcess] = []
        server = start_server(target, root / "server")
        try:
            py = python_service(INTEROP_SERVICES / "py_app.py", log_dir=logs, name="cli-py")
            ud = python_service(
                CONFORMANCE_SERVICES / "conf_app_ud.py", log_dir=logs, name="cli-ud"
            )
            misbehaving = python_service(
                INTEROP_SERVICES / "misbehaving.py", log_dir=logs, name="cli-misbehaving"
            )
            for proc in (py, ud, misbehaving):
                processes.append(proc)
                proc.start()
            cli = RestateCli(server.admin_url, home=root / "home", ingress_url=server.ingress_url)
            return cls(
                server=server,
                cli=cli,
                py=py,
                ud=ud,
                misbehaving=misbehaving,
                py_registration=check(cli.register(py.url, http1=True)),
                ud_registration=check(cli.register(ud.url)),
            )
        except BaseException:
            _stop(processes, server)
            raise

    def close(self) -> None:
        _stop([self.py, self.ud, self.misbehaving], self.server)

    @property
    def py_deployment(self) -> str:
        found = self.py_registration.deployment_id
        assert found is not None, str(self.py_registration)
        return found

    @property
    def ud_deployment(self) -> str:
        found = self.ud_registration.deployment_id
        assert found is not None, str(self.ud_registration)
        return found

    # -- running the CLI -----------------------------------------------------------------------

    def run(self, *args: str) -> CliResult:
        """``restate ARGS…``, which must succeed."""
        return check(self.cli.run(*args))

    def describe(self, invocation_id: str) -> Described:
        return Described(self.run("invocations", "describe", invocation_id))

    # -- looking at the server directly ----------------------------------------------------------

    def invocation(self, invocation_id: str) -> dict[str, Any] | None:
        """The invocation's ``sys_invocation`` row (retry and failure columns), or None."""
        assert _INVOCATION_ID.match(invocation_id), invocation_id
        rows = self.server.admin.query(
            "SELECT id, status, retry_count, last_failure, last_start_at, next_retry_at "
            f"FROM sys_invocation WHERE id = '{invocation_id}'"
        )
        return rows[0] if rows else None

    def wait_status(
        self,
        invocation_id: str,
        status: str,
        *,
        timeout: float = 30.0,
        where: Callable[[dict[str, Any]], bool] = lambda row: True,
    ) -> dict[str, Any]:
        """Wait until the invocation has ``status`` (and ``where`` holds); returns its row."""

        def reached() -> dict[str, Any] | None:
            row = self.invocation(invocation_id)
            return row if row is not None and row["status"] == status and where(row) else None

        return poll_until(
            reached,
            timeout=timeout,
            what=f"{invocation_id} is {status}",
            describe=lambda: repr(self.invocation(invocation_id)),
        )

    def stable(
        self, invocation_id: str, command: Callable[[], CliResult]
    ) -> tuple[CliResult, dict[str, Any]]:
        """Run ``command`` while the invocation does not change (a retry can come in between:
        then it runs again). Returns the result and the invocation's row."""
        for _ in range(3):
            before = self.invocation(invocation_id)
            result = command()
            after = self.invocation(invocation_id)
            if before is not None and before == after:
                return result, before
        raise AssertionError(f"{invocation_id} kept changing while the CLI looked at it")

    def state(self, service: str, key: str) -> dict[str, str]:
        """The object's state from SQL (``key -> value_utf8``)."""
        rows = self.server.admin.query(
            "SELECT key, value_utf8 FROM state "
            f"WHERE service_name = '{service}' AND service_key = '{key}'"
        )
        return {row["key"]: row.get("value_utf8", "") for row in rows}

    def wait_state(self, service: str, key: str, expected: dict[str, str]) -> None:
        poll_until(
            lambda: True if self.state(service, key) == expected else None,
            timeout=30.0,
            what=f"the state of {service}/{key} is {expected}",
            describe=lambda: repr(self.state(service, key)),
        )


def _stop(processes: Iterable[ServiceProcess], server: Server) -> None:
    try:
        for proc in processes:
            try:
                proc.stop()
            finally:
                if proc.running:
                    proc.kill()
    finally:
        try:
            server.stop()
        finally:
            if server.running:
                server.kill()


# -- reading what the CLI prints -----------------------------------------------------------------


def cli_time(text: str) -> datetime.datetime:
    """``2026-11-24 10:55:03.560 +00:00`` as the CLI prints times (``10:55:03 +00:00`` on a
    whole second)."""
    day, clock, offset = text.split()
    if "." not in clock:
        clock += ".000"
    return datetime.datetime.strptime(f"{day} {clock} {offset.replace(':', '')}", _CLI_TIME)


def sql_time(text: str) -> datetime.datetime:
    """``2026-11-24T10:55:03.560Z`` as SQL rows carry timestamps."""
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


@dataclass(frozen=True)
class JournalLine:
    """``├──── #3 [time] Command: Sleep until …`` of an invocation's progress tree."""

    index: int
    time: datetime.datetime
    text: str


class Described:
    """``restate invocations describe``: the information fields and the journal tree."""

    def __init__(self, result: CliResult) -> None:
        self.result = result
        self.output = result.stdout
        info, _, progress = self.output.partition("Invocation Progress:")
        self.fields: dict[str, str] = {}
        for line in info.splitlines():
            found = _FIELD.match(line)
            if found is not None:
                self.fields.setdefault(found.group(1), found.group(2))
        self.progress = progress
        self.journal = [
            JournalLine(int(m.group(1)), cli_time(m.group(2)), m.group(3))
            for m in map(_JOURNAL_LINE.match, progress.splitlines())
            if m is not None
        ]

    @property
    def status(self) -> str:
        return self.fields["Status"]

    @property
    def entries(self) -> list[str]:
        """The journal entries as printed, index order (``Command: Run [Reminder]``...)."""
        return [line.text for line in sorted(self.journal, key=lambda j: j.index)]

    @property
    def error(self) -> str:
        """The ``Error:`` field with its continuation lines (message, stack trace)."""
        lines = self.output.splitlines()
        start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("Error:"))
        block = [lines[start].split("Error:", 1)[1]]
        for line in lines[start + 1 :]:
            if _FIELD.match(line):
                break
            block.append(line)
        return "\n".join(part.strip() for part in block).strip()

    @property
    def tree_end(self) -> str:
        """The status the progress tree ends with (``└────>> backing-off``)."""
        found = re.search(r"└────>> (\S+)", self.progress)
        assert found is not None, self.output
        return found.group(1)

    def __repr__(self) -> str:
        return str(self.result)


def listed(result: CliResult) -> dict[str, dict[str, str]]:
    """``restate invocations list``: invocation id -> its fields (Target, Status, Error...)."""
    out: dict[str, dict[str, str]] = {}
    current: dict[str, str] | None = None
    for line in result.stdout.splitlines():
        head = _LIST_HEAD.match(line)
        if head is not None:
            current = out.setdefault(head.group(2), {"Created at": head.group(1)})
            continue
        field = _FIELD.match(line)
        if current is not None and field is not None:
            current.setdefault(field.group(1), field.group(2))
    return out


def table_rows(text: str, first_column: str) -> list[list[str]]:
    """The rows of a compact table whose header starts with ``first_column``, split on runs of
    two or more spaces (cells may contain single spaces: ``Command: Run``)."""
    rows: list[list[str]] = []
    inside = False
    for line in text.splitlines():
        cells = [c for c in re.split(r"\s{2,}", line.strip()) if c]
        if not inside:
            inside = bool(cells) and cells[0] == first_column
            continue
        if not cells:
            break
        rows.append(cells)
    return rows


def state_table(result: CliResult) -> dict[str, str]:
    """``restate state get``: the ``KEY VALUE`` table as a dict."""
    return {row[0]: row[1] if len(row) > 1 else "" for row in table_rows(result.stdout, "KEY")}


def squeezed(result: CliResult) -> str:
    """stdout and stderr with each line stripped and runs of spaces made one: layout-free text
    for substring checks (``Transport: HTTP/1.1``)."""
    return "\n".join(" ".join(line.split()) for line in result.output.splitlines())


def deployments_listed(result: CliResult) -> dict[str, tuple[str, dict[str, int]]]:
    """``restate deployments list``: deployment id -> (endpoint, {service: revision})."""
    out: dict[str, tuple[str, dict[str, int]]] = {}
    services: dict[str, int] | None = None
    for line in result.stdout.splitlines():
        found = re.match(r"^\s*(\S+)\s+HTTP\s+(dp_[0-9A-Za-z]+)\s", line)
        if found is not None:
            services = {}
            out[found.group(2)] = (found.group(1), services)
        bullet = re.search(r"- (\w+) \[(\d+)\]\s*$", line)
        if bullet is not None and services is not None:
            services[bullet.group(1)] = int(bullet.group(2))
    return out
