"""A null-modem cable made of two pseudo-terminals, so RTU runs on a laptop without hardware.

`os.openpty()` gives a master fd and a slave path; a serial library needs a *path* at both
ends, so two ptys are joined master to master by a thread: bytes written to `a` come out
of `b` and back. Both slaves are raw (no echo, no line discipline) and kept open by the
pair itself, so an end may be closed and opened again without the other side seeing a
hang-up. A full buffer drops bytes (line noise) rather than blocking the bridge.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import tty


class PtyPair:
    """Two serial paths, `a` and `b`, wired to each other; `close()` tears it down."""

    def __init__(self, name: str = "pty-pair") -> None:
        self._fds: list[int] = []
        try:
            self._master_a, slave_a = self._open()
            self._master_b, slave_b = self._open()
            self.a = os.ttyname(slave_a)
            self.b = os.ttyname(slave_b)
            self._wake_r, self._wake_w = os.pipe()
            self._fds += [self._wake_r, self._wake_w]
        except BaseException:
            self._close_fds()
            raise
        self._closed = False
        self._thread = threading.Thread(target=self._pump, name=name, daemon=True)
        self._thread.start()

    def _open(self) -> tuple[int, int]:
        master, slave = os.openpty()
        self._fds += [master, slave]
        tty.setraw(slave)
        os.set_blocking(master, False)
        return master, slave

    def _pump(self) -> None:
        other = {self._master_a: self._master_b, self._master_b: self._master_a}
        watched = [self._master_a, self._master_b, self._wake_r]
        while True:
            ready, _, _ = select.select(watched, [], [])
            if self._wake_r in ready:
                return
            for src in ready:
                try:
                    data = os.read(src, 4096)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:  # EIO: no slave open (cannot happen while we hold them), or closing
                    return
                with contextlib.suppress(BlockingIOError, InterruptedError):
                    os.write(other[src], data)

    def close(self) -> None:
        """Stop the bridge and close every descriptor; idempotent."""
        if self._closed:
            return
        self._closed = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout=5)
        self._close_fds()

    def _close_fds(self) -> None:
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []

    def __enter__(self) -> PtyPair:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
