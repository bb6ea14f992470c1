"""The demo's verdicts (central_broker/demo/checks.py) and its timeline: each check fails on the record that
breaks it, and holds on one that does not."""

from __future__ import annotations

from central_broker.demo.checks import (
    Record,
    apps_told,
    failovers,
    fuse,
    hung_caught,
    longest_break,
    one_ticket_per_session,
    tickets_match_meters,
    verdicts,
)
from central_broker.demo.run import metered
from central_broker.demo.scenario import Act, real_seconds, timeline
from central_broker.demo.watch import Sample


def samples(*rows: tuple[float, dict[str, float | None]]) -> list[Sample]:
    return [Sample(t, amps, {cp: 0.0 for cp in amps}) for t, amps in rows]


def record(**over: object) -> Record:
    base: dict[str, object] = dict(
        limit_a=63.0,
        samples=samples((0.0, {"cp1": 32.0, "cp2": 31.0}), (0.1, {"cp1": 32.0, "cp2": 31.0})),
        tickets=[{"cp": "cp1", "session_id": "s1", "kwh": 1.0}, {"cp": "cp2", "session_id": "s2", "kwh": 2.0}],
        meter_kwh={"cp1": (0.0, 1.0), "cp2": (5.0, 7.005)}, charging={"cp1": (0.0, 1.0), "cp2": (0.0, 1.0)},
        sessions_started=2, sessions_open_at_end=0)
    base.update(over)
    return Record(**base)  # type: ignore[arg-type]


def test_a_run_that_kept_every_rule_passes_every_check() -> None:
    assert all(c.ok for c in verdicts(record())), verdicts(record())


def test_the_fuse_fails_on_one_sample_above_the_limit() -> None:
    over = samples((0.0, {"cp1": 32.0, "cp2": 31.0}), (0.1, {"cp1": 32.0, "cp2": 31.2}))
    assert fuse(record()).ok and not fuse(record(samples=over)).ok
    assert not fuse(record(samples=[])).ok  # nothing sampled proves nothing


def test_tickets_must_add_up_to_each_meter() -> None:
    assert tickets_match_meters(record()).ok
    assert not tickets_match_meters(record(meter_kwh={"cp1": (0.0, 1.2), "cp2": (5.0, 7.0)})).ok
    lost = [{"cp": "cp1", "session_id": "s1", "kwh": 1.0}]  # cp2's ticket never came
    assert not tickets_match_meters(record(tickets=lost)).ok


def test_each_session_needs_exactly_one_ticket_and_none_left_open() -> None:
    assert one_ticket_per_session(record()).ok
    twice = [*record().tickets, {"cp": "cp2", "session_id": "s2", "kwh": 2.0}]
    assert not one_ticket_per_session(record(tickets=twice)).ok
    assert not one_ticket_per_session(record(sessions_open_at_end=1)).ok
    assert not one_ticket_per_session(record(sessions_started=3)).ok


def test_a_failover_must_commit_the_next_command_in_time() -> None:
    assert failovers(record(failovers=[("cp1", 0.03)])).ok
    assert not failovers(record(failovers=[("cp1", None)])).ok
    assert not failovers(record(failovers=[("cp1", 3.0)])).ok


def test_a_break_counts_only_after_the_ev_drew_and_not_where_the_chaos_hit() -> None:
    rows = samples((0.0, {"cp1": 0.0}), (0.1, {"cp1": 16.0}), (0.2, {"cp1": 0.0}), (0.3, {"cp1": 0.0}),
                   (0.4, {"cp1": 16.0}))
    worst, where = longest_break(record(samples=rows, charging={"cp1": (0.0, 1.0)}))
    assert where == "cp1" and abs(worst - 0.1) < 1e-9  # 0.2 -> 0.3; the zero before it first drew is no break
    assert longest_break(record(samples=rows, charging={"cp1": (0.0, 1.0)}, hit={"cp1": (0.15, 0.35)}))[0] == 0.0


def test_every_ticket_must_reach_its_drivers_app() -> None:
    tickets = [{"cp": "cp1", "session_id": "s1", "driver": "D1", "kwh": 1.0},
               {"cp": "cp2", "session_id": "s2", "driver": "D2", "kwh": 2.0}]
    assert apps_told(record()) is None  # no apps, no check
    assert apps_told(record(tickets=tickets, apps={"D1": {"s1"}, "D2": {"s2"}})).ok
    assert not apps_told(record(tickets=tickets, apps={"D1": {"s1"}, "D2": set()})).ok


def test_a_hung_engine_must_be_caught_by_its_monitor() -> None:
    assert hung_caught(record()) is None
    assert hung_caught(record(hung=[("cp2", 1.1)])).ok
    assert not hung_caught(record(hung=[("cp2", None)])).ok


def test_a_meter_that_starts_again_from_zero_begins_a_new_life() -> None:
    rows = [Sample(t, {"cp1": 0.0}, {"cp1": kwh}) for t, kwh in enumerate([1.0, 1.5, 2.0, 0.0, 0.25, None])]
    assert metered(rows, "cp1") == (0.0, 1.25)


def test_the_timeline_is_the_reference_scenario_and_chaos_adds_its_three_faults() -> None:
    quiet, chaos = timeline(False), timeline(True)
    assert [(s.minute, s.act, s.who) for s in quiet] == [
        (1, Act.ARRIVE, 1), (2, Act.ARRIVE, 2), (4, Act.ARRIVE, 3), (8, Act.STOP, 1), (9, Act.STOP, 2),
        (9, Act.STOP, 3)]
    assert [s.act for s in chaos if s not in quiet] == [Act.KILL_LEADER, Act.HANG_ENGINE, Act.RESTART_BROKER]
    assert [s.minute for s in chaos] == sorted(s.minute for s in chaos)
    assert real_seconds(9, 60) == 9.0 and real_seconds(1, 1) == 60.0
