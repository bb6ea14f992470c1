"""A replica's data directory: one process at a time (a lock), and epochs that never repeat.

Two replica processes on one directory would both write the same acceptor log and knock each
other off the broker (the same client id). `DataDir.open` takes an exclusive `flock` on
`lock` in the directory and holds it for the life of the process; the kernel drops it when the
process ends, kill -9 included, so a stale lock file never blocks a restart. The holder writes
its pid into the file, so the one refused can say who holds it.

Epochs name a replica's broker connections (see liveness.py): every connection gets a new one,
and the Last Will of that connection names it. They must never repeat and must rise across
restarts, so each start takes the next `start` number from the file `epoch` (written and
fsynced before it is used; never below the Unix time in seconds, so a lost file does not bring
old numbers back), and the epochs of that start are `start << 32 | n`, n = 1, 2, ... one per
connection.
"""

from __future__ import annotations

import fcntl
import os
import time

from evnet.logs import event_logger

LOCK_NAME, EPOCH_NAME = "lock", "epoch"
_CONN_BITS = 32


class DataDirLockedError(Exception):
    """Another process holds the data directory."""

    def __init__(self, path: str, holder: str) -> None:
        self.path, self.holder = path, holder
        who = f"pid {holder}" if holder else "a process that has not written its pid yet"
        super().__init__(f"data directory {path} is in use by another replica ({who}): stop that one first, "
                         f"or give this one its own --data-dir")


class DataDir:
    """The directory, locked by this process until `close()`; `next_epoch()` for each broker connection."""

    def __init__(self, path: str, fd: int, start: int) -> None:
        self.path = path
        self._fd = fd
        self.start = start
        self._conn = 0

    @classmethod
    def open(cls, path: str) -> DataDir:
        """Create `path` if missing, lock it (`DataDirLockedError` if another process has it), take a start number."""
        os.makedirs(path, exist_ok=True)
        lock_path = os.path.join(path, LOCK_NAME)
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip()
            os.close(fd)
            raise DataDirLockedError(path, holder) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            start = _take_start(path)
        except BaseException:
            os.close(fd)
            raise
        return cls(path, fd, start)

    def next_epoch(self) -> int:
        """A number no connection of this replica had before, above all of them (one per connection)."""
        self._conn += 1
        if self._conn >= 1 << _CONN_BITS:  # four billion reconnects in one run: take a new start number
            self.start, self._conn = _take_start(self.path), 1
        return self.start << _CONN_BITS | self._conn

    def close(self) -> None:
        """Release the lock (the kernel would at exit anyway)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


def _take_start(path: str) -> int:
    """The stored start number plus one (at least the Unix time in seconds), durable before it is returned."""
    epoch_path = os.path.join(path, EPOCH_NAME)
    stored = 0
    try:
        with open(epoch_path) as f:
            text = f.read().strip()
        stored = int(text)
    except FileNotFoundError:
        pass
    except (OSError, ValueError) as e:
        event_logger("paxos.datadir").warning("paxos.epoch_file_unreadable", path=epoch_path, error=str(e),
                                              fallback="the Unix time")
    start = max(stored + 1, int(time.time()))
    if start >= 1 << (64 - _CONN_BITS):
        raise ValueError(f"{epoch_path}: start number {start} is out of range")
    tmp = epoch_path + ".tmp"
    with open(tmp, "w") as f:
        f.write(f"{start}\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, epoch_path)
    dfd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dfd)
    finally:
        os.close(dfd)
    return start
