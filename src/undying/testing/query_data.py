"""A large, realistic storage file for the SQL benchmark and tests, written through the store.

``populate(path, invocations=100_000)`` writes a data directory's SQLite file the way a server
that ran that many invocations would have left it: statuses in every state (most completed),
journals of about ten entries each (input, runs, a sleep, a call with its callee id, output),
retry events for some, K/V state of a counter object, locks and inboxes. Everything goes through
:class:`~undying.server.partition.store.PartitionStore` (the server's own write path, so the
tables and encodings are the real ones), batched by partition, with group commits.

The data set is deterministic (seeded); :class:`DataSet` tells what was written (ids by role,
counts per status) so that benchmarks can pick typical ids and tests can check answers.
"""

from __future__ import annotations

import random
import sqlite3
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import msgspec

from undying.protocol import manifest as mf
from undying.protocol.ids import InvocationId, partition_key_for
from undying.protocol.messages import MessageType, pb
from undying.server.log.local import SCHEMA as LOG_SCHEMA
from undying.server.metadata import SCHEMA as METADATA_SCHEMA
from undying.server.metadata import MetadataStore
from undying.server.partition.records import FailureInfo, Result, Source, Target
from undying.server.partition.state import InvocationStatus, JournalEntry
from undying.server.partition.store import SCHEMA as STORE_SCHEMA
from undying.server.partition.store import PartitionStore, migrate
from undying.server.query import QueryEngine
from undying.server.schema import Schema, register
from undying.server.storage.database import Database

__all__ = ["T0", "DataSet", "load_schema", "populate"]

#: When the first invocation was created (2026-11-24T04:58:43.982Z).
T0: Final = 1_795_496_323_982
#: Partitions the invocations are spread over (the server's default).
PARTITIONS: Final = 4
#: Invocations per flush of a partition store (one write job each).
_BATCH: Final = 2_000

MANIFEST: Final = b"""{
  "protocolMode": "BIDI_STREAM", "minProtocolVersion": 5, "maxProtocolVersion": 7,
  "services": [
    {"name": "Greeter", "ty": "SERVICE", "handlers": [{"name": "greet"}]},
    {"name": "Mailer", "ty": "SERVICE", "handlers": [{"name": "send"}]},
    {"name": "Counter", "ty": "VIRTUAL_OBJECT", "handlers": [
      {"name": "add", "ty": "EXCLUSIVE"}, {"name": "get", "ty": "SHARED"}]},
    {"name": "Checkout", "ty": "WORKFLOW", "handlers": [{"name": "run", "ty": "WORKFLOW"}]}
  ]
}"""

#: Share of the invocations left in each non-completed state (the rest are completed).
_LIVE_SHARES: Final = {
    "running": 0.004,
    "backing-off": 0.002,
    "suspended": 0.02,
    "paused": 0.001,
    "pending": 0.002,
    "scheduled": 0.005,
}
_TRACEBACK: Final = (
    "Traceback (most recent call last):\n"
    '  File "app.py", line 31, in greet\n'
    "RuntimeError: [SIMULATED] Failed to send reminder\n"
)


@dataclass
class DataSet:
    """What :func:`populate` wrote."""

    path: Path
    schema: Schema
    now_ms: int
    #: Public status (as ``sys_invocation.status`` shows it) per invocation id.
    status: dict[str, str] = field(default_factory=dict)
    #: Journal length per invocation id.
    journal_size: dict[str, int] = field(default_factory=dict)
    #: Service name per invocation id.
    service: dict[str, str] = field(default_factory=dict)
    #: Creation time per invocation id.
    created_at: dict[str, int] = field(default_factory=dict)
    #: Target (``Service/handler``, ``Object/key/handler``) per invocation id.
    target: dict[str, str] = field(default_factory=dict)

    @property
    def journal_entries(self) -> int:
        return sum(self.journal_size.values())

    def counts(self) -> Counter[str]:
        """Invocations per public status."""
        return Counter(self.status.values())

    def ids_with(self, status: str) -> list[str]:
        return [i for i, s in self.status.items() if s == status]

    def engine(self, *, pushdown: bool = True) -> QueryEngine:
        """A query engine over the file, its clock fixed at :attr:`now_ms`."""
        metadata = MetadataStore(None)
        metadata.schema = self.schema
        now = self.now_ms
        return QueryEngine(Database(self.path), metadata, now_ms=lambda: now, pushdown=pushdown)


def load_schema(path: Path) -> Schema:
    """The schema registry :func:`populate` stored in the file."""
    conn = sqlite3.connect(path)
    try:
        row = conn.execute("SELECT value FROM metadata WHERE key = 'schema'").fetchone()
    finally:
        conn.close()
    return msgspec.msgpack.decode(row[0], type=Schema)


