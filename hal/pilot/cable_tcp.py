"""The virtual cable between two processes: the EVSE listens, the EV emulator connects.

Line-delimited JSON, one update per line (`hal.pilot.cable_updates`): `{"k": "duty", "duty": 16.7}`,
`{"k": "load", "load": "C", "diode": true}`, `{"k": "current", "a": 16.0}`, `{"k": "msg", "m": {...}}`,
`{"k": "ping"}`. On connecting, each end sends its whole state. Both ends send a ping every
`heartbeat_s` and drop the connection after `dead_after_s` of silence, so a killed, stopped or
vanished peer reads as "unplugged" (state A, no current) within about a second, never as a stuck C.

A bad line (not JSON, nested too deep, an unknown kind, a number out of range, longer than
`MAX_LINE`) is dropped, counted in the end's `dropped` and logged with the peer's address, and the
reader keeps reading: the EV's next change still gets through. Should the reader itself fail, the
connection is dropped (the EVSE reads A: contactor open) and the EVSE end reports `cable_fault`
until the next EV plugs in; the listener keeps accepting.

The EVSE takes one EV at a time; a second EV that connects while one is plugged in is refused.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from evnet.logs import EventLogger, event_logger
from hal.pilot.cable import CableEnd, EvEnd, EvseEnd
from hal.pilot.cable_updates import MAX_LINE, UpdateError, decode_line, encode_line

HEARTBEAT_S = 0.2
DEAD_AFTER_S = 1.0
ACCEPT_RETRY_S = 0.5  # after an unexpected failure to accept, wait this long before the next try


class CableError(Exception):
    """The cable cannot be set up (bad URL, nothing listening, port taken)."""


def parse_cable_url(url: str) -> tuple[str, int]:
    """`tcp://HOST:PORT` -> (host, port); anything else raises `CableError`."""
    if not url.startswith("tcp://"):
        raise CableError(f"cable URL {url!r}: expected tcp://HOST:PORT")
    host, sep, port = url[len("tcp://"):].rstrip("/").rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise CableError(f"cable URL {url!r}: expected tcp://HOST:PORT with a port 0-65535")
    return host.strip("[]"), int(port)


class _Connection:
    """One TCP connection carrying one end's updates; a reader thread feeds the end and keeps time."""

    def __init__(self, sock: socket.socket, end: CableEnd, log: EventLogger, heartbeat_s: float,
                 dead_after_s: float, on_gone: Any = None, peer: str = "peer") -> None:
        self._sock = sock
        self._end = end
        self.peer = peer
        self._buf = b""
        self._skipping = False  # inside an over-long line: drop bytes up to its newline
        self._log = log
        self._heartbeat_s = heartbeat_s
        self._dead_after_s = dead_after_s
        self._on_gone = on_gone
        self._send_lock = threading.Lock()
        self._open = True
        self._close_reason = "closed"
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(heartbeat_s)
        self._thread = threading.Thread(target=self._run, name=f"cable-{end.role}", daemon=True)

    def start(self) -> None:
        self._end.attach(self)
        self._thread.start()

    def publish(self, kind: str, body: dict[str, Any]) -> bool:
        line = encode_line(kind, body)
        with self._send_lock:
            if not self._open:
                return False
            try:
                self._sock.sendall(line)
                return True
            except OSError as exc:
                self._close_reason = f"send failed: {exc}"
        self._shutdown()
        return False

    def close(self) -> None:
        self._close_reason = "closed"
        self._shutdown()

    def _shutdown(self) -> None:
        with self._send_lock:
            if not self._open:
                return
            self._open = False
        try:
            self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self._sock.close()

    def _run(self) -> None:
        last_heard = last_sent = time.monotonic()
        reason = "peer closed"
        failed: str | None = None
        try:
            while self._open:
                try:
                    chunk = self._sock.recv(65536)
                    if not chunk:
                        break
                    last_heard = time.monotonic()
                    self._feed(chunk)
                except TimeoutError:
                    pass
                now = time.monotonic()
                if now - last_heard > self._dead_after_s:
                    reason = f"silent for {now - last_heard:.2f} s"
                    break
                if now - last_sent >= self._heartbeat_s:
                    self.publish("ping", {})
                    last_sent = now
        except OSError as exc:
            reason = f"{type(exc).__name__}: {exc}"
        except Exception as exc:  # the reader itself failed: drop the EV (it reads A), say so, fault
            reason = failed = f"reader failed: {exc!r}"
        if not self._open:
            reason = self._close_reason
        self._shutdown()
        if self._on_gone is not None:  # first: once the end reads unplugged, a new EV finds the socket free
            self._on_gone(self)
        self._end.detach(reason, self)
        if failed is not None:
            self._end.link_failed(f"{failed} (peer {self.peer})")

    def _feed(self, chunk: bytes) -> None:
        """Split what arrived into lines and handle each; a line longer than MAX_LINE is dropped whole."""
        start = 0
        while (newline := chunk.find(b"\n", start)) >= 0:
            piece, start = chunk[start:newline], newline + 1
            if self._skipping:  # the end of an over-long line
                self._skipping = False
                continue
            line, self._buf = self._buf + piece, b""
            if len(line) > MAX_LINE:
                self._end.drop(self.peer, f"a line of {len(line)} bytes, at most {MAX_LINE}")
            else:
                self._handle(line)
        if not self._skipping:
            self._buf += chunk[start:]
            if len(self._buf) > MAX_LINE:
                self._end.drop(self.peer, f"a line longer than {MAX_LINE} bytes")
                self._buf, self._skipping = b"", True

    def _handle(self, line: bytes) -> None:
        try:
            kind, body = decode_line(line)
        except UpdateError as exc:
            self._end.drop(self.peer, str(exc))
            return
        if kind != "ping":
            self._end.receive(kind, body, source=self.peer)


