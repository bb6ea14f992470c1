"""Fuzz the site machine's `apply`: arbitrary bytes, arbitrary JSON and near-valid commands give an error
result (canonical JSON with a documented code), never an exception, and a refused command changes nothing."""

from __future__ import annotations

import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.site import ERRORS, Context, SiteMachine, SiteSetup, member_command, new_private_key, public_key_b64
from firmware.site import signed_request as sign
from firmware.site.decode import OPS
from firmware.site.params import da

KEY = new_private_key()


def machine() -> SiteMachine:
    """A site with a registered charge point, an operator, a driver and a session, so commands reach deep."""
    m = SiteMachine(SiteSetup("s1", 630, {"cp1": 0, "cp2": 60}))
    ctx = Context("cp1", True, (1, "cp1"), 1000)
    for op, args in (("register", {"cp": "cp1", "price_eur_kwh": 0.3, "max_current_a": 32}),
                     ("renew", {"cp": "cp1"}),
                     ("add_principal", {"id": "op1", "role": "operator", "key": public_key_b64(KEY)})):
        assert json.loads(m.apply(member_command(op, args), ctx))["ok"]
    signed = sign(KEY, site="s1", by="op1", seq=1, op="add_principal",
                  args={"id": "D1", "role": "driver", "key": public_key_b64(KEY)})
    assert json.loads(m.apply(signed, Context("app", False, (1, "cp1"), 1001)))["ok"]
    assert json.loads(m.apply(member_command("start_session", {"cp": "cp1", "session": "S1", "meter_wh": 5,
                                                               "driver": "D1"}), ctx))["ok"]
    return m


BASE = machine()
BASE_SNAPSHOT = BASE.snapshot()

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=20)
contexts = st.builds(Context, client=st.sampled_from(["cp1", "cp2", "app", "x"]), member=st.booleans(),
                     office=st.tuples(st.integers(0, 3), st.sampled_from(["cp1", "cp2"])),
                     now_ms=st.integers(0, 10**7))


def _fresh() -> SiteMachine:
    m = SiteMachine(BASE.setup)
    m.restore(BASE_SNAPSHOT)
    return m


def _answer(m: SiteMachine, command: bytes, ctx: Context) -> dict[str, Any]:
    before = m.snapshot()
    raw = m.apply(command, ctx)
    result = json.loads(raw)
    assert isinstance(result, dict) and raw == json.dumps(result, sort_keys=True, separators=(",", ":")).encode()
    if "error" in result:
        assert result["error"] in ERRORS and result["error"] != "internal", result
        assert isinstance(result["reason"], str)
        assert m.snapshot() == before
    else:
        assert result["ok"] is True
    return result


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=5000), ctx=contexts)
def test_arbitrary_bytes_get_an_error(data: bytes, ctx: Context) -> None:
    _answer(_fresh(), data, ctx)


@settings(max_examples=300, deadline=None)
@given(value=json_values, ctx=contexts)
def test_arbitrary_json_gets_an_answer(value: Any, ctx: Context) -> None:
    _answer(_fresh(), json.dumps(value).encode(), ctx)


@settings(max_examples=800, deadline=None)
@given(op=st.sampled_from(sorted(OPS)), args=st.dictionaries(
    st.sampled_from(sorted({name for _, spec in OPS.values() for name, _, _ in spec} | {"x"})),
    json_values | st.sampled_from(["cp1", "cp2", "S1", "D1", "op1", "all", "driver", "operator", "ev"])
    | st.integers(0, 100) | st.floats(0, 100), max_size=6),
    signed=st.booleans(), seq=st.integers(-5, 2**60), ctx=contexts)
def test_near_valid_commands_never_raise(op: str, args: dict[str, Any], signed: bool, seq: int,
                                         ctx: Context) -> None:
    m = _fresh()
    if signed:
        try:
            command = sign(KEY, site="s1", by="op1" if seq % 2 else "D1", seq=seq, op=op, args=args)
        except (TypeError, ValueError):
            return  # not even JSON
    else:
        command = json.dumps({"op": op, "args": args}).encode()
    _answer(m, command, ctx)
    _answer(m, command, ctx)  # and again: a replay, or the same change on the changed state


@settings(max_examples=300, deadline=None)
@given(cp=st.sampled_from(["cp1", "cp2", "cp9", "all", ""]),
       amps=st.none() | st.floats(allow_nan=True, allow_infinity=True) | st.integers(-100, 100) | json_values,
       seq=st.integers(2, 2**53))  # op1 used 1 to add D1; the site takes a seq up to 2**53
def test_an_operator_cap_is_taken_only_in_range_and_the_split_keeps_to_it(cp: str, amps: Any, seq: int) -> None:
    """set_cp_max: 6 A up to cp1's registered 32 A, or null, is taken (null on any point: there is nothing to
    check it against); all else refused, changing nothing."""
    m = _fresh()
    try:
        command = sign(KEY, site="s1", by="op1", seq=seq, op="set_cp_max", args={"cp": cp, "max_current_a": amps})
    except (TypeError, ValueError):
        return  # not even JSON
    result = _answer(m, command, Context("app", False, (1, "cp1"), 2000))
    good = amps is None or (isinstance(amps, int | float) and not isinstance(amps, bool) and 6 <= amps <= 80
                            and da(amps) <= 320)
    assert ("ok" in result) == ((cp == "cp1" and good) or (cp == "cp2" and amps is None)), result  # cp2: unregistered
    rec = m.state.cps.get("cp1")
    if "ok" in result and rec is not None and rec.cap_da is not None:
        assert m.state.budget.allowances["cp1"].grant_da <= rec.cap_da
