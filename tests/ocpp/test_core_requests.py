"""What a CSMS asks of the OCPP core that the site decides, both versions, on its real parts: remote start and
stop, availability, reset and reservations become proposals answered with `SiteAnswer`; charging profiles are
kept here and their limits proposed; every answer valid for its schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from firmware.ocpp import remote as remote_module
from firmware.ocpp.events import Restart, TxEnded, TxStarted
from firmware.ocpp.times import stamp

from .core_rig import T0, VERSIONS, Rig, ask, call_of, proposals, reply_of, sample, start_session


@pytest.fixture(params=VERSIONS)
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Rig:
    rig = Rig(request.param, tmp_path)
    rig.drain(rig.boot())
    return rig


# -- each version's words for the same requests ----------------------------------------------------------


def remote_start(v: str, token: str = "card-1", profile: dict[str, Any] | None = None) -> tuple[str, dict[str, Any]]:
    if v == "1.6":
        p: dict[str, Any] = {"idTag": token, "connectorId": 1}
        action = "RemoteStartTransaction"
    else:
        p = {"idToken": {"idToken": token, "type": "Central"}, "remoteStartId": 42, "evseId": 1}
        action = "RequestStartTransaction"
    if profile is not None:
        p["chargingProfile"] = profile
    return action, p


def remote_stop(v: str, tx_id: str) -> tuple[str, dict[str, Any]]:
    if v == "1.6":
        return "RemoteStopTransaction", {"transactionId": int(tx_id)}
    return "RequestStopTransaction", {"transactionId": tx_id}


def availability(v: str, operative: bool) -> tuple[str, dict[str, Any]]:
    word = "Operative" if operative else "Inoperative"
    return "ChangeAvailability", {"connectorId": 0, "type": word} if v == "1.6" else {"operationalStatus": word}


def reset(v: str, immediate: bool) -> tuple[str, dict[str, Any]]:
    if v == "1.6":
        return "Reset", {"type": "Hard" if immediate else "Soft"}
    return "Reset", {"type": "Immediate" if immediate else "OnIdle"}


def reserve(v: str, res_id: int, expires: float, token: str = "card-1") -> tuple[str, dict[str, Any]]:
    if v == "1.6":
        return "ReserveNow", {"connectorId": 1, "expiryDate": stamp(expires), "idTag": token, "reservationId": res_id}
    return "ReserveNow", {"id": res_id, "expiryDateTime": stamp(expires), "idToken": {"idToken": token,
                                                                                     "type": "Central"}}


def profile(v: str, pid: int, purpose: str, amps: float, start: float = T0,
            periods: list[tuple[int, float]] | None = None) -> dict[str, Any]:
    """An Absolute charging profile in `v`'s words; `purpose` "cp_max", "tx_default" or "tx"."""
    periods_json = [{"startPeriod": s, "limit": a} for s, a in (periods or [(0, amps)])]
    schedule: dict[str, Any] = {"chargingRateUnit": "A", "chargingSchedulePeriod": periods_json,
                                "startSchedule": stamp(start)}
    kind = "Absolute"
    if v == "1.6":
        name = {"cp_max": "ChargePointMaxProfile", "tx_default": "TxDefaultProfile", "tx": "TxProfile"}[purpose]
        return {"chargingProfileId": pid, "stackLevel": 0, "chargingProfilePurpose": name,
                "chargingProfileKind": kind, "chargingSchedule": schedule}
    name = {"cp_max": "ChargingStationMaxProfile", "tx_default": "TxDefaultProfile", "tx": "TxProfile"}[purpose]
    return {"id": pid, "stackLevel": 0, "chargingProfilePurpose": name, "chargingProfileKind": kind,
            "chargingSchedule": [{"id": 1, **schedule}]}


def set_profile(v: str, prof: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    if v == "1.6":
        return "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": prof}
    return "SetChargingProfile", {"evseId": 1, "chargingProfile": prof}


# -- remote start and stop -------------------------------------------------------------------------------


def test_remote_start_asks_the_site_and_answers_with_its_decision(rig: Rig) -> None:
    out, answer = ask(rig, remote_start(rig.version))
    assert answer is None
    [p] = proposals(out)
    assert (p.op, p.args) == ("remote_start", {"cp": "cp1", "token": "card-1", "timeout_s": 120.0})
    assert reply_of(rig.site(p, {"ok": True}), "q1", rig.version, remote_start(rig.version)[0]) == \
        {"status": "Accepted"}
    out, _ = ask(rig, remote_start(rig.version), "q2")
    assert reply_of(rig.site(proposals(out)[0], {"error": "cp_busy", "reason": "in use"}), "q2", rig.version,
                    remote_start(rig.version)[0]) == {"status": "Rejected"}


