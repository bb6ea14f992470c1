"""The monitor link's frames, sans I/O: `<STX> payload <ETX> <LRC>`.

STX = 0x02, ETX = 0x03, LRC = the XOR of the payload bytes (STX and ETX excluded).

Payload bytes are restricted to printable ASCII (0x20-0x7E: compact JSON with `ensure_ascii`
fits), so STX and ETX never occur inside a payload and no escaping is needed: the byte after ETX
is always the LRC, whatever its value. `encode` refuses any other byte. The decoder:
- skips anything before an STX (counted as `garbage_bytes`);
- restarts at an STX inside a frame (the partial frame is counted in `truncated`);
- drops a frame with a non-printable byte (`bad_bytes`), one with a wrong LRC (`bad_lrc`), and one
  whose payload grows past `max_payload` (`oversize`), then waits for the next STX;
- if a wrong LRC byte is itself an STX, takes it as the start of the next frame (the real LRC was lost).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import reduce

STX = 0x02
ETX = 0x03
MAX_PAYLOAD = 1024


class FrameError(ValueError):
    """A payload that cannot be framed: a byte outside 0x20-0x7E, or too long."""


def lrc(payload: bytes) -> int:
    """XOR of the payload bytes."""
    return reduce(lambda acc, b: acc ^ b, payload, 0)


def _printable(b: int) -> bool:
    return 0x20 <= b <= 0x7E


def encode(payload: bytes, max_payload: int = MAX_PAYLOAD) -> bytes:
    """One frame carrying `payload` (printable ASCII, at most `max_payload` bytes)."""
    payload = bytes(payload)
    if len(payload) > max_payload:
        raise FrameError(f"payload of {len(payload)} bytes exceeds the frame limit of {max_payload}")
    for i, b in enumerate(payload):
        if not _printable(b):
            raise FrameError(f"payload byte {i} is 0x{b:02x}: only printable ASCII 0x20-0x7E may be framed")
    return bytes([STX]) + payload + bytes([ETX, lrc(payload)])


@dataclass
class DecoderCounters:
    """What the decoder accepted and threw away since it started."""

    frames: int = 0
    bad_lrc: int = 0
    oversize: int = 0
    bad_bytes: int = 0
    truncated: int = 0
    garbage_bytes: int = 0

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}


_IDLE, _PAYLOAD, _LRC, _SKIP = range(4)


class FrameDecoder:
    """Feed it bytes as they arrive, in any split; it returns the complete, checked payloads."""

    def __init__(self, max_payload: int = MAX_PAYLOAD) -> None:
        if max_payload < 0:
            raise ValueError(f"max_payload must be >= 0, got {max_payload}")
        self.max_payload = max_payload
        self.counters = DecoderCounters()
        self._state = _IDLE
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[bytes]:
        """Consume `data`; return the payloads of the frames it completed, in order."""
        out: list[bytes] = []
        c = self.counters
        for b in data:
            if self._state == _LRC:
                if b == lrc(self._buf):
                    c.frames += 1
                    out.append(bytes(self._buf))
                    self._state = _IDLE
                else:
                    c.bad_lrc += 1
                    self._state = _PAYLOAD if b == STX else _IDLE
                self._buf.clear()
            elif b == STX:
                if self._state == _PAYLOAD:
                    c.truncated += 1
                self._buf.clear()
                self._state = _PAYLOAD
            elif self._state == _PAYLOAD:
                if b == ETX:
                    self._state = _LRC
                elif not _printable(b):
                    c.bad_bytes += 1
                    self._drop()
                elif len(self._buf) >= self.max_payload:
                    c.oversize += 1
                    self._drop()
                else:
                    self._buf.append(b)
            else:  # _IDLE or _SKIP: outside a frame
                if self._state == _IDLE:
                    c.garbage_bytes += 1
        return out

    def _drop(self) -> None:
        """Throw the current frame away and wait for the next STX (its bytes are not counted as garbage)."""
        self._buf.clear()
        self._state = _SKIP
