"""The value of one slot: a batch of client commands, stamped by the leader that proposed it.

    value   = stamp count:u32 command*
    stamp   = round:u64 node_len:u16 node:utf-8 now_ms:u64
    command = keyed:u8 client_len:u16 client:utf-8 req:u64 command_len:u32 command

`keyed` is 1 when the request came with the site key's MAC (a member's replica, a tool holding the
key), 0 for a request only its own signature vouches for (a driver's app: the machine checks it).
The stamp (the proposer's ballot and its monotonic clock in ms) is how time enters the state
machine (context.py): every replica decodes the same bytes, so every replica sees the same time.
The empty value b"" is the no-op a new leader writes into a slot nobody accepted a value in.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from typing import NamedTuple

NOOP = b""
_STAMP_ROUND, _STAMP_NOW = struct.Struct(">Q"), struct.Struct(">Q")
_HEAD = struct.Struct(">I")
_CLIENT = struct.Struct(">H")
_REQ_LEN = struct.Struct(">QI")
MAX_NOW_MS = 2**62  # a leader's clock beyond this (about 146 million years of uptime) is a bug


class Command(NamedTuple):
    client: str
    req: int
    command: bytes
    keyed: bool = True  # came under the site key's MAC (context.py: `member`)


class Stamp(NamedTuple):
    """The proposing leader's office (ballot round and node) and its monotonic clock in ms."""

    round: int
    node: str
    now_ms: int


class BatchError(ValueError):
    """A slot value that is not a well-formed batch (a bug or a corrupted store)."""


def encode_batch(stamp: Stamp, commands: Iterable[Command]) -> bytes:
    node = stamp.node.encode()
    parts = [_STAMP_ROUND.pack(stamp.round), _CLIENT.pack(len(node)), node,
             _STAMP_NOW.pack(min(max(stamp.now_ms, 0), MAX_NOW_MS)), b""]
    count = 0
    for c in commands:
        client = c.client.encode()
        parts += [b"\x01" if c.keyed else b"\x00", _CLIENT.pack(len(client)), client,
                  _REQ_LEN.pack(c.req, len(c.command)), c.command]
        count += 1
    parts[4] = _HEAD.pack(count)
    return b"".join(parts)


def decode_batch(value: bytes) -> tuple[Stamp | None, list[Command]]:
    """The stamp and the commands of a slot's value; (None, []) for the no-op."""
    if value == NOOP:
        return None, []
    try:
        (rnd,), pos = _STAMP_ROUND.unpack_from(value, 0), _STAMP_ROUND.size
        (n,) = _CLIENT.unpack_from(value, pos)
        pos += _CLIENT.size
        node = value[pos:pos + n].decode()
        pos += n
        (now_ms,) = _STAMP_NOW.unpack_from(value, pos)
        pos += _STAMP_NOW.size
        if now_ms > MAX_NOW_MS:
            raise BatchError(f"a stamp of {now_ms} ms")
        (count,) = _HEAD.unpack_from(value, pos)
        pos += _HEAD.size
        out = []
        for _ in range(count):
            keyed = value[pos]
            if keyed > 1:
                raise BatchError(f"keyed flag {keyed}")
            pos += 1
            (n,) = _CLIENT.unpack_from(value, pos)
            pos += _CLIENT.size
            client = value[pos:pos + n].decode()
            pos += n
            req, m = _REQ_LEN.unpack_from(value, pos)
            pos += _REQ_LEN.size
            if pos + m > len(value):
                raise BatchError(f"command of {m} bytes runs past the end of a {len(value)}-byte batch")
            out.append(Command(client, req, value[pos:pos + m], keyed == 1))
            pos += m
    except (struct.error, UnicodeDecodeError, IndexError) as e:
        raise BatchError(f"malformed batch of {len(value)} bytes: {e}") from e
    if pos != len(value):
        raise BatchError(f"{len(value) - pos} trailing bytes after a batch of {count} commands")
    return Stamp(rnd, node, now_ms), out
