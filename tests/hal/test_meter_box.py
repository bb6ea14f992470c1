"""The meter box's reading of the cable (hal/meter/box.py): the EV's `current` updates, however they are cut
into TCP segments, and nothing from a bad line."""

from __future__ import annotations

from hal.meter.box import CableTap
from hal.pilot.cable_updates import encode_line


def test_the_current_follows_the_evs_updates_across_segments_and_ends_at_0_with_the_connection() -> None:
    live: set[CableTap] = set()
    tap = CableTap(live)
    stream = encode_line("load", {"load": "C", "diode": True}) + encode_line("current", {"a": 21.0})
    tap.upstream(stream[:7])
    tap.upstream(stream[7:-3])
    assert tap.amps == 0.0  # the current's line is not whole yet
    tap.upstream(stream[-3:])
    assert tap.amps == 21.0 and live == {tap}
    tap.upstream(encode_line("ping", {}) + encode_line("current", {"a": 6}))
    assert tap.amps == 6.0
    tap.closed()
    assert tap.amps == 0.0 and live == set()


def test_bad_lines_are_counted_and_change_nothing() -> None:
    tap = CableTap(set())
    tap.upstream(encode_line("current", {"a": 16.0}))
    tap.upstream(b'{"k":"current","a":-5}\nnot json\n{"k":"current","a":1e999}\n')
    assert tap.amps == 16.0 and tap.dropped == 3
    tap.upstream(b"x" * 70_000)  # a line longer than any update: dropped, not kept
    assert tap.dropped == 4 and tap.amps == 16.0
