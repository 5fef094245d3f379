"""Cluster metadata kept by the server: the schema registry, persisted in the database."""

from __future__ import annotations

import sqlite3
from typing import Final

import msgspec

from undying.server.schema import Schema
from undying.server.storage.database import Database

__all__ = ["SCHEMA", "MetadataStore"]

SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS metadata (
    key TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;
"""

_ENC: Final = msgspec.msgpack.Encoder()
_DEC: Final = msgspec.msgpack.Decoder(Schema)


class MetadataStore:
    """The current schema, and durable updates of it (compare-and-set on its version)."""

    def __init__(self, db: Database | None) -> None:
        self._db = db
        self.schema = Schema()

    def load(self) -> None:
        if self._db is None:
            return
        row = self._db.reader.execute("SELECT value FROM metadata WHERE key = 'schema'").fetchone()
        if row is not None:
            self.schema = _DEC.decode(row[0])

    async def update(self, expected_version: int, new: Schema) -> bool:
        """Replace the schema if it is still at ``expected_version``; durable when it returns."""
        if self.schema.version != expected_version:
            return False
        self.schema = new
        if self._db is not None:
            data = _ENC.encode(new)
            version = new.version

            def job(conn: sqlite3.Connection) -> None:
                conn.execute(
                    "INSERT OR REPLACE INTO metadata (key, version, value) VALUES ('schema', ?, ?)",
                    (version, data),
                )

            await self._db.submit(job)
        return True
