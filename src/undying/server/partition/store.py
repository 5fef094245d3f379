"""A partition's materialized state: in memory, written back to SQLite after each applied batch.

The state machine reads and writes through this class only. Without a database (tests) it is a
plain in-memory store. With one, every mutation is remembered and :meth:`PartitionStore.flush`
turns the remembered changes into one write job, together with the partition's applied LSN, so
the tables always describe the state after some prefix of the log. Cold data (completed
invocations, journals and K/V state not touched since the start) is loaded on first use.
"""

from __future__ import annotations

import sqlite3
from collections import OrderedDict, deque
from collections.abc import Iterator
from typing import Final

import msgspec

from undying.server.partition.counts import StatusCounts
from undying.server.partition.records import OutboxEntry, TimerKey
from undying.server.partition.state import (
    InvocationStatus,
    JournalEntry,
    NotificationIndex,
    Promise,
    decode_promise,
    decode_status,
    encode_promise,
    encode_status,
)
from undying.server.storage.database import Database

__all__ = ["SCHEMA", "PartitionStore", "migrate"]

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS inv_status (
    id BLOB PRIMARY KEY,
    partition INTEGER NOT NULL,
    status TEXT NOT NULL,
    modified_at INTEGER NOT NULL,
    expires_at INTEGER,
    data BLOB NOT NULL,
    service TEXT,
    created_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS inv_status_by_status ON inv_status (partition, status);
CREATE INDEX IF NOT EXISTS inv_status_by_expiry ON inv_status (partition, expires_at)
    WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS journal (
    id BLOB NOT NULL,
    idx INTEGER NOT NULL,
    type INTEGER NOT NULL,
    appended_at INTEGER NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS journal_events (
    id BLOB NOT NULL,
    seq INTEGER NOT NULL,
    after_index INTEGER NOT NULL,
    appended_at INTEGER NOT NULL,
    event_type TEXT NOT NULL,
    event BLOB NOT NULL,
    PRIMARY KEY (id, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state (
    service TEXT NOT NULL,
    key TEXT NOT NULL,
    skey BLOB NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (service, key, skey)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS timers (
    partition INTEGER NOT NULL,
    tkey BLOB NOT NULL,
    wake_at INTEGER NOT NULL,
    PRIMARY KEY (partition, tkey)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS locks (
    service TEXT NOT NULL,
    key TEXT NOT NULL,
    id BLOB NOT NULL,
    PRIMARY KEY (service, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inbox (
    service TEXT NOT NULL,
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    id BLOB NOT NULL,
    PRIMARY KEY (service, key, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency (
    idem TEXT PRIMARY KEY,
    id BLOB NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS partition_meta (
    partition INTEGER PRIMARY KEY,
    applied_lsn INTEGER NOT NULL,
    outbox_seq INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS outbox (
    partition INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (partition, seq)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS dedup (
    partition INTEGER NOT NULL,
    source INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (partition, source)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS promises (
    service TEXT NOT NULL,
    key TEXT NOT NULL,
    name TEXT NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (service, key, name)
) WITHOUT ROWID;
"""

#: An upsert rather than INSERT OR REPLACE (a delete and an insert, which rewrite every index):
#: with it, the two indexes of the SQL tables cost a status write nothing measurable.
_PUT_STATUS: Final = (
    "INSERT INTO inv_status "
    "(id, partition, status, modified_at, expires_at, data, service, created_at) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (id) DO UPDATE SET partition = excluded.partition, "
    "status = excluded.status, modified_at = excluded.modified_at, "
    "expires_at = excluded.expires_at, data = excluded.data, service = excluded.service, "
    "created_at = excluded.created_at"
)
#: Indexes for the SQL introspection tables' filters (``target_service_name``, ``created_at``);
#: created by :func:`migrate`, once the columns exist.
_QUERY_INDEXES: Final = (
    "CREATE INDEX IF NOT EXISTS inv_status_by_service ON inv_status (service, created_at)",
    "CREATE INDEX IF NOT EXISTS inv_status_by_created ON inv_status (created_at)",
)

_COMPLETED_CACHE: Final = 2_000
_STATE_CACHE: Final = 10_000
_OUTBOX_ENC: Final = msgspec.msgpack.Encoder()
_OUTBOX_DEC: Final = msgspec.msgpack.Decoder(OutboxEntry)

ObjKey = tuple[str, str]


def migrate(conn: sqlite3.Connection) -> None:
    """Bring the tables of an older data directory up to date (idempotent; run at start).

    ``inv_status`` got the ``service`` and ``created_at`` columns (copies of fields of the
    stored status, for the SQL tables' indexes): add them, fill them in, index them.
    """
    columns = {r[1] for r in conn.execute("PRAGMA table_info(inv_status)")}
    added = False
    for name, kind in (("service", "TEXT"), ("created_at", "INTEGER")):
        if name not in columns:
            conn.execute(f"ALTER TABLE inv_status ADD COLUMN {name} {kind}")
            added = True
    if added:
        rows = conn.execute("SELECT data FROM inv_status").fetchall()
        updates = []
        for (data,) in rows:
            s = decode_status(data)
            updates.append((s.target.service, s.created_at, s.id))
        conn.executemany("UPDATE inv_status SET service = ?, created_at = ? WHERE id = ?", updates)
    for statement in _QUERY_INDEXES:
        conn.execute(statement)


class _Ops:
    """Changes since the last flush."""

    __slots__ = ("deleted", "events", "journal", "journal_deleted", "misc", "statuses")

    def __init__(self) -> None:
        self.statuses: dict[bytes, InvocationStatus] = {}
        self.deleted: set[bytes] = set()
        self.journal: list[tuple[bytes, int, int, int, bytes]] = []
        self.journal_deleted: set[bytes] = set()
        self.events: list[tuple[bytes, int, int, int, str, bytes]] = []
        self.misc: list[tuple[str, tuple[object, ...]]] = []

    def __bool__(self) -> bool:
        return bool(
            self.statuses
            or self.deleted
            or self.journal
            or self.journal_deleted
            or self.events
            or self.misc
        )


class PartitionStore:
    """State of one partition. ``db=None`` keeps everything in memory."""

    def __init__(
        self,
        partition: int,
        db: Database | None = None,
        *,
        state_cache: int = _STATE_CACHE,
        completed_cache: int = _COMPLETED_CACHE,
    ) -> None:
        self.partition = partition
        self._state_cache = state_cache
        self._completed_cache = completed_cache
        self._db = db
        self._statuses: dict[bytes, InvocationStatus] = {}
        self._completed: OrderedDict[bytes, int] = OrderedDict()
        self._journals: dict[bytes, list[JournalEntry]] = {}
        self._indexes: dict[bytes, NotificationIndex] = {}
        self._state: dict[ObjKey, dict[bytes, bytes]] = {}
        # Object keys by last use, with the flush that carries their last change: a key's
        # state leaves memory when it is among the least recently used and is committed.
        self._state_touched: OrderedDict[ObjKey, int] = OrderedDict()
        self._locks: dict[ObjKey, bytes] = {}
        self._inbox: dict[ObjKey, deque[tuple[int, bytes]]] = {}
        self._inbox_seq = 0
        self._idempotency: dict[str, bytes] = {}
        self._timers: dict[bytes, tuple[TimerKey, int]] = {}
        self._outbox: dict[int, OutboxEntry] = {}
        self._outbox_seq = 0
        self._dedup: dict[int, int] = {}
        self._promises: dict[tuple[str, str, str], Promise | None] = {}
        self.applied_lsn = 0
        self._ops = _Ops()
        # Write-back bookkeeping: what was flushed but is not committed yet must not be read
        # back from the database (deleted rows would come back), nor dropped from memory.
        self._gen = 0
        self._committed_gen = 0
        self._status_deletes: dict[bytes, int] = {}
        self._journal_deletes: dict[bytes, int] = {}
        self._forgets: deque[tuple[int, bytes]] = deque()
        #: invocations by status, started/completed/failed by service (for the metrics)
        self.counts = StatusCounts()
        #: entries appended to journals, and their payload bytes (for the metrics)
        self.journal_entries = 0
        self.journal_bytes = 0

    # ---- loading --------------------------------------------------------------------------

    def load(self) -> None:
        """Load what must be in memory: the applied LSN, live invocations, timers, locks, inbox."""
        if self._db is None:
            return
        r = self._db.reader
        row = r.execute(
            "SELECT applied_lsn, outbox_seq FROM partition_meta WHERE partition = ?",
            (self.partition,),
        ).fetchone()
        self.applied_lsn = int(row[0]) if row else 0
        self._outbox_seq = int(row[1]) if row else 0
        for seq, data in r.execute(
            "SELECT seq, data FROM outbox WHERE partition = ? ORDER BY seq", (self.partition,)
        ):
            self._outbox[int(seq)] = _OUTBOX_DEC.decode(data)
        for source, seq in r.execute(
            "SELECT source, seq FROM dedup WHERE partition = ?", (self.partition,)
        ):
            self._dedup[int(source)] = int(seq)
        for (data,) in r.execute(
            "SELECT data FROM inv_status WHERE partition = ? AND status != 'completed'",
            (self.partition,),
        ):
            s = decode_status(data)
            self._statuses[s.id] = s
            self.counts.load_live(s)
        (completed,) = r.execute(
            "SELECT COUNT(*) FROM inv_status WHERE partition = ? AND status = 'completed'",
            (self.partition,),
        ).fetchone()
        self.counts.load_completed(int(completed))
        for tkey, wake_at in r.execute(
            "SELECT tkey, wake_at FROM timers WHERE partition = ?", (self.partition,)
        ):
            self._timers[bytes(tkey)] = (_decode_timer(bytes(tkey)), int(wake_at))
        for service, key, inv in r.execute("SELECT service, key, id FROM locks"):
            if bytes(inv) in self._statuses:
                self._locks[(service, key)] = bytes(inv)
        for service, key, seq, inv in r.execute(
            "SELECT service, key, seq, id FROM inbox ORDER BY service, key, seq"
        ):
            if bytes(inv) in self._statuses:
                self._inbox.setdefault((service, key), deque()).append((int(seq), bytes(inv)))
                self._inbox_seq = max(self._inbox_seq, int(seq))

    # ---- invocation status ----------------------------------------------------------------

    def get_status(self, inv: bytes, *, cached_only: bool = False) -> InvocationStatus | None:
        """The status of ``inv``; ``cached_only`` skips the database (for ids known to be new)."""
        s = self._statuses.get(inv)
        if s is not None:
            return s
        if cached_only or self._db is None or inv in self._status_deletes:
            return None
        row = self._db.reader.execute("SELECT data FROM inv_status WHERE id = ?", (inv,)).fetchone()
        if row is None:
            return None
        s = decode_status(row[0])
        self._statuses[inv] = s
        if s.status == "completed":
            self._remember_completed(inv)
        return s

    def put_status(self, s: InvocationStatus) -> None:
        """Store ``s`` (call after every change of a status object)."""
        self.counts.put(s, self._statuses)
        self._statuses[s.id] = s
        self._ops.statuses[s.id] = s
        self._ops.deleted.discard(s.id)
        self._status_deletes.pop(s.id, None)
        if s.status == "completed":
            self._remember_completed(s.id)

    def delete_status(self, inv: bytes) -> None:
        self.counts.delete(inv, self._statuses.pop(inv, None))
        self._completed.pop(inv, None)
        self._ops.statuses.pop(inv, None)
        self._ops.deleted.add(inv)
        self._status_deletes[inv] = self._gen + 1

    def live_statuses(self) -> Iterator[InvocationStatus]:
        """Invocations that are not completed (all of them are in memory)."""
        return (s for s in list(self._statuses.values()) if s.status != "completed")

    def _remember_completed(self, inv: bytes) -> None:
        self._completed[inv] = self._gen + 1
        self._completed.move_to_end(inv)

    # ---- journal --------------------------------------------------------------------------

    def journal(self, inv: bytes) -> list[JournalEntry]:
        j = self._journals.get(inv)
        if j is not None:
            return j
        j = []
        if self._db is not None and inv not in self._journal_deletes:
            j = [
                JournalEntry(int(t), bytes(p), int(a))
                for t, p, a in self._db.reader.execute(
                    "SELECT type, payload, appended_at FROM journal WHERE id = ? ORDER BY idx",
                    (inv,),
                )
            ]
        self._journals[inv] = j
        return j

    def notifications(self, inv: bytes) -> NotificationIndex:
        idx = self._indexes.get(inv)
        if idx is None:
            idx = NotificationIndex.of(self.journal(inv))
            self._indexes[inv] = idx
        return idx

    def append_journal(self, inv: bytes, entry: JournalEntry) -> int:
        """Append; return the entry's index."""
        j = self.journal(inv)
        index = len(j)
        j.append(entry)
        self.journal_entries += 1
        self.journal_bytes += len(entry.payload)
        idx = self._indexes.get(inv)
        if idx is not None:
            idx.add(entry.type, entry.payload)
        self._ops.journal.append((inv, index, entry.type, entry.appended_at, entry.payload))
        return index

    def delete_journal(self, inv: bytes) -> None:
        self._journals.pop(inv, None)
        self._indexes.pop(inv, None)
        self._ops.journal = [j for j in self._ops.journal if j[0] != inv]
        self._ops.journal_deleted.add(inv)
        self._journal_deletes[inv] = self._gen + 1

    def forget_journal(self, inv: bytes) -> None:
        """Drop the cached journal of a finished invocation once it is committed."""
        if self._db is not None:
            self._forgets.append((self._gen + 1, inv))

    def add_event(
        self, inv: bytes, seq: int, after_index: int, at: int, event_type: str, event: bytes
    ) -> None:
        self._ops.events.append((inv, seq, after_index, at, event_type, event))

    # ---- K/V state ------------------------------------------------------------------------

    def state(self, service: str, key: str) -> dict[bytes, bytes]:
        """The state of one object/workflow key (read-only view; mutate with the methods)."""
        obj = (service, key)
        touched = self._state_touched
        if obj in touched:
            touched.move_to_end(obj)
        touched[obj] = self._gen + 1
        st = self._state.get(obj)
        if st is None:
            st = {}
            if self._db is not None:
                for k, v in self._db.reader.execute(
                    "SELECT skey, value FROM state WHERE service = ? AND key = ?", obj
                ):
                    st[bytes(k)] = bytes(v)
            self._state[obj] = st
        return st

    def set_state(self, service: str, key: str, skey: bytes, value: bytes) -> None:
        self.state(service, key)[skey] = value
        self._ops.misc.append(
            (
                "INSERT INTO state (service, key, skey, value) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(service, key, skey) DO UPDATE SET value = excluded.value",
                (service, key, skey, value),
            )
        )

    def clear_state(self, service: str, key: str, skey: bytes) -> None:
        self.state(service, key).pop(skey, None)
        self._ops.misc.append(
            ("DELETE FROM state WHERE service = ? AND key = ? AND skey = ?", (service, key, skey))
        )

    def clear_all_state(self, service: str, key: str) -> None:
        self.state(service, key).clear()
        self._ops.misc.append(("DELETE FROM state WHERE service = ? AND key = ?", (service, key)))

    # ---- timers ---------------------------------------------------------------------------

    def add_timer(self, key: TimerKey, wake_at: int) -> None:
        raw = _encode_timer(key)
        self._timers[raw] = (key, wake_at)
        self._ops.misc.append(
            (
                "INSERT OR REPLACE INTO timers (partition, tkey, wake_at) VALUES (?, ?, ?)",
                (self.partition, raw, wake_at),
            )
        )

    def remove_timer(self, key: TimerKey) -> bool:
        """Remove; return whether it existed."""
        raw = _encode_timer(key)
        if self._timers.pop(raw, None) is None:
            return False
        self._ops.misc.append(
            ("DELETE FROM timers WHERE partition = ? AND tkey = ?", (self.partition, raw))
        )
        return True

    def expired(self, now: int, limit: int = 1000) -> list[bytes]:
        """Completed invocations whose retention (of the result or the journal) ran out."""
        if self._db is None:
            return [
                s.id for s in self._statuses.values() if (e := _expiry(s)) is not None and e <= now
            ][:limit]
        rows = self._db.reader.execute(
            "SELECT id FROM inv_status WHERE partition = ? AND expires_at <= ? LIMIT ?",
            (self.partition, now, limit),
        ).fetchall()
        return [bytes(r[0]) for r in rows]

    def timers(self) -> list[tuple[TimerKey, int]]:
        return list(self._timers.values())

    @property
    def timers_armed(self) -> int:
        """How many timers are stored."""
        return len(self._timers)

    # ---- exclusive locks and inboxes of keyed services ---------------------------------

    def lock_owner(self, service: str, key: str) -> bytes | None:
        return self._locks.get((service, key))

    def lock(self, service: str, key: str, inv: bytes) -> None:
        self._locks[(service, key)] = inv
        self._ops.misc.append(
            (
                "INSERT OR REPLACE INTO locks (service, key, id) VALUES (?, ?, ?)",
                (service, key, inv),
            )
        )

    def unlock(self, service: str, key: str) -> None:
        self._locks.pop((service, key), None)
        self._ops.misc.append(("DELETE FROM locks WHERE service = ? AND key = ?", (service, key)))

    def inbox_push(self, service: str, key: str, inv: bytes) -> None:
        self._inbox_seq += 1
        seq = self._inbox_seq
        self._inbox.setdefault((service, key), deque()).append((seq, inv))
        self._ops.misc.append(
            (
                "INSERT INTO inbox (service, key, seq, id) VALUES (?, ?, ?, ?)",
                (service, key, seq, inv),
            )
        )

    def inbox_pop(self, service: str, key: str) -> bytes | None:
        q = self._inbox.get((service, key))
        if not q:
            return None
        seq, inv = q.popleft()
        if not q:
            del self._inbox[(service, key)]
        self._ops.misc.append(
            ("DELETE FROM inbox WHERE service = ? AND key = ? AND seq = ?", (service, key, seq))
        )
        return inv

    def inbox_remove(self, service: str, key: str, inv: bytes) -> bool:
        q = self._inbox.get((service, key))
        if not q:
            return False
        for item in list(q):
            if item[1] == inv:
                q.remove(item)
                self._ops.misc.append(
                    (
                        "DELETE FROM inbox WHERE service = ? AND key = ? AND seq = ?",
                        (service, key, item[0]),
                    )
                )
                return True
        return False

    def inbox(self, service: str, key: str) -> list[bytes]:
        return [inv for _, inv in self._inbox.get((service, key), ())]

    # ---- idempotency ----------------------------------------------------------------------

    def idempotent(self, idem: str) -> bytes | None:
        inv = self._idempotency.get(idem)
        if inv is not None or self._db is None:
            return inv
        row = self._db.reader.execute(
            "SELECT id FROM idempotency WHERE idem = ?", (idem,)
        ).fetchone()
        if row is None:
            return None
        self._idempotency[idem] = bytes(row[0])
        return bytes(row[0])

    def set_idempotent(self, idem: str, inv: bytes) -> None:
        self._idempotency[idem] = inv
        self._ops.misc.append(
            ("INSERT OR REPLACE INTO idempotency (idem, id) VALUES (?, ?)", (idem, inv))
        )

    def delete_idempotent(self, idem: str) -> None:
        self._idempotency.pop(idem, None)
        self._ops.misc.append(("DELETE FROM idempotency WHERE idem = ?", (idem,)))

    # ---- outbox and deduplication of messages between partitions -------------------------

    def outbox_push(self, entry: OutboxEntry) -> int:
        """Queue a message for another partition; return its sequence number."""
        self._outbox_seq += 1
        seq = self._outbox_seq
        self._outbox[seq] = entry
        self._ops.misc.append(
            (
                "INSERT OR REPLACE INTO outbox (partition, seq, data) VALUES (?, ?, ?)",
                (self.partition, seq, _OUTBOX_ENC.encode(entry)),
            )
        )
        return seq

    def outbox_truncate(self, up_to: int) -> None:
        for seq in [s for s in self._outbox if s <= up_to]:
            del self._outbox[seq]
        self._ops.misc.append(
            ("DELETE FROM outbox WHERE partition = ? AND seq <= ?", (self.partition, up_to))
        )

    def outbox(self) -> list[tuple[int, OutboxEntry]]:
        return sorted(self._outbox.items())

    def dedup_seq(self, source: int) -> int:
        return self._dedup.get(source, 0)

    def set_dedup_seq(self, source: int, seq: int) -> None:
        self._dedup[source] = seq
        self._ops.misc.append(
            (
                "INSERT OR REPLACE INTO dedup (partition, source, seq) VALUES (?, ?, ?)",
                (self.partition, source, seq),
            )
        )

    # ---- durable promises --------------------------------------------------------------

    def promise(self, service: str, key: str, name: str) -> Promise | None:
        k = (service, key, name)
        if k in self._promises:
            return self._promises[k]
        p = None
        if self._db is not None:
            row = self._db.reader.execute(
                "SELECT data FROM promises WHERE service = ? AND key = ? AND name = ?", k
            ).fetchone()
            if row is not None:
                p = decode_promise(row[0])
        self._promises[k] = p
        return p

    def put_promise(self, service: str, key: str, name: str, p: Promise) -> None:
        self._promises[(service, key, name)] = p
        self._ops.misc.append(
            (
                "INSERT OR REPLACE INTO promises (service, key, name, data) VALUES (?, ?, ?, ?)",
                (service, key, name, encode_promise(p)),
            )
        )

    def clear_promises(self, service: str, key: str) -> None:
        for k in [k for k in self._promises if k[0] == service and k[1] == key]:
            self._promises[k] = None
        self._ops.misc.append(
            ("DELETE FROM promises WHERE service = ? AND key = ?", (service, key))
        )

    # ---- write-back -----------------------------------------------------------------------

    def flush(self, applied_lsn: int) -> None:
        """Queue the changes since the last flush (and the applied LSN) as one write job.

        The job rides along with the next durable commit (the log can rebuild all of it).
        """
        self.applied_lsn = applied_lsn
        ops = self._ops
        if self._db is None:
            self._ops = _Ops()
            self._status_deletes.clear()
            self._journal_deletes.clear()
            return
        self._ops = _Ops()
        self._gen += 1
        gen = self._gen
        partition = self.partition
        statuses = [
            (
                s.id,
                partition,
                s.status,
                s.modified_at,
                _expiry(s),
                encode_status(s),
                s.target.service,
                s.created_at,
            )
            for s in ops.statuses.values()
        ]
        deleted = [(d,) for d in ops.deleted]
        outbox_seq = self._outbox_seq
        journal_deleted = [(d,) for d in ops.journal_deleted]

        def job(conn: sqlite3.Connection) -> None:
            if statuses:
                conn.executemany(_PUT_STATUS, statuses)
            if deleted:
                conn.executemany("DELETE FROM inv_status WHERE id = ?", deleted)
            if journal_deleted:
                conn.executemany("DELETE FROM journal WHERE id = ?", journal_deleted)
                conn.executemany("DELETE FROM journal_events WHERE id = ?", journal_deleted)
            if ops.journal:
                conn.executemany(
                    "INSERT OR REPLACE INTO journal (id, idx, type, appended_at, payload) "
                    "VALUES (?, ?, ?, ?, ?)",
                    ops.journal,
                )
            if ops.events:
                conn.executemany(
                    "INSERT OR REPLACE INTO journal_events "
                    "(id, seq, after_index, appended_at, event_type, event) "
                    "VALUES (?, ?, ?, ?, ?, ?)",
                    ops.events,
                )
            for sql, params in ops.misc:
                conn.execute(sql, params)
            conn.execute(
                "INSERT INTO partition_meta (partition, applied_lsn, outbox_seq) VALUES (?, ?, ?) "
                "ON CONFLICT(partition) DO UPDATE SET applied_lsn = excluded.applied_lsn, "
                "outbox_seq = excluded.outbox_seq",
                (partition, applied_lsn, outbox_seq),
            )

        self._db.submit_lazy(job, lambda: self._on_commit(gen))

    def _on_commit(self, gen: int) -> None:
        """Flush ``gen`` is durable: what it wrote may now be read back and dropped from memory."""
        self._committed_gen = gen
        for pending in (self._status_deletes, self._journal_deletes):
            for inv in [i for i, g in pending.items() if g <= gen]:
                del pending[inv]
        forgets = self._forgets
        while forgets and forgets[0][0] <= gen:
            _, inv = forgets.popleft()
            s = self._statuses.get(inv)
            if s is not None and s.status == "completed":
                self._journals.pop(inv, None)
                self._indexes.pop(inv, None)
        touched = self._state_touched
        while len(touched) > self._state_cache:
            obj, g = next(iter(touched.items()))
            if g > gen:
                break
            del touched[obj]
            self._state.pop(obj, None)
        # Completed invocations beyond the cache size leave memory once committed.
        completed = self._completed
        while len(completed) > self._completed_cache:
            inv, g = next(iter(completed.items()))
            if g > gen:
                break
            del completed[inv]
            s = self._statuses.get(inv)
            if s is not None and s.status == "completed":
                del self._statuses[inv]
            self._journals.pop(inv, None)
            self._indexes.pop(inv, None)


def _expiry(s: InvocationStatus) -> int | None:
    """When the cleaner must next look at a completed invocation (journal or result expiry)."""
    if s.status != "completed" or s.completed_at is None:
        return None
    expiry = s.completed_at + s.completion_retention_ms
    if s.journal_size and s.journal_retention_ms < s.completion_retention_ms:
        expiry = s.completed_at + s.journal_retention_ms
    return expiry


def _encode_timer(key: TimerKey) -> bytes:
    kind = {"sleep": b"s", "invoke": b"i"}[key.kind]
    return kind + key.id + key.completion_id.to_bytes(4, "big")


def _decode_timer(raw: bytes) -> TimerKey:
    kind = {b"s": "sleep", b"i": "invoke"}[raw[:1]]
    return TimerKey(kind, raw[1:25], int.from_bytes(raw[25:29], "big"))  # type: ignore[arg-type]
