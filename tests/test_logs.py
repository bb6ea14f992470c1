"""Log lines are one event each, key=value, with the charge point id, and quote what needs it."""

from __future__ import annotations

import io
import re

from evnet.logs import event_logger, format_fields, setup_logging


def test_one_line_per_event_with_cp_id() -> None:
    out = io.StringIO()
    setup_logging("DEBUG", stream=out)
    event_logger("meter", cp="cp7").warning("meter.read_failed", addr="0x0048", error="timed out\nagain")
    line = out.getvalue()
    assert line.count("\n") == 1
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARNING cp=cp7 comp=meter "
                    r'event=meter.read_failed addr=0x0048 error="timed out\\nagain"$', line.strip())


def test_levels_below_threshold_are_dropped() -> None:
    out = io.StringIO()
    setup_logging("INFO", stream=out)
    event_logger("x", cp="cp1").debug("x.noise")
    assert out.getvalue() == ""


def test_bound_context_and_quoting() -> None:
    assert format_fields({"a": "", "b": 'say "hi"', "c": 1.5, "d": None}) == 'a="" b="say \\"hi\\"" c=1.5'
    out = io.StringIO()
    setup_logging("INFO", stream=out)
    event_logger("paxos", cp="cp2").bind(ballot="3.cp2").info("paxos.elected")
    assert "cp=cp2 comp=paxos ballot=3.cp2 event=paxos.elected" in out.getvalue()


def test_folded_log_logs_the_first_then_one_line_per_interval_with_the_count() -> None:
    from evnet.logs import FoldedLog

    out = io.StringIO()
    setup_logging("INFO", stream=out)
    now = [100.0]
    fold = FoldedLog(event_logger("meter", cp="cp1"), every=5.0, monotonic=lambda: now[0])
    logged = []
    for _ in range(12):  # 12 failures a second for two seconds...
        logged.append(fold.warning("meter.read_failed", error="timeout"))
        now[0] += 1 / 6
    assert logged == [True] + [False] * 11
    now[0] = 105.1  # ... then the interval is over: one line with what it folded
    assert fold.warning("meter.read_failed", error="timeout")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "repeats" not in lines[0]
    assert lines[1].endswith("error=timeout repeats=12 total=13")
    assert fold.reset("meter.read_failed") == 13
    assert fold.warning("meter.read_failed", error="timeout")  # a new episode logs at once
    assert len(out.getvalue().splitlines()) == 3


def test_folded_log_keys_fold_apart() -> None:
    from evnet.logs import FoldedLog

    out = io.StringIO()
    setup_logging("INFO", stream=out)
    fold = FoldedLog(event_logger("paxos", cp="cp1"), every=60.0)
    assert fold.warning("paxos.frame_dropped", key="mac", reason="mac")
    assert fold.warning("paxos.frame_dropped", key="malformed", reason="malformed")
    assert not fold.warning("paxos.frame_dropped", key="mac", reason="mac")
    assert fold.counts == {"mac": 2, "malformed": 1}
