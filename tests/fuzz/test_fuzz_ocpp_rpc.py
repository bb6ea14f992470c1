"""Fuzz OCPP-J decoding (firmware/ocpp/rpc.py) and the core behind it, both versions: arbitrary text and bytes
and mutated valid frames always decode to one of rpc's types, never an exception; every request that gets
through, fed to a booted core on its real parts, never raises, and everything the core sends is valid for its
schema (a refusal of our own frame by rpc is our bug: logged as `ocpp.our_*_invalid`, counted here)."""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from ocpp.messages import Call, CallResult

from firmware.ocpp import rpc
from firmware.ocpp.events import Propose, Send, SiteAnswer, TxStarted
from firmware.ocpp.times import stamp

from ..ocpp.core_rig import T0, Rig, sample

LATER, EARLIER = stamp(T0 + 3600), stamp(T0 - 3600)
SCHEDULE16 = {"chargingRateUnit": "A", "startSchedule": EARLIER, "duration": 7200,
              "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}, {"startPeriod": 1800, "limit": 8.5}]}
PROFILE16 = {"chargingProfileId": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
             "chargingProfileKind": "Absolute", "chargingSchedule": SCHEDULE16}
SCHEDULE201 = {"id": 1, "chargingRateUnit": "A", "startSchedule": EARLIER, "duration": 7200,
               "chargingSchedulePeriod": [{"startPeriod": 0, "limit": 16.0}, {"startPeriod": 1800, "limit": 8.5}]}
PROFILE201 = {"id": 1, "stackLevel": 0, "chargingProfilePurpose": "TxDefaultProfile",
              "chargingProfileKind": "Absolute", "chargingSchedule": [SCHEDULE201]}
TOKEN201 = {"idToken": "card-1", "type": "Central"}

REQUESTS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "1.6": [
        ("RemoteStartTransaction", {"idTag": "card-1", "connectorId": 1,
                                    "chargingProfile": PROFILE16 | {"chargingProfilePurpose": "TxProfile"}}),
        ("RemoteStopTransaction", {"transactionId": 1}),
        ("ChangeAvailability", {"connectorId": 0, "type": "Inoperative"}),
        ("Reset", {"type": "Soft"}),
        ("UnlockConnector", {"connectorId": 1}),
        ("ReserveNow", {"connectorId": 1, "expiryDate": LATER, "idTag": "card-1", "reservationId": 7,
                        "parentIdTag": "p"}),
        ("CancelReservation", {"reservationId": 7}),
        ("SetChargingProfile", {"connectorId": 1, "csChargingProfiles": PROFILE16}),
        ("ClearChargingProfile", {"id": 1, "connectorId": 1, "chargingProfilePurpose": "TxDefaultProfile",
                                  "stackLevel": 0}),
        ("GetCompositeSchedule", {"connectorId": 1, "duration": 3600, "chargingRateUnit": "W"}),
        ("TriggerMessage", {"requestedMessage": "MeterValues", "connectorId": 1}),
        ("GetConfiguration", {"key": ["HeartbeatInterval", "Nope"]}),
        ("ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": "30"}),
        ("ClearCache", {}),
        ("DataTransfer", {"vendorId": "v", "messageId": "m", "data": "d"}),
        ("GetLocalListVersion", {}),
    ],
    "2.0.1": [
        ("RequestStartTransaction", {"idToken": TOKEN201, "remoteStartId": 4, "evseId": 1,
                                     "chargingProfile": PROFILE201 | {"chargingProfilePurpose": "TxProfile"}}),
        ("RequestStopTransaction", {"transactionId": "s1"}),
        ("ChangeAvailability", {"operationalStatus": "Inoperative", "evse": {"id": 1}}),
        ("Reset", {"type": "OnIdle"}),
        ("UnlockConnector", {"evseId": 1, "connectorId": 1}),
        ("ReserveNow", {"id": 7, "expiryDateTime": LATER, "idToken": TOKEN201, "evseId": 1}),
        ("CancelReservation", {"reservationId": 7}),
        ("SetChargingProfile", {"evseId": 1, "chargingProfile": PROFILE201}),
        ("ClearChargingProfile", {"chargingProfileId": 1,
                                  "chargingProfileCriteria": {"chargingProfilePurpose": "TxDefaultProfile"}}),
        ("GetCompositeSchedule", {"evseId": 1, "duration": 3600, "chargingRateUnit": "W"}),
        ("TriggerMessage", {"requestedMessage": "TransactionEvent", "evse": {"id": 1}}),
        ("GetVariables", {"getVariableData": [{"component": {"name": "OCPPCommCtrlr"},
                                               "variable": {"name": "HeartbeatInterval"}}]}),
        ("SetVariables", {"setVariableData": [{"component": {"name": "SampledDataCtrlr"},
                                               "variable": {"name": "TxUpdatedInterval"}, "attributeValue": "30"}]}),
        ("ClearCache", {}),
        ("DataTransfer", {"vendorId": "v"}),
        ("GetLocalListVersion", {}),
    ],
}
# Answers to our calls (the uid "r1" is the one in flight, of the action named).
RESULTS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "1.6": [("BootNotification", {"status": "Accepted", "currentTime": EARLIER, "interval": 300}),
            ("StartTransaction", {"transactionId": 5, "idTagInfo": {"status": "Accepted"}}),
            ("Authorize", {"idTagInfo": {"status": "Blocked", "expiryDate": LATER}})],
    "2.0.1": [("BootNotification", {"status": "Pending", "currentTime": EARLIER, "interval": 300}),
              ("TransactionEvent", {"totalCost": 1.5, "idTokenInfo": {"status": "Accepted"}}),
              ("Authorize", {"idTokenInfo": {"status": "Accepted"}})],
}

