"""The value of one slot: a batch of client commands in a compact, deterministic binary form.

    value = count:u32 { client_len:u16 client:utf-8 req:u64 command_len:u32 command }*

The empty value b"" is the no-op a new leader writes into a slot nobody accepted a value in.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import NamedTuple

NOOP = b""
_HEAD = struct.Struct(">I")
_CLIENT = struct.Struct(">H")
_REQ_LEN = struct.Struct(">QI")


class Command(NamedTuple):
    client: str
    req: int
    command: bytes


class BatchError(ValueError):
    """A slot value that is not a well-formed batch (a bug or a corrupted store)."""


def encode_batch(commands: Iterable[Command]) -> bytes:
    parts = [b""]
    count = 0
    for c in commands:
        client = c.client.encode()
        parts += [_CLIENT.pack(len(client)), client, _REQ_LEN.pack(c.req, len(c.command)), c.command]
        count += 1
    parts[0] = _HEAD.pack(count)
    return b"".join(parts)


def decode_batch(value: bytes) -> list[Command]:
    if value == NOOP:
        return []
    try:
        (count,), pos = _HEAD.unpack_from(value, 0), _HEAD.size
        out = []
        for _ in range(count):
            (n,) = _CLIENT.unpack_from(value, pos)
            pos += _CLIENT.size
            client = value[pos:pos + n].decode()
            pos += n
            req, m = _REQ_LEN.unpack_from(value, pos)
            pos += _REQ_LEN.size
            if pos + m > len(value):
                raise BatchError(f"command of {m} bytes runs past the end of a {len(value)}-byte batch")
            out.append(Command(client, req, value[pos:pos + m]))
            pos += m
    except (struct.error, UnicodeDecodeError) as e:
        raise BatchError(f"malformed batch of {len(value)} bytes: {e}") from e
    if pos != len(value):
        raise BatchError(f"{len(value) - pos} trailing bytes after a batch of {count} commands")
    return out
