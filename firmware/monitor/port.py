"""The monitor's end of the serial link to the engine: a UART on a Pi, a TCP listener on a laptop.

Topology (the engine's end always *opens* `monitor.serial_url` with pyserial):
- On a Raspberry Pi the link is a UART (`/dev/ttyAMA0`, or a USB adapter): each process opens
  its own device, wired TX->RX. The monitor opens its device like any serial port.
- On a laptop or in CI, `serial_url = "socket://127.0.0.1:7411"`: the MONITOR LISTENS on that
  address and the engine connects with pyserial's `socket://` handler (and retries until the
  monitor is up). The accepted socket is wrapped in pyserial's own socket port class, so both
  ends speak through the same `hal.serial_link.SerialLink` frames.
- A pty path also works (e.g. a `socat` pair): the monitor opens it like a UART.

Whoever connects last wins: a restarted engine replaces a dead or hung one's connection.
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from serial.urlhandler.protocol_socket import Serial as SocketSerial

from evnet.logs import event_logger
from hal.serial_link import SerialLink, SerialLinkError
from hal.serial_link.link import READ_SLICE_S


class _AcceptedSocketPort(SocketSerial):
    """pyserial's socket:// port over a socket we accepted instead of one it connects."""

    def __init__(self, sock: socket.socket, url: str) -> None:
        self._accepted = sock
        super().__init__(port=None, timeout=READ_SLICE_S, write_timeout=1.0)
        self.port = url  # only records the name while closed
        self.open()

    def open(self) -> None:
        self.logger = None
        self._socket = self._accepted
        self._socket.setblocking(False)
        self.is_open = True
        self.reset_input_buffer()

    def close(self) -> None:
        if self.is_open and self._socket is not None:
            try:
                self._socket.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self._socket.close()
            self._socket = None
        self.is_open = False  # unlike pyserial's, no 0.3 s sleep: nothing reconnects from here


def listen_address(url: str) -> tuple[str, int] | None:
    """(host, port) for a `socket://HOST:PORT` URL, None for a device path."""
    if not url.startswith("socket://"):
        return None
    parts = urlsplit(url)
    if not parts.hostname or parts.port is None:
        raise SerialLinkError(f"serial link {url}: expected socket://HOST:PORT")
    return parts.hostname, parts.port


class MonitorPort:
    """Hands out the current `SerialLink` to the engine, (re)opening or accepting one as needed."""

    def __init__(self, url: str, *, cp: str | None = None) -> None:
        self.url = url
        self.cp = cp
        self.log = event_logger("monitor_port", cp=cp, url=url)
        self._link: SerialLink | None = None
        self._server: socket.socket | None = None
        self._unavailable_logged = False
        address = listen_address(url)
        if address is not None:
            try:
                self._server = socket.create_server(address)
            except OSError as exc:
                raise SerialLinkError(f"cannot listen for the engine on {url}: {exc}") from exc
            self.host, self.port = self._server.getsockname()[:2]
            self.log.info("monitor_port.listening", address=f"{self.host}:{self.port}")

    @property
    def engine_url(self) -> str:
        """The URL the engine must open to reach this port."""
        return f"socket://{self.host}:{self.port}" if self._server is not None else self.url

    @property
    def listening(self) -> bool:
        """True for `socket://` (the monitor listens), False for a device it opens."""
        return self._server is not None

    @property
    def connected(self) -> bool:
        return self._link is not None

    def link(self, timeout: float) -> SerialLink | None:
        """The link to the engine; a newer engine connection replaces the old one. None if there is none yet."""
        if self._server is not None:
            newer = self._accept(0.0 if self._link is not None else timeout)
            if newer is not None:
                if self._link is not None:
                    self.drop("replaced by a new connection")
                self._link = newer
        elif self._link is None:
            try:
                self._link = SerialLink.open(self.url, cp=self.cp)
                self.log.info("monitor_port.open")
                self._unavailable_logged = False
            except SerialLinkError as exc:
                if not self._unavailable_logged:  # once per outage, not once per retry
                    self.log.warning("monitor_port.unavailable", error=str(exc))
                    self._unavailable_logged = True
                return None
        return self._link

    def _accept(self, timeout: float) -> SerialLink | None:
        assert self._server is not None
        self._server.settimeout(timeout)
        try:
            sock, peer = self._server.accept()
        except (TimeoutError, BlockingIOError):
            return None
        except OSError as exc:
            self.log.warning("monitor_port.accept_failed", error=str(exc))
            return None
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.log.info("monitor_port.engine_connected", peer=f"{peer[0]}:{peer[1]}")
        return SerialLink(_AcceptedSocketPort(sock, self.engine_url), self.engine_url, cp=self.cp)

    def drop(self, why: str) -> None:
        """Forget the current link (it failed, or a newer one came)."""
        if self._link is not None:
            self.log.warning("monitor_port.link_dropped", why=why)
            self._link.close()
            self._link = None

    def close(self) -> None:
        self.drop("closing")
        if self._server is not None:
            self._server.close()
