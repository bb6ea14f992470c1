"""Binary field packing for the wire codec: each message packed field by field from its dataclass's type hints.

    int   = u64 (decoded values above MAX_UINT are refused)   str = len:u16 utf-8
    bytes = len:u32 raw                                       tuple[X, ...] = n:u32 X*
    bool  = u8 0 or 1

Decoding distrusts every length and count (a frame is authentic by now, but a key holder may
still have a bug): a field that runs past the end, a count longer than the bytes left, an
integer beyond MAX_UINT all raise `ValueError`, which the codec turns into its own error.
"""

from __future__ import annotations

import struct
import typing
from collections.abc import Callable
from typing import Any

from firmware.paxos.core import messages as m
from firmware.paxos.core.types import Accepted, Ballot

U8, U16, U32, U64 = struct.Struct(">B"), struct.Struct(">H"), struct.Struct(">I"), struct.Struct(">Q")
# The largest integer taken from outside: slots, ballot rounds and request ids far below it, and
# what the core adds to one (a round + 1, a slot + n) still packs into a u64.
MAX_UINT = 2**63 - 1


class Out:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def bool(self, v: bool) -> None:
        self.parts.append(b"\x01" if v else b"\x00")

    def uint(self, v: int) -> None:
        if v < 0:
            raise ValueError(f"negative integer {v} cannot be sent")
        self.parts.append(U64.pack(v))

    def str(self, v: str) -> None:
        b = v.encode()
        self.parts.append(U16.pack(len(b)) + b)

    def bytes(self, v: bytes) -> None:
        self.parts.append(U32.pack(len(v)) + v)


class In:
    def __init__(self, data: memoryview) -> None:
        self.data, self.pos = data, 0

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise ValueError("frame ends inside a field")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def uint(self) -> int:
        v = U64.unpack(self.take(8))[0]
        if v > MAX_UINT:
            raise ValueError(f"integer {v} out of range (at most {MAX_UINT})")
        return v

    def bool(self) -> bool:
        v = self.take(1)[0]
        if v > 1:
            raise ValueError(f"a boolean of {v}")
        return v == 1

    def u16(self) -> int:
        return U16.unpack(self.take(2))[0]

    def str(self) -> str:
        return bytes(self.take(self.u16())).decode()

    def bytes(self) -> bytes:
        return bytes(self.take(U32.unpack(self.take(4))[0]))


def _ballot_enc(o: Out, b: Ballot) -> None:
    o.uint(b.round)
    o.str(b.node)


def _ballot_dec(i: In) -> Ballot:
    return Ballot(i.uint(), i.str())


def _seq(enc: Callable[[Out, Any], None], dec: Callable[[In], Any]) -> tuple[Callable, Callable]:
    def e(o: Out, items: tuple) -> None:
        o.parts.append(U32.pack(len(items)))
        for x in items:
            enc(o, x)

    def d(i: In) -> tuple:
        (n,) = U32.unpack(i.take(4))
        if n * 8 > i.left:  # every item holds at least a u64
            raise ValueError(f"{n} items announced, {i.left} bytes left")
        return tuple(dec(i) for _ in range(n))
    return e, d


def _accepted_enc(o: Out, a: Accepted) -> None:
    o.uint(a.slot)
    _ballot_enc(o, a.ballot)
    o.bytes(a.value)


def _accepted_dec(i: In) -> Accepted:
    return Accepted(i.uint(), _ballot_dec(i), i.bytes())


def _entry_enc(o: Out, e: m.Entry) -> None:
    o.uint(e.slot)
    o.bytes(e.value)


def _entry_dec(i: In) -> m.Entry:
    return m.Entry(i.uint(), i.bytes())


_FIELD_CODECS: dict[Any, tuple[Callable, Callable]] = {
    str: (Out.str, In.str),
    bool: (Out.bool, In.bool),
    int: (Out.uint, In.uint),
    bytes: (Out.bytes, In.bytes),
    Ballot: (_ballot_enc, _ballot_dec),
    tuple[int, ...]: _seq(Out.uint, In.uint),
    tuple[Accepted, ...]: _seq(_accepted_enc, _accepted_dec),
    tuple[m.Entry, ...]: _seq(_entry_enc, _entry_dec),
}


def plan(cls: type) -> list[tuple[str, Callable, Callable]]:
    """(field name, encoder, decoder) for each field of message class `cls`, in order."""
    hints = typing.get_type_hints(cls)
    out = []
    for name in cls.__dataclass_fields__:
        tp = hints[name]
        if tp not in _FIELD_CODECS:
            raise TypeError(f"{cls.__name__}.{name}: no wire form for type {tp}")
        out.append((name, *_FIELD_CODECS[tp]))
    return out