def _input(body: bytes, path: str) -> bytes:
    msg = pb.InputCommandMessage(value=pb.Value(content=body))
    for k, v in (
        ("x-restate-ingress-path", path),
        ("user-agent", "curl/7.88.1"),
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
    ):
        msg.headers.add(key=k, value=v)
    return msg.SerializeToString()


def _run(cid: int, name: str) -> bytes:
    return pb.RunCommandMessage(result_completion_id=cid, name=name).SerializeToString()


def _value(cid: int, value: bytes) -> bytes:
    return pb.Notification(completion_id=cid, value=pb.Value(content=value)).SerializeToString()


def _void(cid: int) -> bytes:
    n = pb.Notification(completion_id=cid)
    n.void.CopyFrom(pb.Void())
    return n.SerializeToString()


def _journal(
    n: int, inv: InvocationId, callee: InvocationId, at: int, name: str
) -> list[JournalEntry]:
    """A journal of ``n`` entries (n >= 1): input, run, sleep, call, runs..., output."""
    body = b'{"name":"' + name.encode() + b'"}'
    out = [JournalEntry(MessageType.INPUT, _input(body, "/Greeter/greet"), at)]
    steps: list[tuple[int, bytes]] = [
        (MessageType.RUN, _run(1, "Notification")),
        (MessageType.RUN_COMPLETION, _value(1, b'"sent"')),
        (
            MessageType.SLEEP,
            pb.SleepCommandMessage(
                wake_up_time=at + 1000, result_completion_id=2
            ).SerializeToString(),
        ),
        (MessageType.SLEEP_COMPLETION, _void(2)),
        (
            MessageType.CALL,
            pb.CallCommandMessage(
                service_name="Mailer",
                handler_name="send",
                parameter=body,
                invocation_id_notification_idx=3,
                result_completion_id=4,
            ).SerializeToString(),
        ),
        (
            MessageType.CALL_INVOCATION_ID_COMPLETION,
            pb.Notification(completion_id=3, invocation_id=str(callee)).SerializeToString(),
        ),
        (MessageType.CALL_COMPLETION, _value(4, b'"ok"')),
    ]
    cid = 5
    while len(out) + len(steps) < n - 1:
        steps.append((MessageType.RUN, _run(cid, f"step-{cid}")))
        steps.append((MessageType.RUN_COMPLETION, _value(cid, b'"done"')))
        cid += 1
    for code, payload in steps[: max(n - 2, 0)]:
        out.append(JournalEntry(code, payload, at + 5 * len(out)))
    if n >= 2:
        output = pb.OutputCommandMessage(value=pb.Value(content=b'"Hello ' + name.encode() + b'"'))
        out.append(JournalEntry(MessageType.OUTPUT, output.SerializeToString(), at + 5 * len(out)))
    return out[:n]


_TARGETS: Final = (
    (0.55, Target("Greeter", "greet")),
    (0.25, Target("Mailer", "send")),
    (0.15, Target("Counter", "add", "", "virtual_object", "exclusive")),
    (0.05, Target("Checkout", "run", "", "workflow", "workflow")),
)


def _pick_target(rng: random.Random, i: int) -> Target:
    x = rng.random()
    t = _TARGETS[-1][1]
    for share, candidate in _TARGETS:
        if x < share:
            t = candidate
            break
        x -= share
    if t.service_ty == "service":
        return t
    key = f"key-{i % 500}" if t.service == "Counter" else f"order-{i}"
    return Target(t.service, t.handler, key, t.service_ty, t.handler_ty)


def _pick_status(rng: random.Random) -> str:
    x = rng.random()
    for status, share in _LIVE_SHARES.items():
        if x < share:
            return status
        x -= share
    return "completed"


