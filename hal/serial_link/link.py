"""`SerialLink`: frames over a pyserial port (a UART on a Pi; a pty or `socket://` on a laptop).

Every wait is bounded: reads wait at most the `recv` timeout, writes at most `write_timeout`. A line
that fails (device gone, peer closed the socket, pty closed) raises `SerialLinkError` naming the URL,
and stays failed: the caller (the monitor, the engine) decides what is safe, e.g. count heartbeats as
missed. Not thread-safe for two readers; one reader and one writer may run at once.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from typing import Any

import serial

from evnet.logs import event_logger
from hal.serial_link.framing import MAX_PAYLOAD, FrameDecoder, encode

READ_SLICE_S = 0.05  # how long one blocking read may wait before the deadline is checked again


class SerialLinkError(Exception):
    """The serial line cannot be opened, or failed while in use."""


class SerialLink:
    """Send and receive `<STX> payload <ETX> <LRC>` frames; see `hal.serial_link.framing`."""

    def __init__(self, port: serial.SerialBase, url: str, *, max_payload: int = MAX_PAYLOAD,
                 cp: str | None = None) -> None:
        self.url = url
        self._port = port
        self._decoder = FrameDecoder(max_payload)
        self._ready: deque[bytes] = deque()
        self._send_lock = threading.Lock()
        self._log = event_logger("serial_link", cp=cp, url=url)
        self._failed: str | None = None
        self.sent = 0
        self.bad_json = 0

    @classmethod
    def open(cls, url: str, *, baudrate: int = 115200, write_timeout: float = 1.0,
             max_payload: int = MAX_PAYLOAD, cp: str | None = None) -> SerialLink:
        """Open `url`: a device (`/dev/ttyAMA0`), a pty path, or any pyserial URL (`socket://HOST:PORT`)."""
        try:
            port = serial.serial_for_url(url, baudrate=baudrate, timeout=READ_SLICE_S,
                                         write_timeout=write_timeout)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise SerialLinkError(f"cannot open serial link {url}: {exc}") from exc
        return cls(port, url, max_payload=max_payload, cp=cp)

    @property
    def counters(self) -> dict[str, int]:
        """Frames sent and received, and everything the decoder threw away."""
        return {"sent": self.sent, **self._decoder.counters.as_dict(), "bad_json": self.bad_json}

    @property
    def failed(self) -> str | None:
        """Why the line failed, or None while it works."""
        return self._failed

    def _fail(self, what: str, exc: BaseException) -> SerialLinkError:
        self._failed = f"{what}: {exc}"
        self._log.error("serial_link.failed", what=what, error=str(exc))
        return SerialLinkError(f"serial link {self.url}: {what}: {exc}")

    def _check(self) -> None:
        if self._failed is not None:
            raise SerialLinkError(f"serial link {self.url} has failed ({self._failed})")

    def send(self, payload: bytes | str) -> None:
        """Send one frame. `FrameError` for a payload that cannot be framed; `SerialLinkError` if the line fails."""
        data = payload.encode("ascii") if isinstance(payload, str) else payload
        frame = encode(data, self._decoder.max_payload)
        self._check()
        with self._send_lock:
            try:
                self._port.write(frame)
                self._port.flush()
            except (serial.SerialException, OSError) as exc:
                raise self._fail("write failed", exc) from exc
            self.sent += 1

    def recv(self, timeout: float) -> bytes | None:
        """The next payload, waiting at most `timeout` seconds; None if none came in time."""
        deadline = time.monotonic() + max(0.0, timeout)
        while not self._ready:
            self._check()
            try:
                data = self._port.read(1)
                if data and self._port.in_waiting:
                    data += self._port.read(self._port.in_waiting)
            except (serial.SerialException, OSError) as exc:
                raise self._fail("read failed", exc) from exc
            if data:
                self._ready.extend(self._decoder.feed(data))
            if not self._ready and time.monotonic() >= deadline:
                return None
        return self._ready.popleft()

    def send_json(self, message: dict[str, Any]) -> None:
        """Send a dict as compact ASCII JSON."""
        self.send(json.dumps(message, separators=(",", ":"), ensure_ascii=True, allow_nan=False))

    def recv_json(self, timeout: float) -> dict[str, Any] | None:
        """The next payload that is a JSON object (others are counted in `bad_json` and skipped)."""
        deadline = time.monotonic() + max(0.0, timeout)
        while True:
            payload = self.recv(max(0.0, deadline - time.monotonic()))
            if payload is None:
                return None
            try:
                message = json.loads(payload)
                if isinstance(message, dict):
                    return message
            except ValueError:
                pass
            self.bad_json += 1
            self._log.warning("serial_link.bad_json", payload=payload[:60].decode("ascii"))

    def close(self) -> None:
        try:
            self._port.close()
        except (serial.SerialException, OSError):
            pass

    def __enter__(self) -> SerialLink:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
