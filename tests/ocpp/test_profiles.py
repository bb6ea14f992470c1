"""Charging profiles: decoding both versions, the rules of the store, what is in force, when it changes,
the composite schedule in both wire shapes (checked against the `ocpp` package's schemas) and persistence."""

from __future__ import annotations

import decimal
import json
import logging
import os
from pathlib import Path
from typing import Any

import jsonschema
import ocpp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.ocpp.profile_store import ProfileStore
from firmware.ocpp.profiles import Period, ProfileError, format_time, from_v16, from_v201, parse_time
from firmware.ocpp.schedule import TxInfo, to_v16, to_v201

T0 = parse_time("2026-03-02T00:00:00Z")  # a Monday, midnight UTC
TX = TxInfo("42", T0 + 1000.5)
SCHEMAS = Path(ocpp.__file__).parent


def v16(pid: int = 1, stack: int = 0, purpose: str = "TxDefaultProfile", kind: str = "Absolute",
        periods: tuple[tuple[int, float], ...] = ((0, 16),), unit: str = "A", start: float | None = T0,
        **more: Any) -> dict[str, Any]:
    """A 1.6 csChargingProfiles object; `more` adds top-level fields, `schedule_*` schedule fields."""
    schedule: dict[str, Any] = {"chargingRateUnit": unit,
                                "chargingSchedulePeriod": [{"startPeriod": s, "limit": lim} for s, lim in periods]}
    if start is not None:
        schedule["startSchedule"] = format_time(start)
    schedule |= {k.removeprefix("schedule_"): v for k, v in more.items() if k.startswith("schedule_")}
    return {"chargingProfileId": pid, "stackLevel": stack, "chargingProfilePurpose": purpose,
            "chargingProfileKind": kind, "chargingSchedule": schedule,
            **{k: v for k, v in more.items() if not k.startswith("schedule_")}}


