"""What a CSMS asks of the OCPP core about its messages, both versions: triggers, configuration (heartbeats and
sampling obey it), and what the core does not take (requests not supported, bad frames)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from firmware.ocpp.events import Send, TxEnded

from .core_rig import VERSIONS, Rig, ask, call_of, calls_in, read, reply_of, sample, start_session


@pytest.fixture(params=VERSIONS)
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Rig:
    rig = Rig(request.param, tmp_path)
    rig.drain(rig.boot())
    return rig


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