def test_remote_start_the_site_does_not_answer_in_time_is_rejected(rig: Rig) -> None:
    out, _ = ask(rig, remote_start(rig.version))
    assert rig.tick(remote_module.SITE_TIMEOUT_S - 0.1) == []
    assert reply_of(rig.tick(0.1), "q1", rig.version, remote_start(rig.version)[0]) == {"status": "Rejected"}
    assert rig.site(proposals(out)[0], {"ok": True}) == []   # too late: answered already


def test_remote_start_during_a_transaction_is_rejected_at_once(rig: Rig) -> None:
    start_session(rig)
    out, answer = ask(rig, remote_start(rig.version))
    assert answer == {"status": "Rejected"} and proposals(out) == []


def test_a_remote_start_whose_profile_is_not_a_tx_profile_is_rejected(rig: Rig) -> None:
    out, answer = ask(rig, remote_start(rig.version, profile=profile(rig.version, 5, "cp_max", 10.0)))
    assert answer == {"status": "Rejected"} and proposals(out) == []


def test_remote_start_carries_remote_start_id_and_installs_its_tx_profile(rig: Rig) -> None:
    out, _ = ask(rig, remote_start(rig.version, profile=profile(rig.version, 5, "tx", 10.0)))
    rig.site(proposals(out)[0], {"ok": True})
    out = rig.handle(TxStarted("s1", "card-1", sample(rig.now)))
    [limits] = proposals(out, "charging_limits")
    assert limits.args["session_a"] == 10.0
    rig.site(limits, {"ok": True})
    sent = rig.drain(out, tx_id=4711)
    if rig.version == "2.0.1":
        assert sent[0].payload["transactionInfo"]["remoteStartId"] == 42
        assert sent[0].payload["triggerReason"] == "RemoteStart"
        assert sent[0].payload["idToken"]["type"] == "Central"
    # the profile still applies once the CSMS knows the transaction (1.6: its id bound), and after a restart
    assert rig.core.remote.limits(rig.now, force=True) == []
    [again] = rig.core.remote.take_proposals()
    assert again.args["session_a"] == 10.0
    rig = rig.restart()
    assert proposals(rig.started, "charging_limits")[0].args["session_a"] == 10.0
    # ended: the TxProfile goes with its transaction
    out = rig.handle(TxEnded("s1", sample(rig.now + 60, 2000, 0), "ev"))
    assert proposals(out, "charging_limits")[0].args["session_a"] is None
    assert rig.profiles.installed() == []


def test_v16_a_tx_profile_names_the_transaction_by_the_csms_id(tmp_path: Path) -> None:
    rig = Rig("1.6", tmp_path)
    rig.drain(rig.boot())
    start_session(rig)
    out, answer = ask(rig, set_profile("1.6", profile("1.6", 3, "tx", 9.0) | {"transactionId": 999}))
    assert answer == {"status": "Rejected"}
    out, answer = ask(rig, set_profile("1.6", profile("1.6", 3, "tx", 9.0) | {"transactionId": 4711}), "q2")
    assert answer == {"status": "Accepted"}
    assert limits_of(out)["session_a"] == 9.0


def test_remote_stop_of_another_transaction_is_rejected_of_ours_asks_the_site(rig: Rig) -> None:
    tx_id = start_session(rig)
    out, answer = ask(rig, remote_stop(rig.version, "999" if rig.version == "1.6" else "other"))
    assert answer == {"status": "Rejected"} and proposals(out) == []
    out, answer = ask(rig, remote_stop(rig.version, tx_id), "q2")
    assert answer is None
    [p] = proposals(out)
    assert (p.op, p.args) == ("remote_stop", {"cp": "cp1", "session": "s1"})
    assert reply_of(rig.site(p, {"ok": True}), "q2", rig.version, "RemoteStopTransaction" if rig.version == "1.6"
                    else "RequestStopTransaction") == {"status": "Accepted"}


# -- availability and reset ------------------------------------------------------------------------------