def v201(pid: int = 1, purpose: str = "TxDefaultProfile", **more: Any) -> dict[str, Any]:
    schedule = {"id": 7, "startSchedule": format_time(T0), "chargingRateUnit": "W",
                "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11040.0, "numberPhases": 3}]}
    return {"id": pid, "stackLevel": 0, "chargingProfilePurpose": purpose, "chargingProfileKind": "Absolute",
            "chargingSchedule": [schedule], **more}


def store(path: str | None = None, **kw: Any) -> ProfileStore:
    return ProfileStore(path, max_current_a=kw.pop("max_current_a", 32), cp="cp1", **kw)


def put(s: ProfileStore, obj: dict[str, Any], tx: TxInfo | None = None, now: float = T0) -> tuple[bool, str]:
    return s.install(from_v16(obj), tx=tx, now=now)


# ---- decoding ----

def test_v16_profile_decodes_every_field() -> None:
    p = from_v16(v16(pid=9, stack=3, purpose="TxProfile", kind="Recurring", recurrencyKind="Daily",
                     transactionId=42, validFrom="2026-03-01T00:00:00Z", validTo="2026-04-01T00:00:00.5+02:00",
                     periods=((0, 10), (60, 20.5)), schedule_duration=3600, schedule_minChargingRate=6.1))
    assert (p.id, p.stack_level, p.purpose, p.kind, p.recurrency, p.transaction_id) == (9, 3, "tx", "Recurring",
                                                                                         "Daily", "42")
    assert p.valid_from == T0 - 86400 and p.valid_to == parse_time("2026-03-31T22:00:00.5Z")
    assert (p.start, p.duration_s, p.unit, p.min_rate, p.version) == (T0, 3600.0, "A", 6.1, "1.6")
    assert p.periods == (Period(0, 10.0), Period(60, 20.5))
    assert p.raw["chargingSchedule"]["duration"] == 3600


def test_v201_profile_decodes_and_keeps_a_string_transaction_id() -> None:
    p = from_v201(v201(purpose="TxProfile", transactionId="tx-abc", customData={"vendorId": "x"}))
    assert (p.purpose, p.transaction_id, p.unit, p.version) == ("tx", "tx-abc", "W", "2.0.1")
    assert p.periods == (Period(0, 11040.0, 3),)
    assert from_v201(v201(purpose="ChargingStationMaxProfile")).purpose == "cp_max"


def test_raw_is_a_copy_of_the_wire_json() -> None:
    obj = v16()
    p = from_v16(obj)
    obj["stackLevel"] = 5
    assert p.raw["stackLevel"] == 0 and p.raw == v16()


def _two_schedules() -> dict[str, Any]:
    obj = v201()
    obj["chargingSchedule"] = obj["chargingSchedule"] * 2
    return obj


@pytest.mark.parametrize(("obj", "reason"), [
    (_two_schedules(), "only one per profile"),
    (v201(purpose="ChargingStationExternalConstraints"), "ExternalConstraints"),
    ({**v201(), "chargingSchedule": [{**v201()["chargingSchedule"][0], "startSchedule": None}]}, "startSchedule"),
    ({**v201(), "chargingSchedule": []}, "chargingSchedule"),
    (v201(transactionId="x" * 37), "transactionId"),
    (v201(chargingProfileKind="Relative"), "not for a Relative"),
    ({**v201(validFrom="2026-03-01T00:00:00Z"),
      "chargingSchedule": [{**v201()["chargingSchedule"][0], "startSchedule": None}]}, "required for an Absolute"),
])
def test_v201_refusals(obj: dict[str, Any], reason: str) -> None:
    with pytest.raises(ProfileError, match=reason):
        from_v201(obj)


@pytest.mark.parametrize(("obj", "reason"), [
    (v16(periods=((0, -1),)), "limit"),
    (v16(periods=((5, 16),)), "first period must start at 0"),
    (v16(periods=((0, 16), (60, 10), (60, 8))), "must increase"),
    (v16(periods=tuple((i * 60, 16) for i in range(25))), "25 periods, at most 24"),
    (v16(purpose="MaxProfile"), "chargingProfilePurpose"),
    (v16(kind="Sometimes"), "chargingProfileKind"),
    (v16(unit="kW"), "chargingRateUnit"),
    ({k: v for k, v in v16().items() if k != "stackLevel"}, "stackLevel: missing"),
    (v16(periods=((0, float("nan")),)), "limit"),
    (v16(periods=((0, float("inf")),)), "limit"),
    (v16(periods=((0, 10**400),)), "huge integer"),
    (v16(periods=((0, 1e12),)), "limit"),
    (v16(stack=2**40), "stackLevel"),
    (v16(stack=-1), "stackLevel"),
    (v16(stack=True), "stackLevel"),
    (v16(periods=((0, "16"),)), "limit"),
    (v16(schedule_chargingSchedulePeriod=[]), "non-empty"),
    (v16(schedule_chargingSchedulePeriod=[{"startPeriod": 0, "limit": 1, "numberPhases": 4}]), "numberPhases"),
    (v16(schedule_duration=1.5), "duration"),
    (v16(surprise=1), "unknown field 'surprise'"),
    (v16(schedule_surprise=1), "unknown field"),
    (v16(validFrom="2026-03-02T00:00:00Z", validTo="2026-03-01T00:00:00Z"), "validTo"),
    (v16(validFrom="yesterday"), "validFrom"),
    (v16(validFrom="2026-13-01T00:00:00Z"), "validFrom"),
    (v16(validFrom="10000-01-01T00:00:00Z"), "validFrom"),
    (v16(kind="Recurring"), "recurrencyKind"),
    (v16(kind="Recurring", recurrencyKind="Daily", start=None), "startSchedule"),
    (v16(recurrencyKind="Daily"), "only for a Recurring"),
    (v16(transactionId=5), "only a TxProfile"),
    (v16(purpose="ChargePointMaxProfile", kind="Relative"), "cannot be Relative"),
    (v16(schedule_minChargingRate=-0.5), "minChargingRate"),
    ("not an object", "expected an object"),
])
def test_v16_refusals(obj: Any, reason: str) -> None:
    with pytest.raises(ProfileError, match=reason):
        from_v16(obj)


# ---- the store's rules ----

def test_highest_stack_level_in_force_wins_and_a_lower_one_takes_over_when_it_ends() -> None:
    s = store()
    assert put(s, v16(pid=1, stack=0, periods=((0, 20),)))[0]
    assert put(s, v16(pid=2, stack=1, periods=((0, 10),), schedule_duration=600))[0]
    assert put(s, v16(pid=3, stack=2, periods=((0, 6),), start=T0 + 300))[0]
    assert s.limits(T0 + 100, None).tx_default_a == 10   # level 2 not started yet
    assert s.limits(T0 + 300, None).tx_default_a == 6
    s.clear(id=3)
    assert s.limits(T0 + 599, None).tx_default_a == 10
    assert s.limits(T0 + 600, None).tx_default_a == 20   # level 1's duration is over


def test_same_id_replaces_and_same_purpose_and_stack_level_replaces() -> None:
    s = store()
    put(s, v16(pid=1, stack=0, periods=((0, 20),)))
    assert put(s, v16(pid=1, stack=1, periods=((0, 18),))) == (True, "replaced 1")
    assert [(p.id, p.stack_level) for p in s.installed()] == [(1, 1)]
    assert put(s, v16(pid=2, stack=1, periods=((0, 12),))) == (True, "replaced 1")
    assert put(s, v16(pid=3, stack=1, purpose="ChargePointMaxProfile", periods=((0, 25),))) == (True, "installed")
    assert [p.id for p in s.installed()] == [2, 3] and s.installed()[0].raw == v16(pid=2, stack=1, periods=((0, 12),))
    assert s.limits(T0, None).tx_default_a == 12 and s.limits(T0, None).cp_max_a == 25


def test_too_many_profiles_or_too_high_a_stack_level_is_refused() -> None:
    s = store(max_profiles=2, max_stack_level=3)
    assert put(s, v16(pid=1, stack=0))[0] and put(s, v16(pid=2, stack=1))[0]
    assert put(s, v16(pid=3, stack=2)) == (False, "2 profiles installed, at most 2")
    assert put(s, v16(pid=2, stack=2)) == (True, "replaced 2")  # a replacement still fits
    assert put(s, v16(pid=1, stack=4)) == (False, "stackLevel 4 above 3")
    assert [p.id for p in s.installed()] == [1, 2]


def test_more_periods_than_the_store_takes_is_refused() -> None:
    s = store(max_periods=2)
    ok, reason = put(s, v16(periods=((0, 16), (60, 10), (120, 8))))
    assert not ok and reason == "3 periods, at most 2" and s.installed() == []


def test_validity_window_bounds_a_profile_and_an_expired_one_leaves_at_the_next_install() -> None:
    s = store()
    put(s, v16(pid=1, validFrom=format_time(T0 + 100), validTo=format_time(T0 + 200), periods=((0, 8),)))
    assert [s.limits(T0 + t, None).tx_default_a for t in (99, 100, 199, 200)] == [None, 8, 8, None]
    assert put(s, v16(pid=2, stack=1), now=T0 + 300) == (True, "installed")
    assert [p.id for p in s.installed()] == [2]


def test_absolute_starts_at_start_schedule_else_valid_from_else_on_arrival() -> None:
    s = store()
    put(s, v16(pid=1, stack=0, start=None, validFrom=format_time(T0 + 50), periods=((0, 10), (100, 9))))
    assert s.installed()[0].start == T0 + 50 and s.limits(T0 + 150, None).tx_default_a == 9
    put(s, v16(pid=2, stack=1, start=None, periods=((0, 7), (100, 6))), now=T0 + 1000)
    assert s.limits(T0 + 1099, None).tx_default_a == 7 and s.limits(T0 + 1100, None).tx_default_a == 6


@pytest.mark.parametrize(("recurrency", "every"), [("Daily", 86400), ("Weekly", 7 * 86400)])
def test_recurring_repeats_from_its_start(recurrency: str, every: int) -> None:
    s = store()
    put(s, v16(kind="Recurring", recurrencyKind=recurrency, start=T0 + 18 * 3600,
               periods=((0, 10), (4 * 3600, 16)), schedule_duration=8 * 3600))
    for cycle in (-1, 0, 1, 5):
        base = T0 + 18 * 3600 + cycle * every
        assert [s.limits(base + t, None).tx_default_a for t in (-1, 0, 4 * 3600, 8 * 3600)] == [
            None, 10, 16, None], cycle


def test_relative_runs_from_the_transaction_start_and_not_without_one() -> None:
    s = store()
    put(s, v16(kind="Relative", start=None, periods=((0, 10), (600, 14))))
    assert s.limits(T0 + 5000, None).tx_default_a is None
    assert s.limits(TX.start + 599, TX).tx_default_a == 10 and s.limits(TX.start + 600, TX).tx_default_a == 14
    assert s.next_change(TX.start + 10, TX) == TX.start + 600


def test_watts_become_amps_with_the_period_phases_or_the_charge_point_phases() -> None:
    s = store(voltage_v=230, phases=3)
    put(s, v16(pid=1, unit="W", periods=((0, 11040),)))
    put(s, v16(pid=2, purpose="ChargePointMaxProfile", unit="W",
               schedule_chargingSchedulePeriod=[{"startPeriod": 0, "limit": 7360, "numberPhases": 1}]))
    assert s.limits(T0, None).tx_default_a == pytest.approx(16) and s.limits(T0, None).cp_max_a == pytest.approx(32)
    assert store(phases=1).install(from_v201(v201()), tx=None, now=T0)[0]


def test_a_tx_profile_needs_the_running_transaction() -> None:
    s = store()
    assert put(s, v16(purpose="TxProfile", transactionId=42)) == (False, "a TxProfile needs a running transaction")
    assert put(s, v16(purpose="TxProfile", transactionId=41), tx=TX) == (
        False, "transaction 41 is not the running one")
    assert put(s, v16(purpose="TxProfile", periods=((0, 9),)), tx=TX) == (True, "installed")
    assert s.installed()[0].transaction_id == "42"
    assert s.limits(T0, TX).tx_a == 9 and s.limits(T0, TxInfo("43", T0)).tx_a is None
    assert s.limits(T0, None).tx_a is None
    for bad in ("", "x" * 37):  # an id the file could not hold is refused, not written
        ok, reason = put(s, v16(pid=2, stack=1, purpose="TxProfile"), tx=TxInfo(bad, T0))
        assert not ok and "transaction id" in reason


def test_last_period_runs_on_without_a_duration() -> None:
    s = store()
    put(s, v16(periods=((0, 16), (60, 10))))
    assert s.limits(T0 + 10 * 86400, None).tx_default_a == 10 and s.next_change(T0 + 60, None) is None


def test_clear_by_each_criterion() -> None:
    s = store()
    for pid, stack, purpose in ((1, 0, "TxDefaultProfile"), (2, 1, "TxDefaultProfile"),
                                (3, 1, "ChargePointMaxProfile"), (4, 2, "TxProfile")):
        assert put(s, v16(pid=pid, stack=stack, purpose=purpose), tx=TX)[0]
    assert not s.clear(id=99) and not s.clear(purpose="tx", stack_level=1)
    assert s.clear(id=1, purpose="cp_max")  # the id alone decides
    assert [p.id for p in s.installed()] == [2, 3, 4]
    assert s.clear(stack_level=1) and [p.id for p in s.installed()] == [4]
    assert s.clear(purpose="tx") and s.installed() == []
    put(s, v16(pid=5))
    put(s, v16(pid=6, stack=1, purpose="ChargePointMaxProfile"))
    assert s.clear() and s.installed() == [] and not s.clear()


def test_a_transaction_end_drops_its_tx_profiles_only() -> None:
    s = store()
    put(s, v16(pid=1, purpose="TxProfile", periods=((0, 9),)), tx=TX)
    put(s, v16(pid=2, periods=((0, 12),)))
    assert not s.transaction_ended("41")
    assert s.transaction_ended("42") and [p.id for p in s.installed()] == [2]


def test_next_change_names_each_boundary_in_turn() -> None:
    s = store()
    put(s, v16(pid=1, periods=((0, 16), (600, 10)), schedule_duration=1800, validTo=format_time(T0 + 1500)))
    put(s, v16(pid=2, purpose="ChargePointMaxProfile", start=T0 + 100, periods=((0, 20),)))
    walk, t = [], T0 - 50
    while (t := s.next_change(t, None)) is not None:
        walk.append(t - T0)
    assert walk == [0, 100, 600, 1500]  # the duration's end (1800) comes after validTo
    assert store().next_change(T0, None) is None


def _profiles() -> st.SearchStrategy[dict[str, Any]]:
    periods = st.lists(st.tuples(st.integers(1, 4000), st.integers(0, 40)), max_size=4).map(
        lambda ps: ((0, 16), *sorted({s: (s, lim) for s, lim in ps}.values())))
    return st.builds(
        lambda pid, stack, purpose, kind, ps, start, dur: v16(
            pid=pid, stack=stack, purpose=purpose, kind=kind, periods=ps,
            start=None if kind == "Relative" else T0 + start,
            **({"recurrencyKind": "Daily"} if kind == "Recurring" else {}),
            **({"schedule_duration": dur} if dur else {})),
        st.integers(0, 5), st.integers(0, 3), st.sampled_from(["TxDefaultProfile", "ChargePointMaxProfile"]),
        st.sampled_from(["Absolute", "Recurring", "Relative"]), periods, st.integers(-90000, 9000),
        st.integers(0, 9000))


@settings(max_examples=60, deadline=None)
@given(st.lists(_profiles(), max_size=5), st.integers(-1000, 90000), st.integers(1, 40))
def test_limits_hold_until_next_change(objs: list[dict[str, Any]], at: int, steps: int) -> None:
    """Between now and `next_change` the limits stay as they are: one timer suffices."""
    s = store(max_profiles=30)
    for obj in objs:
        if obj["chargingProfileKind"] == "Relative" and obj["chargingProfilePurpose"] == "ChargePointMaxProfile":
            continue
        s.install(from_v16(obj), tx=TX, now=T0)
    now = T0 + at
    nxt = s.next_change(now, TX)
    end = nxt if nxt is not None else now + 200000
    here = s.limits(now, TX)
    for i in range(1, steps + 1):
        assert s.limits(now + (end - now) * i / (steps + 1), TX) == here


# ---- the composite schedule ----

def _validator(version: str, name: str) -> jsonschema.protocols.Validator:
    # As the ocpp package does: 1.6's `multipleOf: 0.1` only holds for decimals, not binary floats.
    schema = json.loads((SCHEMAS / version / "schemas" / name).read_text("utf-8-sig"),
                        parse_float=decimal.Decimal)
    return jsonschema.validators.validator_for(schema)(schema)


def _valid(version: str, payload: dict[str, Any]) -> None:
    _validator(version, "GetCompositeScheduleResponse.json").validate(
        json.loads(json.dumps(payload), parse_float=decimal.Decimal))


def test_composite_is_the_least_of_max_session_cap_and_charge_point_and_merges_equal_periods() -> None:
    s = store(max_current_a=32)
    put(s, v16(pid=1, purpose="ChargePointMaxProfile", periods=((0, 40), (600, 20), (1200, 24.37))))
    put(s, v16(pid=2, periods=((0, 16), (300, 20))))
    put(s, v16(pid=3, purpose="TxProfile", start=T0 + 900, periods=((0, 25),), schedule_duration=600), tx=TX)
    c = s.composite(T0 - 60.7, 3600, "A", TX)
    assert (c.start, c.duration_s, c.unit) == (T0 - 61, 3600, "A")
    assert [(p.start_s, p.limit) for p in c.periods] == [
        (0, 32.0),      # before any profile: the charge point's own maximum
        (61, 16.0),     # the default cap
        (361, 20.0),    # default 20; the maximum 20 from 661 and the TxProfile 25 from 961: equal, merged
        (1261, 24.3),   # the maximum 24.37 (rounded down to 0.1) under the TxProfile's 25
        (1561, 20.0),   # the TxProfile's duration is over: back to the default
    ]
    no_tx = s.composite(T0, 1800, "A", None)
    assert [(p.start_s, p.limit) for p in no_tx.periods] == [(0, 16.0), (300, 20.0)]


def test_composite_in_watts_and_both_wire_shapes_are_schema_valid() -> None:
    s = store(max_current_a=32, voltage_v=230, phases=3)
    put(s, v16(pid=1, periods=((0, 16.3), (60, 10))))
    for unit in ("A", "W"):
        c = s.composite(T0, 86400, unit, None)
        body16 = to_v16(c)
        _valid("v16", {"status": "Accepted", "connectorId": 1, "scheduleStart": body16["startSchedule"],
                       "chargingSchedule": body16})
        _valid("v201", {"status": "Accepted", "schedule": to_v201(c, 1)})
    w = to_v201(s.composite(T0, 120, "W", None), 1)
    assert w["chargingSchedulePeriod"] == [{"startPeriod": 0, "limit": 11247.0}, {"startPeriod": 60, "limit": 6900.0}]
    assert (w["evseId"], w["duration"], w["scheduleStart"], w["chargingRateUnit"]) == (1, 120, "2026-03-02T00:00:00Z",
                                                                                       "W")
    empty = s.composite(T0, 0, "A", None)
    assert empty.duration_s == 0 and len(empty.periods) == 1
    _valid("v201", {"status": "Accepted", "schedule": to_v201(empty, 0)})


def test_a_composite_of_a_long_recurring_schedule_is_bounded() -> None:
    s = store(max_periods=24)
    put(s, v16(kind="Recurring", recurrencyKind="Daily", periods=tuple((h * 3600, 6 + h % 2) for h in range(24))))
    c = s.composite(T0, 10**9, "A", None)
    assert c.duration_s <= 31 * 86400 and len(c.periods) <= 1024
    assert all(b.start_s > a.start_s and b.limit != a.limit for a, b in zip(c.periods, c.periods[1:], strict=False))


# ---- persistence ----

def test_profiles_survive_a_new_store_on_the_same_path(tmp_path: Path) -> None:
    path = str(tmp_path / "profiles.json")
    s = store(path)
    put(s, v16(pid=1, purpose="TxProfile", start=None, periods=((0, 9), (60, 8))), tx=TX, now=T0 + 5)
    s.install(from_v201(v201(pid=2, purpose="ChargingStationMaxProfile")), tx=None, now=T0)
    put(s, v16(pid=3, stack=2))
    s.clear(id=3)
    assert not os.path.exists(path + ".tmp")
    again = store(path)
    assert again.installed() == s.installed()
    assert again.installed()[0].transaction_id == "42" and again.installed()[0].start == T0 + 5
    assert again.limits(T0 + 65, TX) == s.limits(T0 + 65, TX)
    assert put(again, v16(pid=4, stack=3, start=None), now=float("nan"))[0] is False
    again.transaction_ended("42")
    assert [p.id for p in store(path).installed()] == [2]


def test_a_corrupt_file_is_kept_aside_and_the_store_starts_empty(tmp_path: Path,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "profiles.json"
    for bad in (b"{not json", b'{"format": 1, "profiles": [{"version": "1.6", "profile": {"stackLevel": -1}}]}',
                b'{"format": 1, "profiles": [{"version": "3"}]}', b"\xff\xfe"):
        path.write_bytes(bad)
        with caplog.at_level(logging.ERROR, logger="evnet.ocpp"):
            caplog.clear()
            s = store(str(path))
        assert s.installed() == [] and not path.exists()
        assert (tmp_path / "profiles.json.bad").read_bytes() == bad
        assert [r.getMessage() for r in caplog.records if "corrupt_file" in r.getMessage()][0].startswith("cp=cp1")
        assert put(s, v16())[0] and len(store(str(path)).installed()) == 1


def test_a_profile_that_cannot_be_stored_is_refused(tmp_path: Path) -> None:
    s = store(str(tmp_path / "missing-dir" / "profiles.json"))
    assert put(s, v16()) == (False, "could not store the profile") and s.installed() == []


def test_the_store_refuses_nonsense_settings() -> None:
    for kw in ({"max_current_a": 0}, {"max_current_a": float("nan")}, {"phases": 4}, {"voltage_v": -1},
               {"max_profiles": 0}):
        with pytest.raises(ValueError):
            store(**kw)

