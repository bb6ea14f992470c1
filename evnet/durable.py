"""Files that must survive a crash or a power cut: replaced whole, atomically, or appended to, and on disk when
the call returns.

The new content goes to a temporary file beside the old one, which is fsync'd and renamed over it;
then the directory is fsync'd so the rename itself is durable. A crash at any point leaves either
the old file or the new one, never a mix (at most a stray `.tmp`, overwritten next time).
"""

from __future__ import annotations

import os


def fsync_dir(directory: str) -> None:
    """Make the directory's entries (a create, a rename) durable."""
    fd = os.open(directory, os.O_RDONLY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_file(path: str, data: bytes, mode: int = 0o600) -> None:
    """Atomically make `data` the content of `path`; `OSError` if that could not be done."""
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def append_synced(fd: int, data: bytes, size: int) -> None:
    """Append `data` to the file open at `fd` (O_APPEND, `size` bytes long) and fsync it; `OSError` if that
    failed, after cutting the file back to `size` so no half record is left for the next one to be glued to."""
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except OSError:
        try:
            os.ftruncate(fd, size)
        except OSError:
            pass
        raise