def test_inoperative_during_a_transaction_is_scheduled_then_stops_the_point_after_it(rig: Rig) -> None:
    start_session(rig)
    out, answer = ask(rig, availability(rig.version, False))
    assert answer == {"status": "Scheduled"} and proposals(out) == []
    out = rig.handle(TxEnded("s1", sample(rig.now + 60, 2000, 0), "ev"))
    assert [p.args for p in proposals(out, "stop_cp")] == [{"cp": "cp1"}]


def test_inoperative_and_operative_when_idle_ask_the_site(rig: Rig) -> None:
    out, answer = ask(rig, availability(rig.version, False))
    assert answer is None
    [p] = proposals(out, "stop_cp")
    assert reply_of(rig.site(p, {"ok": True}), "q1", rig.version, "ChangeAvailability") == {"status": "Accepted"}
    out, _ = ask(rig, availability(rig.version, True), "q2")
    [p] = proposals(out, "resume_cp")
    assert reply_of(rig.site(p, {"error": "not_allowed", "reason": "no"}), "q2", rig.version,
                    "ChangeAvailability") == {"status": "Rejected"}


@pytest.mark.parametrize("immediate", [False, True])
def test_reset_when_idle_is_accepted_then_restarts(rig: Rig, immediate: bool) -> None:
    out, answer = ask(rig, reset(rig.version, immediate))
    assert answer == {"status": "Accepted"}
    assert out[-1] == Restart("hard_reset" if immediate else "reset")


def test_reset_during_a_transaction_stops_it_then_restarts(rig: Rig) -> None:
    start_session(rig)
    out, answer = ask(rig, reset(rig.version, True))
    assert answer == {"status": "Accepted"}
    [stop] = proposals(out, "remote_stop")
    assert stop.args == {"cp": "cp1", "session": "s1"}
    assert not any(isinstance(o, Restart) for o in out + rig.site(stop, {"ok": True}))
    out = rig.handle(TxEnded("s1", sample(rig.now + 5, 2000, 0), "hard_reset"))
    assert Restart("hard_reset") in out
    assert call_of(out).payload.get("reason", call_of(out).payload.get("transactionInfo", {}).get(
        "stoppedReason")) in ("HardReset", "ImmediateReset")


def test_reset_during_a_transaction_restarts_after_reset_wait_at_the_latest(rig: Rig) -> None:
    start_session(rig)
    out, answer = ask(rig, reset(rig.version, True))
    assert answer == {"status": "Accepted"}
    rig.site(proposals(out, "remote_stop")[0], {"error": "not_allowed", "reason": "no"})
    assert not any(isinstance(o, Restart) for o in rig.tick(remote_module.RESET_WAIT_S - 0.1))
    assert Restart("hard_reset") in rig.tick(0.1)


def test_a_soft_reset_stops_the_transaction_and_2_0_1_on_idle_waits_for_its_end(rig: Rig) -> None:
    """1.6 Soft stops the transaction gracefully, then restarts; 2.0.1 OnIdle lets it run to its end (Scheduled)."""
    start_session(rig)
    out, answer = ask(rig, reset(rig.version, False))
    if rig.version == "1.6":
        assert answer == {"status": "Accepted"} and proposals(out, "remote_stop")
        return
    assert answer == {"status": "Scheduled"} and not proposals(out, "remote_stop")
    assert not any(isinstance(o, Restart) for o in rig.tick(remote_module.RESET_WAIT_S * 10))
    assert Restart("reset") in rig.handle(TxEnded("s1", sample(rig.now + 5, 2000, 0), "ev"))


# -- reservations ----------------------------------------------------------------------------------------


def test_reserve_now_asks_the_site_for_the_time_to_its_expiry(rig: Rig) -> None:
    out, answer = ask(rig, reserve(rig.version, 7, rig.now + 900))
    assert answer is None
    [p] = proposals(out)
    assert (p.op, p.args) == ("remote_reserve", {"cp": "cp1", "token": "card-1", "duration_s": 900.0})
    assert reply_of(rig.site(p, {"ok": True}), "q1", rig.version, "ReserveNow") == {"status": "Accepted"}
    out, answer = ask(rig, ("CancelReservation", {"reservationId": 8}), "q2")
    assert answer == {"status": "Rejected"} and proposals(out) == []
    out, _ = ask(rig, ("CancelReservation", {"reservationId": 7}), "q3")
    [p] = proposals(out, "remote_cancel_reservation")
    assert reply_of(rig.site(p, {"ok": True}), "q3", rig.version, "CancelReservation") == {"status": "Accepted"}


