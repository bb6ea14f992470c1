"""Choose a durable acceptor store by name: `open_storage(directory, "file" | "sqlite")`.

The append-only file is the default. Alone, one save costs about the same in both (SQLite
even wins on big batches: it reuses its WAL, so an fdatasync flushes no file-size change),
but in a running site of three replicas on one disk the file gave a clearly lower commit
latency (SQLite adds WAL checkpoints and more Python work per save). Figures in
docs/paxos.md, from bench/paxos_storage.py and bench/paxos.py.
"""

from __future__ import annotations

import os

from firmware.paxos.core.types import Storage
from firmware.paxos.io.storage_file import FileStorage, StorageCorruptError
from firmware.paxos.io.storage_sqlite import SqliteStorage

KINDS = {"file": ("acceptor.log", FileStorage), "sqlite": ("acceptor.sqlite", SqliteStorage)}
DEFAULT_KIND = "file"

__all__ = ["KINDS", "DEFAULT_KIND", "StorageCorruptError", "open_storage"]


def open_storage(directory: str, kind: str = DEFAULT_KIND) -> Storage:
    """The acceptor store of one replica inside `directory` (created if missing)."""
    if kind not in KINDS:
        raise ValueError(f"unknown storage kind {kind!r}: expected one of {', '.join(KINDS)}")
    name, cls = KINDS[kind]
    return cls(os.path.join(directory, name))
