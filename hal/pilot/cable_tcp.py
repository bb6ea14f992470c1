"""The virtual cable between two processes: the EVSE listens, the EV emulator connects.

Line-delimited JSON, one update per line: `{"k": "duty", "duty": 16.7}`, `{"k": "load", "load":
"C", "diode": true}`, `{"k": "current", "a": 16.0}`, `{"k": "msg", "m": {...}}`, `{"k": "ping"}`.
On connecting, each end sends its whole state. Both ends send a ping every `heartbeat_s` and drop
the connection after `dead_after_s` of silence, so a killed, stopped or vanished peer reads as
"unplugged" (state A, no current) within about a second, never as a stuck C. A bad line, an
unknown kind or an over-long line drops the connection (the EVSE then reads A): safe, and logged.

The EVSE takes one EV at a time; a second EV that connects while one is plugged in is refused.
"""

from __future__ import annotations

import json
import socket
import threading
import time
from typing import Any

from evnet.logs import EventLogger, event_logger
from hal.pilot.cable import MAX_MESSAGE_BYTES, CableEnd, EvEnd, EvseEnd

HEARTBEAT_S = 0.2
DEAD_AFTER_S = 1.0
MAX_LINE = MAX_MESSAGE_BYTES + 256
KINDS = frozenset({"duty", "load", "current", "msg", "ping"})


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
                 dead_after_s: float, on_gone: Any = None) -> None:
        self._sock = sock
        self._end = end
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
        line = (json.dumps({"k": kind, **body}, separators=(",", ":")) + "\n").encode()
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
        buf = b""
        last_heard = last_sent = time.monotonic()
        reason = "peer closed"
        try:
            while self._open:
                try:
                    chunk = self._sock.recv(65536)
                    if not chunk:
                        break
                    last_heard = time.monotonic()
                    buf += chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        self._handle(line)
                    if len(buf) > MAX_LINE:
                        raise ValueError(f"a line longer than {MAX_LINE} bytes")
                except TimeoutError:
                    pass
                now = time.monotonic()
                if now - last_heard > self._dead_after_s:
                    reason = f"silent for {now - last_heard:.2f} s"
                    break
                if now - last_sent >= self._heartbeat_s:
                    self.publish("ping", {})
                    last_sent = now
        except (ValueError, OSError) as exc:
            reason = f"{type(exc).__name__}: {exc}"
        if not self._open:
            reason = self._close_reason
        self._shutdown()
        if self._on_gone is not None:  # first: once the end reads unplugged, a new EV finds the socket free
            self._on_gone(self)
        self._end.detach(reason, self)

    def _handle(self, line: bytes) -> None:
        update = json.loads(line)
        if not isinstance(update, dict) or update.get("k") not in KINDS:
            raise ValueError(f"not a cable update: {line[:80]!r}")
        kind = update.pop("k")
        if kind != "ping":
            self._end.receive(kind, update)


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
                sock, peer = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                busy = self._conn is not None
                if not busy:
                    self._conn = _Connection(sock, self, self._log, self._heartbeat_s, self._dead_after_s,
                                             on_gone=self._gone)
            if busy:
                self._log.warning("cable.refused", peer=f"{peer[0]}:{peer[1]}", reason="an EV is plugged in")
                sock.close()
                continue
            self._log.info("cable.plugged", peer=f"{peer[0]}:{peer[1]}")
            self._conn.start()

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
        self._conn = _Connection(sock, self, self._log, heartbeat_s, dead_after_s)
        self._conn.start()