class TcpEvseEnd(EvseEnd):
    """The EVSE end listening on `tcp://HOST:PORT` (port 0 picks a free one: see `.port`, `.url`)."""

    def __init__(self, url: str, *, cp: str | None = None, heartbeat_s: float = HEARTBEAT_S,
                 dead_after_s: float = DEAD_AFTER_S) -> None:
        host, port = parse_cable_url(url)
        super().__init__(event_logger("pilot", cp=cp, cable="tcp"))
        self._heartbeat_s, self._dead_after_s = heartbeat_s, dead_after_s
        try:
            self._server = socket.create_server((host, port), reuse_port=False)
        except OSError as exc:
            raise CableError(f"cannot listen for the EV on {url}: {exc}") from exc
        self._server.settimeout(0.2)
        self.host, self.port = self._server.getsockname()[:2]
        self._conn: _Connection | None = None
        self._stopping = False
        self._accepter = threading.Thread(target=self._accept_loop, name="cable-accept", daemon=True)
        self._accepter.start()
        self._log.info("cable.listening", url=self.url)

    @property
    def url(self) -> str:
        return f"tcp://{self.host}:{self.port}"

    def _accept_loop(self) -> None:
        while not self._stopping:
            try:
                self._accept_one()
            except Exception as exc:  # accept failed (out of file descriptors, say): try again, never die
                if self._stopping:
                    return
                self._fold.error("cable.accept_failed", error=repr(exc), retry_s=ACCEPT_RETRY_S)
                time.sleep(ACCEPT_RETRY_S)

    def _accept_one(self) -> None:
        try:
            sock, address = self._server.accept()
        except TimeoutError:
            return
        peer = f"{address[0]}:{address[1]}"
        with self._lock:
            busy = self._conn is not None
            if not busy:
                try:
                    conn = _Connection(sock, self, self._log, self._heartbeat_s, self._dead_after_s,
                                       on_gone=self._gone, peer=peer)
                except BaseException:
                    sock.close()
                    raise
                self._conn = conn
        if busy:
            self._log.warning("cable.refused", peer=peer, reason="an EV is plugged in")
            sock.close()
            return
        self._log.info("cable.plugged", peer=peer)
        try:
            conn.start()
        except BaseException:  # free the socket for the next EV
            conn.close()
            self._gone(conn)
            raise

    def _gone(self, conn: _Connection) -> None:
        with self._lock:
            if self._conn is conn:
                self._conn = None

    def _release(self) -> None:
        self._stopping = True
        self._server.close()
        conn = self._conn
        if conn is not None:
            conn.close()
        self._accepter.join(timeout=2.0)
        CableEnd.close(self)


class TcpEvEnd(EvEnd):
    """The EV end: plugs into the EVSE at `tcp://HOST:PORT`. `close()` unplugs."""

    def __init__(self, url: str, *, cp: str | None = None, timeout: float = 5.0,
                 heartbeat_s: float = HEARTBEAT_S, dead_after_s: float = DEAD_AFTER_S) -> None:
        host, port = parse_cable_url(url)
        super().__init__(event_logger("ev_cable", cp=cp, cable="tcp"))
        try:
            sock = socket.create_connection((host, port), timeout=timeout)
        except OSError as exc:
            raise CableError(f"cannot plug into the EVSE at {url}: {exc}") from exc
        self._conn = _Connection(sock, self, self._log, heartbeat_s, dead_after_s, peer=f"evse {host}:{port}")
        self._conn.start()