async def populate(
    path: Path, invocations: int = 100_000, journal_entries: int = 1_000_000, seed: int = 7
) -> DataSet:
    """Write the data set into a new storage file at ``path``."""
    rng = random.Random(seed)
    db = Database(path)
    db.open(LOG_SCHEMA + STORE_SCHEMA + METADATA_SCHEMA)
    await db.submit(migrate)  # as the server does at start: the indexes of the SQL tables
    outcome = register(
        Schema(),
        uri="http://localhost:9080/",
        endpoint=mf.parse_manifest(MANIFEST),
        use_http_11=False,
        sdk_version="restate-sdk-python/1.2.0",
        additional_headers={},
        metadata=None,
        force=False,
        breaking=False,
        now_ms=T0 - 10_000,
    )
    dep = outcome.deployment.id
    await MetadataStore(db).update(0, outcome.schema)
    span = invocations * 20  # one invocation every 20 ms
    now = T0 + span + 60_000
    data = DataSet(path, outcome.schema, now)
    per_invocation = journal_entries / invocations
    stores = [PartitionStore(p, db) for p in range(PARTITIONS)]
    pending: list[int] = [0] * PARTITIONS
    locked: set[tuple[str, str]] = set()
    event = msgspec.json.encode(
        {
            "ty": "TransientError",
            "error_code": 500,
            "error_message": "RuntimeError('[SIMULATED] Failed to send reminder')",
            "error_stacktrace": _TRACEBACK,
            "restate_doc_error_code": "RT0007",
            "related_command_index": 1,
            "related_command_name": "Notification",
            "related_command_type": int(MessageType.RUN),
        }
    )
    for i in range(invocations):
        target = _pick_target(rng, i)
        pk = (
            partition_key_for(target.service, target.key)
            if target.key is not None
            else rng.getrandbits(64)
        )
        inv = InvocationId.deterministic(pk, "bench", str(i))
        raw = inv.to_bytes()
        part = (pk * PARTITIONS) >> 64
        store = stores[part]
        created = T0 + i * 20 + rng.randrange(20)
        shown = _pick_status(rng)
        obj: tuple[str, str] | None = None
        if target.service_ty == "virtual_object" and target.key is not None:
            obj = (target.service, target.key)
        if shown == "running" and obj is not None and obj in locked:
            shown = "completed"
        if shown == "pending" and obj is None:
            shown = "scheduled"
        size = max(1, round(rng.gauss(per_invocation, 2)))
        if shown in ("pending", "scheduled"):
            size = 0
        callee = InvocationId.deterministic(rng.getrandbits(64), "bench-callee", str(i))
        for entry in _journal(size, inv, callee, created + 2, f"user-{i}"):
            store.append_journal(raw, entry)
        store.forget_journal(raw)
        s = InvocationStatus(
            id=raw,
            target=target,
            status="completed",
            created_at=created,
            modified_at=created + 5 * size + 3,
            idempotency_key=f"idem-{i:08d}",
            deployment_id=dep if size else None,
            protocol_version=6 if size else None,
            server="restate-sdk-python/1.2.0" if size else None,
            journal_size=size,
            commands=(size + 1) // 2,
            running_at=created + 1 if size else None,
            last_start_at=created + 1 if size else None,
            source=(
                Source("service", callee.to_bytes(), "Greeter/greet")
                if target.service == "Mailer"
                else Source()
            ),
        )
        if shown == "completed":
            s.completed_at = s.modified_at
            if i % 50 == 0:
                s.result = Result(code=500, message="Unable to parse an input argument")
            elif i % 97 == 0:
                s.result = Result(code=409, message="killed")
            else:
                s.result = Result(value=b'"Hello user"')
        elif shown in ("running", "backing-off", "paused"):
            s.status = "paused" if shown == "paused" else "invoked"
            if shown != "running":
                s.retry_count = rng.randrange(1, 8)
                s.last_failure = FailureInfo(
                    500,
                    "RuntimeError('[SIMULATED] Failed to send reminder')",
                    _TRACEBACK,
                    related_command_index=1,
                    related_command_name="Notification",
                    related_command_type=int(MessageType.RUN),
                    doc_code="RT0007",
                )
                if shown == "backing-off":
                    s.next_retry_at = now + 5_000
                store.add_event(raw, 1, 1, created + 10, "TransientError", event)
            if obj is not None:
                store.lock(obj[0], obj[1], raw)
                locked.add(obj)
        elif shown == "suspended":
            s.status = "suspended"
            s.waiting_completions = (size,)
        elif shown == "pending":
            s.status = "inboxed"
            s.inboxed_at = created
            assert obj is not None
            store.inbox_push(obj[0], obj[1], raw)
        else:
            s.status = "scheduled"
            s.execute_at = now + 3_600_000
        store.put_status(s)
        if obj is not None and shown == "completed":
            store.set_state(obj[0], obj[1], b"count", str(i).encode())
        text = str(inv)
        data.status[text] = shown
        data.journal_size[text] = size
        data.service[text] = target.service
        data.created_at[text] = created
        data.target[text] = target.display()
        pending[part] += 1
        if pending[part] >= _BATCH:
            await _flush(db, store)
            pending[part] = 0
    for store in stores:
        await _flush(db, store)
    await db.close()
    return data


async def _flush(db: Database, store: PartitionStore) -> None:
    store.flush(1)

    def noop(conn: sqlite3.Connection) -> None:
        return None

    await db.submit(noop)
