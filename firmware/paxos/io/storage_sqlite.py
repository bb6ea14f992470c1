"""Durable acceptor state in SQLite: WAL journal, synchronous=FULL, one transaction per `save`.

With `synchronous=FULL` in WAL mode, SQLite fsyncs the WAL at every commit, so `save`
returns only once the promise and the entries are durable; a crash mid-commit leaves the
transaction out (SQLite's own checksummed WAL frames do the torn-write detection).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence

from firmware.paxos.core.types import Accepted, Ballot, DurableState

SCHEMA = """
CREATE TABLE IF NOT EXISTS promise (id INTEGER PRIMARY KEY CHECK (id = 0), round INTEGER NOT NULL, node TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accepted (slot INTEGER PRIMARY KEY, round INTEGER NOT NULL, node TEXT NOT NULL,
                                     value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 0), slot INTEGER NOT NULL, blob BLOB NOT NULL);
"""


class SqliteStorage:
    """`Storage` in an SQLite database at `path` (created with its directory if missing)."""

    def __init__(self, path: str, sync: bool = True) -> None:
        self.path = path
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        # isolation_level=None: we issue BEGIN/COMMIT ourselves, one transaction per save.
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={'FULL' if sync else 'OFF'}")
        self._db.executescript(SCHEMA)

    def load(self) -> DurableState:
        db = self._db
        state = DurableState()
        row = db.execute("SELECT round, node FROM promise WHERE id = 0").fetchone()
        if row:
            state.promised = Ballot(row[0], row[1])
        row = db.execute("SELECT slot, blob FROM snapshot WHERE id = 0").fetchone()
        if row:
            state.snapshot_slot, state.snapshot = row[0], bytes(row[1])
        for slot, rnd, node, value in db.execute(
                "SELECT slot, round, node, value FROM accepted WHERE slot >= ? ORDER BY slot", (state.snapshot_slot,)):
            state.accepted[slot] = Accepted(slot, Ballot(rnd, node), bytes(value))
        return state

    def save(self, promised: Ballot | None, accepted: Sequence[Accepted]) -> None:
        if promised is None and not accepted:
            return
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            if promised is not None:
                db.execute("INSERT OR REPLACE INTO promise (id, round, node) VALUES (0, ?, ?)",
                           (promised.round, promised.node))
            db.executemany("INSERT OR REPLACE INTO accepted (slot, round, node, value) VALUES (?, ?, ?, ?)",
                           [(a.slot, a.ballot.round, a.ballot.node, a.value) for a in accepted])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def save_snapshot(self, slot: int, blob: bytes) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            row = db.execute("SELECT slot FROM snapshot WHERE id = 0").fetchone()
            if row is None or row[0] <= slot:
                db.execute("INSERT OR REPLACE INTO snapshot (id, slot, blob) VALUES (0, ?, ?)", (slot, blob))
                db.execute("DELETE FROM accepted WHERE slot < ?", (slot,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def close(self) -> None:
        self._db.close()