@pytest.mark.parametrize(("result", "status"), [
    ({"error": "cp_busy", "reason": "in use"}, "Occupied"),
    ({"error": "cp_unavailable", "reason": "faulted", "why": "faulted"}, "Faulted"),
    ({"error": "cp_unavailable", "reason": "out", "why": "out_of_order"}, "Unavailable"),
    (None, "Rejected")])
def test_reserve_now_refused_by_the_site(rig: Rig, result: dict[str, Any] | None, status: str) -> None:
    out, _ = ask(rig, reserve(rig.version, 7, rig.now + 900))
    assert reply_of(rig.site(proposals(out)[0], result), "q1", rig.version, "ReserveNow") == {"status": status}


def test_reserve_now_already_expired_is_rejected(rig: Rig) -> None:
    out, answer = ask(rig, reserve(rig.version, 7, rig.now - 10))
    assert answer == {"status": "Rejected"} and proposals(out) == []


# -- charging profiles -----------------------------------------------------------------------------------


def limits_of(out: list[Any]) -> dict[str, Any]:
    [p] = proposals(out, "charging_limits")
    return p.args


def test_set_and_clear_charging_profile_propose_the_limits_in_force(rig: Rig) -> None:
    out, answer = ask(rig, set_profile(rig.version, profile(rig.version, 1, "cp_max", 20.0)))
    assert answer == {"status": "Accepted"}
    assert limits_of(out) == {"cp": "cp1", "max_a": 20.0, "default_a": None, "session_a": None}
    rig.site(proposals(out)[0], {"ok": True})
    out, answer = ask(rig, set_profile(rig.version, profile(rig.version, 2, "tx_default", 12.5)), "q2")
    assert limits_of(out)["default_a"] == 12.5
    rig.site(proposals(out)[0], {"ok": True})
    out, answer = ask(rig, ("ClearChargingProfile", {"chargingProfileId" if rig.version == "2.0.1" else "id": 1}),
                      "q3")
    assert answer == {"status": "Accepted"}
    assert limits_of(out) == {"cp": "cp1", "max_a": None, "default_a": 12.5, "session_a": None}
    out, answer = ask(rig, ("ClearChargingProfile", {"chargingProfileId" if rig.version == "2.0.1" else "id": 1}),
                      "q4")
    assert answer == {"status": "Unknown"} and proposals(out) == []


def test_a_profile_starting_later_sets_a_deadline_and_tick_proposes_then(rig: Rig) -> None:
    later = rig.now + 1800
    out, answer = ask(rig, set_profile(rig.version, profile(rig.version, 1, "cp_max", 20.0, start=rig.now,
                                                            periods=[(0, 20.0), (1800, 8.0)])))
    assert limits_of(out)["max_a"] == 20.0
    rig.site(proposals(out)[0], {"ok": True})
    assert rig.core.next_deadline() <= later
    while (due := rig.core.next_deadline()) < later:   # heartbeats meanwhile, and no new limits
        out = rig.tick(due - rig.now)
        assert proposals(out) == []
        rig.drain(out)
    assert proposals(rig.tick(later - 0.1 - rig.now)) == []
    assert limits_of(rig.tick(0.1))["max_a"] == 8.0


def test_a_site_that_refuses_the_limits_is_asked_again(rig: Rig) -> None:
    out, _ = ask(rig, set_profile(rig.version, profile(rig.version, 1, "cp_max", 20.0)))
    assert rig.site(proposals(out)[0], {"error": "not_allowed", "reason": "later"}) == []
    due = rig.core.next_deadline()
    assert due is not None and rig.now < due <= rig.now + 60
    assert limits_of(rig.tick(due - rig.now))["max_a"] == 20.0


def test_get_composite_schedule_answers_valid_for_its_schema(rig: Rig) -> None:
    prof = profile(rig.version, 1, "tx_default", 16.0, start=rig.now - 60, periods=[(0, 16.0), (600, 10.5)])
    ask(rig, set_profile(rig.version, prof))
    request = {"connectorId": 1, "duration": 3600} if rig.version == "1.6" else {"evseId": 1, "duration": 3600}
    for unit in (None, "A", "W"):
        out, answer = ask(rig, ("GetCompositeSchedule", request | ({"chargingRateUnit": unit} if unit else {})),
                          f"c{unit}")
        assert answer is not None and answer["status"] == "Accepted"
