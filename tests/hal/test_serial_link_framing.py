"""The frame codec: round trips, garbage, bad LRC, splits, oversize (property tests with hypothesis)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hal.serial_link.framing import ETX, STX, FrameDecoder, FrameError, encode, lrc

printable = st.binary(max_size=80).map(lambda b: bytes(0x20 + (x % 95) for x in b))
payloads = st.lists(printable, max_size=8)


def split_feed(decoder: FrameDecoder, data: bytes, cuts: list[int]) -> list[bytes]:
    out: list[bytes] = []
    points = sorted({c % (len(data) + 1) for c in cuts} | {0, len(data)})
    for a, b in zip(points, points[1:], strict=False):
        out += decoder.feed(data[a:b])
    return out


def test_frame_layout() -> None:
    assert encode(b'{"a":1}') == b'\x02{"a":1}\x03' + bytes([lrc(b'{"a":1}')])
    assert lrc(b"AB") == 0x41 ^ 0x42
    assert encode(b"") == b"\x02\x03\x00"


def test_encode_refuses_unframeable_payloads() -> None:
    for bad in (b"a\x02b", b"a\x03", b"\x7f", b"\xff", b"\n"):
        with pytest.raises(FrameError, match="printable ASCII"):
            encode(bad)
    with pytest.raises(FrameError, match="exceeds"):
        encode(b"x" * 11, max_payload=10)


@given(payloads, st.lists(st.integers(min_value=0), max_size=10))
def test_round_trip_in_any_split(messages: list[bytes], cuts: list[int]) -> None:
    decoder = FrameDecoder()
    stream = b"".join(encode(m) for m in messages)
    assert split_feed(decoder, stream, cuts) == messages
    assert decoder.counters.frames == len(messages)
    assert decoder.counters.bad_lrc == decoder.counters.garbage_bytes == 0


@settings(max_examples=200)
@given(payloads, st.lists(st.binary(max_size=20), min_size=9, max_size=9), st.lists(st.integers(min_value=0)))
def test_garbage_between_frames_is_skipped(messages: list[bytes], junk: list[bytes], cuts: list[int]) -> None:
    # Garbage without STX between frames: every frame comes through.
    junk = [j.replace(bytes([STX]), b"") for j in junk]
    stream = b"".join(j + encode(m) for j, m in zip(junk, messages, strict=False)) + junk[-1]
    decoder = FrameDecoder()
    assert split_feed(decoder, stream, cuts) == messages
    assert decoder.counters.garbage_bytes == sum(map(len, junk[:len(messages)])) + len(junk[-1])


@settings(max_examples=300)
@given(payloads, st.lists(st.binary(max_size=30), min_size=9, max_size=9))
def test_any_garbage_without_etx_never_hides_the_next_frame(messages: list[bytes], junk: list[bytes]) -> None:
    # Garbage with STX, partial frames, non-printables: the decoder is back in sync at the next STX.
    # (Garbage ending in STX..ETX waits for an LRC byte; that case is test_bad_lrc_that_is_an_stx...)
    decoder = FrameDecoder()
    for j, m in zip(junk, messages, strict=False):
        decoder.feed(j.replace(bytes([ETX]), b""))
        assert decoder.feed(encode(m)) == [m]


@given(printable, st.integers(min_value=1, max_value=255))
def test_bad_lrc_is_rejected_and_counted(payload: bytes, flip: int) -> None:
    frame = bytearray(encode(payload))
    frame[-1] ^= flip
    decoder = FrameDecoder()
    assert decoder.feed(bytes(frame) + encode(b"next")) == [b"next"]
    assert decoder.counters.bad_lrc == 1
    assert decoder.counters.frames == 1


def test_bad_lrc_that_is_an_stx_starts_the_next_frame() -> None:
    # A frame whose LRC byte was lost: the next frame's STX sits where the LRC should be.
    decoder = FrameDecoder()
    assert decoder.feed(b"\x02AB\x03" + encode(b"ok")) == [b"ok"]
    assert decoder.counters.bad_lrc == 1


def test_payload_bytes_equal_to_stx_or_etx_cannot_occur_but_lrc_may_be_either() -> None:
    # LRC 0x02 and 0x03 are ordinary: the byte after ETX is always the LRC.
    for lrc_value in (STX, ETX):
        payload = next(bytes([0x40, 0x40 ^ lrc_value]) for _ in [0])
        assert lrc(payload) == lrc_value
        assert FrameDecoder().feed(encode(payload) + encode(b"x")) == [payload, b"x"]


def test_stx_inside_a_frame_restarts_it() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x02half" + encode(b"whole")) == [b"whole"]
    assert decoder.counters.truncated == 1


def test_non_printable_byte_drops_the_frame() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b"\x02ab\x00cd\x03\x07" + encode(b"good")) == [b"good"]
    assert decoder.counters.bad_bytes == 1


@given(st.integers(min_value=0, max_value=40), st.lists(st.integers(min_value=0), max_size=5))
def test_oversize_frames_are_dropped_counted_and_resynced(limit: int, cuts: list[int]) -> None:
    decoder = FrameDecoder(max_payload=limit)
    big = b"x" * (limit + 1)
    fits = b"y" * limit
    stream = b"\x02" + big + b"\x03" + bytes([lrc(big)]) + encode(fits, max_payload=limit)
    assert split_feed(decoder, stream, cuts) == [fits]
    assert decoder.counters.oversize == 1
    assert decoder.counters.frames == 1


def test_decoder_memory_is_bounded_by_max_payload() -> None:
    decoder = FrameDecoder(max_payload=16)
    decoder.feed(b"\x02" + b"z" * 100_000)
    assert len(decoder._buf) <= 16
    assert decoder.feed(encode(b"after")) == [b"after"]


@settings(max_examples=300)
@given(st.binary(max_size=400), st.integers(min_value=0, max_value=64))
def test_any_bytes_at_all_give_only_well_formed_payloads(data: bytes, limit: int) -> None:
    decoder = FrameDecoder(max_payload=limit)
    for payload in decoder.feed(data):
        assert len(payload) <= limit
        assert all(0x20 <= b <= 0x7E for b in payload)
        assert encode(payload, max_payload=limit) in data  # it really was on the line, LRC and all
    c = decoder.counters
    assert c.frames * 3 + c.garbage_bytes <= len(data)
