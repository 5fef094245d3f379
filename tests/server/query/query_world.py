"""A storage file with invocations in every state, written through the partition store."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

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
from undying.server.partition.store import PartitionStore
from undying.server.query import QueryEngine
from undying.server.schema import Schema, register
from undying.server.storage.database import Database

#: 2026-11-24T04:58:43.982Z, when the completed Greeter invocation was created.
T0 = 1795496323982
#: The time queries run at (during the backoff of the retrying invocation).
NOW = T0 + 60_000

MANIFEST = b"""{
  "protocolMode": "BIDI_STREAM", "minProtocolVersion": 5, "maxProtocolVersion": 7,
  "services": [
    {"name": "Greeter", "ty": "SERVICE", "handlers": [{"name": "greet"}]},
    {"name": "Counter", "ty": "VIRTUAL_OBJECT", "handlers": [
      {"name": "add", "ty": "EXCLUSIVE"}, {"name": "get", "ty": "SHARED"}]}
  ]
}"""

TRACEBACK = (
    "Traceback (most recent call last):\n"
    '  File "<path>", line 872, in create_run_coroutine\n'
    "RuntimeError: [SIMULATED] Failed to send reminder to Alice (attempt 3)\n"
)


def inv_id(name: str, key: tuple[str, str] | None = None) -> bytes:
    pk = partition_key_for(*key) if key else partition_key_for("test", name)
    return InvocationId.deterministic(pk, name).to_bytes()


def text(raw: bytes) -> str:
    return str(InvocationId.from_bytes(raw))


def _input(body: bytes, path: str) -> bytes:
    msg = pb.InputCommandMessage(value=pb.Value(content=body))
    for k, v in (
        ("x-restate-ingress-path", path),
        ("user-agent", "curl/7.88.1"),
        ("accept", "*/*"),
        ("content-type", "application/json"),
        ("content-length", str(len(body))),
    ):
        msg.headers.add(key=k, value=v)
    return msg.SerializeToString()


def _run(cid: int, name: str) -> bytes:
    return pb.RunCommandMessage(result_completion_id=cid, name=name).SerializeToString()


def _completion(cid: int, value: bytes | None = None) -> bytes:
    n = pb.Notification(completion_id=cid)
    if value is None:
        n.void.CopyFrom(pb.Void())
    else:
        n.value.content = value
    return n.SerializeToString()


@dataclass
class World:
    """What the storage file holds (ids by role) and how to query it."""

    path: Path
    schema: Schema
    ids: dict[str, str] = field(default_factory=dict)
    deployment_id: str = ""

    def engine(self, now: int = NOW) -> QueryEngine:
        metadata = MetadataStore(None)
        metadata.schema = self.schema
        return QueryEngine(Database(self.path), metadata, now_ms=lambda: now)


async def populate(path: Path) -> World:
    """Write the reference data set into a new storage file at ``path``."""
    db = Database(path)
    db.open(LOG_SCHEMA + STORE_SCHEMA + METADATA_SCHEMA)
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
        now_ms=T0 - 8400,
    )
    world = World(path, outcome.schema, deployment_id=outcome.deployment.id)
    dep = outcome.deployment.id
    store = PartitionStore(0, db)
    greeter = Target("Greeter", "greet")
    counter = Target("Counter", "add", "alice", "virtual_object", "exclusive")

    # A completed Greeter/greet, journal like the reference "Alice" run, with one retry event.
    alice = inv_id("alice")
    world.ids["completed"] = text(alice)
    entries = [
        (MessageType.INPUT, _input(b'{"name":"Alice"}', "/Greeter/greet"), T0),
        (MessageType.RUN, _run(1, "Notification"), T0 + 6),
        (MessageType.RUN_COMPLETION, _completion(1, b""), T0 + 6),
        (
            MessageType.SLEEP,
            pb.SleepCommandMessage(
                wake_up_time=T0 + 1009, result_completion_id=2
            ).SerializeToString(),
            T0 + 8,
        ),
        (MessageType.SLEEP_COMPLETION, _completion(2), T0 + 1009),
        (MessageType.RUN, _run(3, "Reminder"), T0 + 1011),
        (MessageType.RUN_COMPLETION, _completion(3, b""), T0 + 4954),
        (
            MessageType.OUTPUT,
            pb.OutputCommandMessage(
                value=pb.Value(content=b'{"result": "You said hi to Alice!"}')
            ).SerializeToString(),
            T0 + 4956,
        ),
    ]
    for code, payload, at in entries:
        store.append_journal(alice, JournalEntry(code, payload, at))
    event = {
        "ty": "TransientError",
        "error_code": 500,
        "error_message": "RuntimeError('[SIMULATED] Failed (attempt 1)')",
        "error_stacktrace": "Traceback...",
        "restate_doc_error_code": "RT0007",
        "related_command_index": 3,
        "related_command_name": "Reminder",
        "related_command_type": int(MessageType.RUN),
    }
    store.add_event(alice, 1, 5, T0 + 1020, "TransientError", msgspec.json.encode(event))
    store.put_status(
        InvocationStatus(
            id=alice,
            target=greeter,
            status="completed",
            created_at=T0,
            modified_at=T0 + 4956,
            idempotency_key="01M85YQAWFHAGWHK0FJB2037DF",
            deployment_id=dep,
            protocol_version=6,
            server="restate-sdk-python/1.2.0",
            journal_size=8,
            commands=5,
            result=Result(value=b'{"result": "You said hi to Alice!"}'),
            running_at=T0 + 2,
            completed_at=T0 + 4956,
            last_start_at=T0 + 3,
        )
    )

    # A Greeter/greet backing off after its third failed attempt.
    retrying = inv_id("retrying")
    world.ids["backing-off"] = text(retrying)
    store.append_journal(
        retrying, JournalEntry(MessageType.INPUT, _input(b"{}", "/Greeter/greet"), T0 + 100)
    )
    store.put_status(
        InvocationStatus(
            id=retrying,
            target=greeter,
            status="invoked",
            created_at=T0 + 100,
            modified_at=T0 + 50_000,
            idempotency_key="01M85YT7G1J25DN3NBHBJH5GJ6",
            deployment_id=dep,
            protocol_version=6,
            server="restate-sdk-python/1.2.0",
            journal_size=1,
            commands=1,
            running_at=T0 + 101,
            retry_count=3,
            last_failure=FailureInfo(
                500,
                "RuntimeError('[SIMULATED] Failed to send reminder to Alice (attempt 3)')",
                TRACEBACK,
                related_command_index=3,
                related_command_name="Reminder",
                related_command_type=int(MessageType.RUN),
                doc_code="RT0007",
            ),
            next_retry_at=NOW + 2500,
            last_start_at=T0 + 102,
        )
    )

    # Counter/alice/add running (holding the key's lock), one more queued behind it.
    obj = ("Counter", "alice")
    running = inv_id("running", obj)
    world.ids["running"] = text(running)
    store.put_status(
        InvocationStatus(
            id=running,
            target=counter,
            status="invoked",
            created_at=T0 + 200,
            modified_at=T0 + 210,
            source=Source("service", retrying, "Greeter/greet"),
            deployment_id=dep,
            protocol_version=6,
            server="restate-sdk-python/1.2.0",
            running_at=T0 + 201,
            last_start_at=T0 + 205,
        )
    )
    store.lock("Counter", "alice", running)
    pending = inv_id("pending", obj)
    world.ids["pending"] = text(pending)
    store.put_status(
        InvocationStatus(
            id=pending,
            target=counter,
            status="inboxed",
            created_at=T0 + 300,
            modified_at=T0 + 300,
            inboxed_at=T0 + 300,
        )
    )
    store.inbox_push("Counter", "alice", pending)
    store.set_state("Counter", "alice", b"count", b"8")
    store.set_state("Counter", "bob", b"count", b"41")
    store.set_state("Counter", "bob", b"blob", b"\xff\x00")

    # A killed invocation, a suspended one and a delayed one.
    killed = inv_id("killed")
    world.ids["killed"] = text(killed)
    store.put_status(
        InvocationStatus(
            id=killed,
            target=greeter,
            status="completed",
            created_at=T0 + 400,
            modified_at=T0 + 500,
            result=Result(code=409, message="killed"),
            completed_at=T0 + 500,
        )
    )
    suspended = inv_id("suspended")
    world.ids["suspended"] = text(suspended)
    store.put_status(
        InvocationStatus(
            id=suspended,
            target=greeter,
            status="suspended",
            created_at=T0 + 600,
            modified_at=T0 + 700,
            deployment_id=dep,
            waiting_completions=(1,),
            waiting_signals=(17,),
        )
    )
    scheduled = inv_id("scheduled")
    world.ids["scheduled"] = text(scheduled)
    store.put_status(
        InvocationStatus(
            id=scheduled,
            target=greeter,
            status="scheduled",
            created_at=T0 + 800,
            modified_at=T0 + 800,
            execute_at=NOW + 3_600_000,
        )
    )

    store.flush(1)

    def noop(conn: sqlite3.Connection) -> None:
        return None

    await db.submit(noop)
    await db.close()
    return world
