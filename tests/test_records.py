"""Length- and CRC-framed records: every intact frame before the first bad one, and where that one starts."""

from __future__ import annotations

from evnet.records import HEADER, frame, scan


def test_frames_read_back_in_order_with_their_offsets() -> None:
    data = b"HEAD" + frame(b"one") + frame(b"two\0\0")
    read = scan(data, 4)
    assert read.frames == [(4, b"one"), (4 + HEADER.size + 3, b"two\0\0")]
    assert read.end == len(data) and read.damage is None


def test_a_frame_cut_short_is_damage_that_reaches_the_end() -> None:
    whole = frame(b"first") + frame(b"second")
    for cut in range(len(frame(b"first")) + 1, len(whole)):
        read = scan(whole[:cut])
        assert read.frames == [(0, b"first")] and read.end == len(frame(b"first"))
        assert read.damage is not None and read.damage.end == cut


def test_a_bad_byte_in_the_middle_is_damage_with_data_after_it() -> None:
    data = bytearray(frame(b"a" * 10) + frame(b"b" * 10) + frame(b"c" * 10))
    second = len(frame(b"a" * 10))
    for at in range(second, second + HEADER.size + 10):
        bad = bytearray(data)
        bad[at] ^= 0x40
        read = scan(bytes(bad))
        assert read.frames == [(0, b"a" * 10)]
        assert read.damage is not None and read.damage.offset == second and read.damage.end < len(data)


def test_frames_may_begin_only_before_stop_but_run_past_it() -> None:
    data = frame(b"x\0\0\0") + bytes(64)
    read = scan(data, 0, len(data.rstrip(b"\0")))
    assert read.frames == [(0, b"x\0\0\0")] and read.damage is None
