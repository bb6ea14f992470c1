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