WORDS = ["Accepted", "Rejected", "TxProfile", "TxDefaultProfile", "ChargePointMaxProfile", "ChargingStationMaxProfile",
         "Absolute", "Relative", "Recurring", "Daily", "Weekly", "A", "W", "Operative", "Inoperative", "Hard", "Soft",
         "Immediate", "OnIdle", "BootNotification", "Heartbeat", "StatusNotification", "MeterValues",
         "TransactionEvent", "HeartbeatInterval", "MeterValueSampleInterval", "Central", "ISO14443", "s1"]
TIMES = [LATER, EARLIER, "1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999999999+14:00",
         "2026-02-30T00:00:00Z", "2026-05-28T10:00:00", "not a time", ""]
LEAVES = st.one_of(
    st.integers(-(2 ** 40), 2 ** 40), st.sampled_from([0, -1, 1, 2 ** 31, 2 ** 63, -(2 ** 63), 10 ** 30]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.05, 0.1, 1e308, -0.0, 5e-324]),
    st.text(max_size=40), st.sampled_from(WORDS + TIMES), st.booleans(), st.none())
JSON = st.recursive(LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner,
                                                                                          max_size=4), max_leaves=12)


def mutate(data: st.DataObject, value: Any, depth: int = 0) -> Any:
    """`value` with one change somewhere inside: a leaf replaced, a key dropped or added, an item dropped."""
    if isinstance(value, dict) and value and depth < 6:
        key = data.draw(st.sampled_from(sorted(value)))
        how = data.draw(st.sampled_from(["into", "into", "drop", "add", "replace"]))
        out = dict(value)
        if how == "into":
            out[key] = mutate(data, value[key], depth + 1)
        elif how == "drop":
            del out[key]
        elif how == "add":
            out[data.draw(st.sampled_from(["x", key + "x", "transactionId", "evseId", "connectorId"]))] = \
                data.draw(JSON)
        else:
            out[key] = data.draw(JSON)
        return out
    if isinstance(value, list) and value and depth < 6:
        i = data.draw(st.integers(0, len(value) - 1))
        how = data.draw(st.sampled_from(["into", "into", "drop", "twice"]))
        if how == "into":
            return value[:i] + [mutate(data, value[i], depth + 1)] + value[i + 1:]
        if how == "drop":
            return value[:i] + value[i + 1:]
        return value[:i] + [value[i]] * 2 + value[i:]
    return data.draw(JSON)


def action_of(uid: str) -> str | None:
    return "Heartbeat" if uid == "r1" else None


def check_decoded(incoming: object) -> None:
    assert isinstance(incoming, rpc.CallIn | rpc.ResultIn | rpc.ErrorIn | rpc.BadFrame), incoming
    if isinstance(incoming, rpc.BadFrame) and incoming.reply is not None:
        assert json.loads(incoming.reply)[0] == 4


@settings(max_examples=200, deadline=None)
@given(raw=st.one_of(st.text(max_size=200), st.binary(max_size=200), JSON.map(json.dumps),
                     st.lists(JSON, max_size=5).map(json.dumps)),
       version=st.sampled_from(rpc.VERSIONS))
