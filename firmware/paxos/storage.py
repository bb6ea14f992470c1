"""Choose a durable acceptor store by name: `open_storage(directory, "file" | "sqlite")`.

SQLite (WAL, synchronous=FULL) is the default: it measured as fast as or faster than the
append-only file per durable save (SQLite reuses its WAL, so an fdatasync flushes no
file-size change; the growing log pays an ext4 journal commit each time) and it is a
long-tested, checksummed format. Figures in docs/paxos.md, from bench/paxos_storage.py.
"""

from __future__ import annotations

import os

from firmware.paxos.storage_file import FileStorage, StorageCorruptError
from firmware.paxos.storage_sqlite import SqliteStorage
from firmware.paxos.types import Storage

KINDS = {"file": ("acceptor.log", FileStorage), "sqlite": ("acceptor.sqlite", SqliteStorage)}
DEFAULT_KIND = "sqlite"

__all__ = ["KINDS", "DEFAULT_KIND", "StorageCorruptError", "open_storage"]


def open_storage(directory: str, kind: str = DEFAULT_KIND) -> Storage:
    """The acceptor store of one replica inside `directory` (created if missing)."""
    if kind not in KINDS:
        raise ValueError(f"unknown storage kind {kind!r}: expected one of {', '.join(KINDS)}")
    name, cls = KINDS[kind]
    return cls(os.path.join(directory, name))
