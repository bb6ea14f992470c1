"""Fuzz the charging profile decoders: arbitrary JSON and mutated valid profiles of both versions give a
profile or a ProfileError, never another exception; a profile they accept the store evaluates without error."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.ocpp.profile_store import ProfileStore
from firmware.ocpp.profiles import ChargingProfile, ProfileError, from_v16, from_v201
from firmware.ocpp.schedule import TxInfo, to_v16, to_v201

T0 = 1_772_409_600.0
TX = TxInfo("42", T0 + 10)

V16 = {"chargingProfileId": 1, "transactionId": 42, "stackLevel": 2, "chargingProfilePurpose": "TxProfile",
       "chargingProfileKind": "Recurring", "recurrencyKind": "Daily", "validFrom": "2026-03-01T00:00:00Z",
       "validTo": "2026-04-01T00:00:00Z",
       "chargingSchedule": {"duration": 7200, "startSchedule": "2026-03-02T00:00:00Z", "chargingRateUnit": "A",
                            "minChargingRate": 6.0,
                            "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0, "numberPhases": 3},
                                                       {"startPeriod": 600, "limit": 10.5}]}}
V201 = {"id": 3, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile", "chargingProfileKind": "Absolute",
        "validFrom": "2026-03-01T00:00:00Z", "transactionId": None, "customData": {"vendorId": "x"},
        "chargingSchedule": [{"id": 1, "startSchedule": "2026-03-02T00:00:00.250+01:00", "duration": 3600,
                              "chargingRateUnit": "W", "minChargingRate": 1000,
                              "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 11000, "numberPhases": 3},
                                                         {"startPeriod": 60, "limit": 3680.5, "numberPhases": 1,
                                                          "phaseToUse": 1}]}]}
del V201["transactionId"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=30)
    | st.sampled_from(["2026-03-02T00:00:00Z", "A", "W", "Daily", "Relative", "TxProfile", "9999-12-31T23:59:59Z"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20)
# Values a field might plausibly hold, so that many mutants still decode and reach the store.
near_values = (st.integers(-2, 100_000) | st.floats(0, 1e7) | st.integers(0, 3)
               | st.sampled_from(["2026-03-02T12:00:00Z", "2026-03-01T23:59:59.999+05:30", "2027-01-01T00:00:00Z",
                                  "A", "W", "Daily", "Weekly", "Absolute", "Recurring", "Relative", "TxProfile",
                                  "TxDefaultProfile", "ChargePointMaxProfile", "ChargingStationMaxProfile", "42"]))


def _paths(obj: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place inside a JSON value (dict keys, list indexes)."""
    found = [here]
    if isinstance(obj, dict):
        for k, v in obj.items():
            found += _paths(v, (*here, k))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found += _paths(v, (*here, i))
    return found


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any]) -> Any:
    obj = copy.deepcopy(base)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(_paths(obj)))
        if not path:
            return draw(json_values)
        parent = obj
        for step in path[:-1]:
            parent = parent[step]
        match draw(st.sampled_from(["tweak", "tweak", "replace", "delete", "add"])):
            case "tweak":
                parent[path[-1]] = draw(near_values)
            case "replace":
                parent[path[-1]] = draw(json_values)
            case "delete" if isinstance(parent, dict):
                del parent[path[-1]]
            case "add" if isinstance(parent, dict):
                parent[draw(st.text(max_size=20))] = draw(json_values)
            case "add":
                parent.append(draw(json_values))
            case _:
                parent.pop(path[-1])
    return obj


def _decode(decoder: Callable[..., ChargingProfile], obj: Any) -> None:
    try:
        p = decoder(obj)
    except ProfileError as e:
        assert e.reason and "\n" not in e.reason
        return
    # An accepted profile is one the store can evaluate and report on.
    s = ProfileStore(None, max_current_a=32, max_periods=1024, max_stack_level=2**31)
    s.install(p, tx=TX, now=T0)
    for at in (T0 - 90000, T0, T0 + 650, T0 + 10**6):
        s.limits(at, TX)
        s.next_change(at, TX)
    c = s.composite(T0, 86400, "W", TX)
    to_v16(c)
    to_v201(c, 1)


def test_the_base_profiles_decode() -> None:
    assert from_v16(V16).purpose == "tx" and from_v201(V201).unit == "W"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_v16_arbitrary_json(obj: Any) -> None:
    _decode(from_v16, obj)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(json_values)
def test_v201_arbitrary_json(obj: Any) -> None:
    _decode(from_v201, obj)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(V16))
def test_v16_mutated_profiles(obj: Any) -> None:
    _decode(from_v16, obj)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated(V201))
def test_v201_mutated_profiles(obj: Any) -> None:
    _decode(from_v201, obj)