def test_any_text_decodes_to_one_of_rpcs_types(raw: str | bytes, version: str) -> None:
    check_decoded(rpc.decode(raw, version, action_of))


@settings(max_examples=250, deadline=None)
@given(data=st.data(), version=st.sampled_from(rpc.VERSIONS), text_level=st.booleans())
def test_mutated_valid_frames_decode_to_one_of_rpcs_types(data: st.DataObject, version: str,
                                                          text_level: bool) -> None:
    kind = data.draw(st.sampled_from(["call", "result", "error"]))
    if kind == "call":
        action, payload = data.draw(st.sampled_from(REQUESTS[version]))
        frame: list[Any] = [2, "c1", action, payload]
    elif kind == "result":
        action, payload = data.draw(st.sampled_from(RESULTS[version]))
        frame = [3, "r1", payload]
    else:
        frame = [4, "r1", "InternalError", "no", {}]
    frame = mutate(data, frame)
    raw = json.dumps(frame)
    if text_level and raw:
        i = data.draw(st.integers(0, len(raw) - 1))
        raw = raw[:i] + data.draw(st.text(max_size=3)) + raw[i + data.draw(st.integers(0, 3)):]
    rig_action = {"r1": action} if kind == "result" else {}
    check_decoded(rpc.decode(raw, version, rig_action.get))


# -- the core behind the decoder -----------------------------------------------------------------------------


class OurInvalid(logging.Handler):
    """Counts the core's own frames that rpc refused (`ocpp.our_call_invalid`, `ocpp.our_answer_invalid`)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if "event=ocpp.our_" in record.getMessage():
            self.lines.append(record.getMessage())


def check_sent(rig: Rig, out: list[Any], asked: dict[str, str]) -> None:
    """Every frame the core sent is valid: calls and answers for their schema, errors well formed."""
    for o in out:
        if not isinstance(o, Send):
            continue
        msg = json.loads(o.frame)
        if msg[0] == 2:
            assert rpc.invalid(Call(msg[1], msg[2], msg[3]), rig.version) is None, o.frame
        elif msg[0] == 3:
            assert msg[1] in asked, o.frame
            assert rpc.invalid(CallResult(msg[1], msg[2], asked[msg[1]]), rig.version) is None, o.frame
        else:
            assert msg[0] == 4 and isinstance(msg[2], str) and isinstance(msg[3], str), o.frame


SITE_RESULTS = st.sampled_from([{"ok": True}, {"error": "cp_busy", "reason": "x"}, None,
                                {"error": "cp_unavailable", "reason": "x", "why": "faulted"}])


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), version=st.sampled_from(rpc.VERSIONS), in_tx=st.booleans())
def test_every_request_that_decodes_is_answered_validly_by_a_booted_core(data: st.DataObject, version: str,
                                                                          in_tx: bool) -> None:
    invalid = OurInvalid()
    logging.getLogger("evnet").addHandler(invalid)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            rig = Rig(version, Path(tmp))
            try:
                rig.drain(rig.boot())
                if in_tx:
                    rig.handle(sample(rig.now))
                    rig.drain(rig.handle(TxStarted("s1", "card-1", sample(rig.now))))
                asked: dict[str, str] = {}
                for n in range(data.draw(st.integers(1, 4))):
                    action, payload = data.draw(st.sampled_from(REQUESTS[version]))
                    if data.draw(st.booleans()):
                        payload = mutate(data, payload)
                    uid = f"c{n}"
                    incoming = rpc.decode(json.dumps([2, uid, action, payload]), version, rig.core.action_of)
                    event(f"{action}: {type(incoming).__name__}")
                    if not isinstance(incoming, rpc.CallIn):
                        continue
                    asked[uid] = action
                    out = rig.core.handle(incoming, rig.now)
                    check_sent(rig, out, asked)
                    for p in [o for o in out if isinstance(o, Propose)]:
                        out = rig.core.handle(SiteAnswer(p.ref, data.draw(SITE_RESULTS)), rig.now)
                        check_sent(rig, out, asked)
                    rig.drain(out)
                    check_sent(rig, rig.tick(data.draw(st.sampled_from([0.0, 11.0, 1800.0]))), asked)
            finally:
                rig.outbox.close()
    finally:
        logging.getLogger("evnet").removeHandler(invalid)
    assert invalid.lines == []
