"""Records framed with their length and CRC32, for append-only logs that must survive kill -9.

A frame is `length (u32) | crc32(payload) (u32) | crc32(those 8 bytes) (u32) | payload`, big-endian.
The header's own CRC keeps a damaged length in the middle of a log from passing for a torn tail.
`scan` reads frames until the first one that is not whole and intact and says where it starts,
where it would end and what is wrong with it; what that means (a torn last write to drop, or
damage for a person to look at) is the caller's to decide: damage that ends at or past the end
of the data is what a crash mid-write leaves, damage with more data after it is not.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

HEADER = struct.Struct(">III")  # payload length, crc32(payload), crc32(length and payload crc)


def frame(payload: bytes) -> bytes:
    first = struct.pack(">II", len(payload), zlib.crc32(payload))
    return first + struct.pack(">I", zlib.crc32(first)) + payload


@dataclass(frozen=True)
class Damage:
    offset: int  # where the bad frame starts
    end: int  # where it would end by its own header (at most the data's length)
    problem: str


@dataclass(frozen=True)
class Scan:
    frames: list[tuple[int, bytes]]  # (offset, payload) of each intact frame, in order
    end: int  # where the last intact frame ends: the next frame goes here
    damage: Damage | None  # the first frame that is not whole and intact, if any


def scan(data: bytes, start: int = 0, stop: int | None = None, max_payload: int = 1 << 28) -> Scan:
    """The frames of `data` from `start`, read while a frame begins before `stop` (default: the end); never raises.

    A frame may run past `stop` (a log followed by preallocated zeros stops at the zeros, yet its
    last payload may end in zero bytes); it may not run past the data.
    """
    stop = len(data) if stop is None else stop
    view = memoryview(data)
    frames: list[tuple[int, bytes]] = []
    pos = start
    while pos < stop:
        problem = None
        if pos + HEADER.size > len(data):
            problem, end = "record header cut short", len(data)
        else:
            length, crc, head_crc = HEADER.unpack_from(data, pos)
            end = pos + HEADER.size + length
            if zlib.crc32(view[pos:pos + 8]) != head_crc:
                problem, end = "record header CRC mismatch", pos + HEADER.size
            elif length == 0 or length > max_payload:
                problem, end = f"impossible record length {length}", min(end, len(data))
            elif end > len(data):
                problem, end = f"record of {length} bytes cut short at {len(data) - pos - HEADER.size}", len(data)
            elif zlib.crc32(view[pos + HEADER.size:end]) != crc:
                problem = "CRC mismatch"
        if problem is not None:
            return Scan(frames, pos, Damage(pos, end, problem))
        frames.append((pos, bytes(view[pos + HEADER.size:end])))
        pos = end
    return Scan(frames, pos, None)
