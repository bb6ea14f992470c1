"""EV plans: every command parses, and every mistake names the line, the word and what was expected."""

from __future__ import annotations

import pytest

from firmware.ev.plan import COMMANDS, PlanError, Step, format_plan, parse_plan


def test_the_reference_plan() -> None:
    steps = parse_plan("plug; wait 60; charge 32; wait 420; stop; unplug")
    assert [(s.command, s.arg) for s in steps] == [
        ("plug", None), ("wait", 60.0), ("charge", 32.0), ("wait", 420.0), ("stop", None), ("unplug", None)]
    assert [(s.line, s.word) for s in steps] == [(1, 1), (1, 2), (1, 4), (1, 6), (1, 8), (1, 9)]


def test_every_command_lines_comments_and_units() -> None:
    text = """
    # a whole-day EV
    hlc on; soc 35.5; capacity 75; need 20; max 16; phases 1
    departure 2h   # leaves at ...
    ignore_stop off
    PLUG
    charge
    wait 1.5m; wait 90s; wait .5; wait full
    stop; unplug
    """
    steps = parse_plan(text)
    assert {s.command for s in steps} | {"ventilation", "diode"} == set(COMMANDS)
    got = {s.command: s.arg for s in steps if s.command != "wait"}
    assert got == {"hlc": True, "soc": 35.5, "capacity": 75.0, "need": 20.0, "max": 16.0, "phases": 1.0,
                   "departure": 7200.0, "ignore_stop": False, "plug": None, "charge": None, "stop": None,
                   "unplug": None}
    assert [s.arg for s in steps if s.command == "wait"] == [90.0, 90.0, 0.5, "full"]
    assert steps[0].line == 3 and (steps[8].command, steps[8].line) == ("plug", 6)


def test_format_round_trips() -> None:
    steps = parse_plan("hlc on; plug; charge 16; wait 7m; wait full; phases 3; stop; unplug")
    again = parse_plan(format_plan(steps))
    assert [(s.command, s.arg) for s in again] == [(s.command, s.arg) for s in steps]
    assert str(Step("hlc", False)) == "hlc off"


@pytest.mark.parametrize("text, where, expected", [
    ("plug; fly 3", "line 1, word 2 ('fly')", "unknown command; expected one of plug, unplug"),
    ("plug\nwait", "line 2, word 1 ('wait')", "'wait' needs an argument"),
    ("plug\n\nwait soon", "line 3, word 1 ('wait')", "expected a time (90, 90s, 7m, 1.5h) or 'full', got 'soon'"),
    ("wait -5", "word 1 ('wait')", "got '-5'"),
    ("wait 5x", "word 1", "got '5x'"),
    ("plug now", "word 1 ('plug')", "'plug' takes no argument, got 'now'"),
    ("charge 32 16", "word 1 ('charge')", "takes one argument, got '32 16' (separate commands with ';')"),
    ("charge 0.5", "word 1", "expected a current from 1 to 80 A, got '0.5'"),
    ("charge 100", "word 1", "expected a current from 1 to 80 A"),
    ("charge nan", "word 1", "expected a current from 1 to 80 A"),
    ("plug; charge 16; soc 101", "word 4 ('soc')", "expected a state of charge from 0 to 100 %"),
    ("hlc yes", "word 1 ('hlc')", "expected 'on' or 'off', got 'yes'"),
    ("phases 2", "word 1 ('phases')", "expected 1 or 3, got '2'"),
    ("capacity 0", "word 1", "expected a capacity from 0.1 to 1000 kWh"),
    ("departure tomorrow", "word 1", "expected a time in seconds or with a unit"),
])
def test_errors_say_where_and_what(text: str, where: str, expected: str) -> None:
    with pytest.raises(PlanError) as err:
        parse_plan(text)
    message = str(err.value)
    assert message.startswith("plan line") and where in message and expected in message


@pytest.mark.parametrize(("text", "where", "expected"), [
    ("charge 32; plug", "word 1 ('charge')", "'plug' must come before 'charge'"),
    ("plug; charge; stop; unplug; charge", "word 5 ('charge')", "'plug' must come before 'charge'"),
    ("stop", "word 1 ('stop')", "'plug' must come before 'stop'"),
    ("wait full; plug", "word 1 ('wait')", "'plug' must come before 'wait'"),
    ("unplug", "word 1 ('unplug')", "not plugged in"),
    ("plug; wait 5; plug", "word 4 ('plug')", "already plugged in"),
])
def test_a_plan_that_cannot_happen_with_a_real_cable_is_an_error(text: str, where: str, expected: str) -> None:
    with pytest.raises(PlanError) as err:
        parse_plan(text)
    assert where in str(err.value) and expected in str(err.value)


def test_settings_and_waits_may_come_before_plug() -> None:
    assert [s.command for s in parse_plan("hlc on; soc 20; wait 5; plug; charge; wait full; stop; unplug; wait 1")] \
        == ["hlc", "soc", "wait", "plug", "charge", "wait", "stop", "unplug", "wait"]


@pytest.mark.parametrize("text", ["", "  ;  ; ", "# nothing but a comment"])
def test_an_empty_plan_is_an_error(text: str) -> None:
    with pytest.raises(PlanError, match="empty"):
        parse_plan(text)
