"""What a CSMS asks of the OCPP core, both versions, on its real parts: decided through the site by proposals
answered with `SiteAnswer`, or here (profiles, configuration, triggers); every answer valid for its schema."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from firmware.ocpp import remote as remote_module
from firmware.ocpp.events import Restart, Send, TxEnded, TxStarted
from firmware.ocpp.times import stamp

from .core_rig import T0, VERSIONS, Rig, call_of, calls_in, proposals, read, reply_of, sample


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


def ask(rig: Rig, request: tuple[str, dict[str, Any]], uid: str = "q1") -> tuple[list[Any], dict[str, Any] | None]:
    """Send a request: (the outputs, the answer's payload or None when it waits for the site)."""
    out = rig.request(request[0], request[1], uid)
    answered = [s for s in (read(o.frame) for o in out if isinstance(o, Send)) if s.uid == uid]
    return out, reply_of(out, uid, rig.version, request[0]) if answered else None


def start_session(rig: Rig, token: str = "card-1", session: str = "s1") -> str:
    """A session running, its start answered (1.6: id 4711): the transaction id as the CSMS knows it."""
    out = rig.handle(TxStarted(session, token, sample(rig.now)))
    for p in proposals(out, "charging_limits"):
        rig.site(p, {"ok": True})
    rig.drain(out, tx_id=4711)
    assert rig.outbox.head() is None
    return "4711" if rig.version == "1.6" else session


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
    out, answer = ask(rig, reset(rig.version, False))
    assert answer == {"status": "Accepted" if rig.version == "1.6" else "Scheduled"}
    rig.site(proposals(out, "remote_stop")[0], {"error": "not_allowed", "reason": "no"})
    assert not any(isinstance(o, Restart) for o in rig.tick(remote_module.RESET_WAIT_S - 0.1))
    assert Restart("reset") in rig.tick(0.1)


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


# -- triggers ----------------------------------------------------------------------------------------------


TRIGGERS = {"1.6": ["BootNotification", "Heartbeat", "StatusNotification", "MeterValues"],
            "2.0.1": ["BootNotification", "Heartbeat", "StatusNotification", "MeterValues", "TransactionEvent"]}


def test_each_trigger_is_accepted_and_its_message_is_sent_next(rig: Rig) -> None:
    start_session(rig)
    rig.handle(sample(rig.now + 5))
    for n, what in enumerate(TRIGGERS[rig.version]):
        out, answer = ask(rig, ("TriggerMessage", {"requestedMessage": what}), f"t{n}")
        assert answer == {"status": "Accepted"}, what
        sent = call_of(out)
        assert sent.action == what
        if what == "TransactionEvent":  # the transaction's next event, in turn with its others
            assert (sent.payload["eventType"], sent.payload["triggerReason"], sent.payload["seqNo"]) == \
                ("Updated", "Trigger", 1)
        rig.drain(out)


def test_a_trigger_with_nothing_to_report_is_rejected(rig: Rig) -> None:
    for n, what in enumerate(TRIGGERS[rig.version][3:]):   # no reading yet, no transaction
        out, answer = ask(rig, ("TriggerMessage", {"requestedMessage": what}), f"t{n}")
        assert answer == {"status": "Rejected"} and calls_in(out) == []
    rig.handle(sample(rig.now))
    if rig.version == "2.0.1":
        out, answer = ask(rig, ("TriggerMessage", {"requestedMessage": "TransactionEvent"}), "tx")
        assert answer == {"status": "Rejected"} and calls_in(out) == []


@pytest.mark.parametrize("what", ["FirmwareStatusNotification", "DiagnosticsStatusNotification",
                                  "LogStatusNotification", "SignChargingStationCertificate"])
def test_a_trigger_not_implemented(rig: Rig, what: str) -> None:
    out = rig.request("TriggerMessage", {"requestedMessage": what}, "t1")
    sent = [read(o.frame) for o in out if isinstance(o, Send)]
    if sent[0].kind == 4:  # not a message of this version: the schema refused it
        assert sent[0].action == "FormationViolation" or sent[0].action.endswith("Violation")
        return
    assert reply_of(out, "t1", rig.version, "TriggerMessage") == {"status": "NotImplemented"}
    assert calls_in(out) == []


# -- configuration -----------------------------------------------------------------------------------------


def set_config(v: str, key: str, value: str) -> tuple[str, dict[str, Any]]:
    if v == "1.6":
        return "ChangeConfiguration", {"key": key, "value": value}
    names = {"HeartbeatInterval": ("OCPPCommCtrlr", "HeartbeatInterval"),
             "MeterValueSampleInterval": ("SampledDataCtrlr", "TxUpdatedInterval")}[key]
    return "SetVariables", {"setVariableData": [{"component": {"name": names[0]}, "variable": {"name": names[1]},
                                                 "attributeValue": value}]}


def get_config(v: str, key: str) -> tuple[str, dict[str, Any]]:
    if v == "1.6":
        return "GetConfiguration", {"key": [key]}
    return "GetVariables", {"getVariableData": [{"component": {"name": "OCPPCommCtrlr"},
                                                 "variable": {"name": key}}]}


def config_value(v: str, answer: dict[str, Any]) -> str:
    return answer["configurationKey"][0]["value"] if v == "1.6" else answer["getVariableResult"][0]["attributeValue"]


def test_a_heartbeat_interval_set_by_the_csms_re_times_heartbeats(rig: Rig) -> None:
    _, answer = ask(rig, set_config(rig.version, "HeartbeatInterval", "45"))
    assert answer is not None
    assert config_value(rig.version, ask(rig, get_config(rig.version, "HeartbeatInterval"), "q2")[1]) == "45"
    assert calls_in(rig.tick(44.9)) == []
    beat = call_of(rig.tick(0.1))
    assert beat.action == "Heartbeat"
    assert rig.answer(beat) == []
    assert rig.core.next_deadline() == rig.now + 45
    # and on the next connection, the CSMS's own boot interval wins again (OCPP: it sets the interval)
    assert rig.core.heartbeat_s == 45


def test_a_sample_interval_set_by_the_csms_changes_the_sampling(rig: Rig) -> None:
    start_session(rig)
    ask(rig, set_config(rig.version, "MeterValueSampleInterval", "10"))
    t = rig.now
    sent = []
    for dt in (5, 10, 15, 20, 25, 30):
        sent += rig.drain(rig.handle(sample(t + dt, 1000 + dt)))
    assert len(sent) == 3   # at 10, 20, 30 after the start
    ask(rig, set_config(rig.version, "MeterValueSampleInterval", "0"), "q2")
    assert rig.drain(rig.handle(sample(t + 100, 1100))) == []


# -- what the core does not take ---------------------------------------------------------------------------


def test_a_request_the_dialect_does_not_take_is_not_supported(rig: Rig) -> None:
    action, payload = (("GetLocalListVersion", {}) if rig.version == "1.6"
                       else ("GetLocalListVersion", {}))
    [sent] = [read(o.frame) for o in rig.request(action, payload, "n1") if isinstance(o, Send)]
    assert (sent.kind, sent.uid, sent.action) == (4, "n1", "NotSupported")


@pytest.mark.parametrize("raw", [
    '[2,"b1","Reset",{"type":"Sideways"}]', '[2,"b2","NoSuchAction",{}]', '[2,"b3","Reset",[]]',
    '[2,"b4","Reset"]', "not json", '{"a":1}', '[5,"b5"]', '[3,"unknown",{}]', b"\xff\xfe", "[" * 5000 + "]" * 5000])
def test_a_bad_frame_is_counted_and_answered_when_it_was_a_request(rig: Rig, raw: str | bytes) -> None:
    out = rig.frame(raw)
    assert rig.core.bad_frames == 1
    sent = [read(o.frame) for o in out if isinstance(o, Send)]
    if isinstance(raw, str) and raw.startswith('[2,"b') and raw != '[2,"b4","Reset"]':
        [error] = sent
        assert error.kind == 4 and error.uid == raw.split('"')[1]
    else:
        assert sent == []


def test_no_sampled_measurands_set_means_no_periodic_values_and_triggers_still_report_energy(rig: Rig) -> None:
    ask(rig, ("ChangeConfiguration", {"key": "MeterValuesSampledData", "value": ""}) if rig.version == "1.6" else
        ("SetVariables", {"setVariableData": [{"component": {"name": "SampledDataCtrlr"}, "attributeValue": "",
                                               "variable": {"name": "TxUpdatedMeasurands"}}]}))
    assert rig.settings.value("MeterValuesSampledData") == ()
    start_session(rig)
    assert rig.drain(rig.handle(sample(rig.now + 60, 1100))) == []
    for what in TRIGGERS[rig.version][3:]:
        out, answer = ask(rig, ("TriggerMessage", {"requestedMessage": what}), what)
        assert answer == {"status": "Accepted"}
        [sent] = rig.drain(out)
        values = sent.payload["meterValue"][0]["sampledValue"]
        assert [v["measurand"] for v in values] == ["Energy.Active.Import.Register"]
    sent = rig.drain(rig.handle(TxEnded("s1", sample(rig.now + 90, 1200, 0), "ev")))
    assert len(sent) == 1
    if rig.version == "2.0.1":
        assert sent[0].payload["seqNo"] == 2   # 0 Started, 1 the trigger's: none lost
    assert rig.outbox.stats().given_up == 0
