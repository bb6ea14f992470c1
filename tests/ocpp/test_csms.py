"""The two test CSMSs (ocpp-rpc strict under Node, the Python `ocpp` package), both OCPP versions, against
scripted charge points that are not ours: the `ocpp` package's ChargePoint and ocpp-rpc's RPCClient."""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
import subprocess
import threading
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import websockets
from ocpp.exceptions import OCPPError
from ocpp.routing import on
from ocpp.v16 import ChargePoint as ChargePoint16
from ocpp.v16 import call as call16
from ocpp.v16 import call_result as result16
from ocpp.v16.enums import Action as Action16
from ocpp.v201 import ChargePoint as ChargePoint201
from ocpp.v201 import call as call201
from ocpp.v201 import call_result as result201
from ocpp.v201 import datatypes as types201
from ocpp.v201.enums import Action as Action201
from websockets.exceptions import InvalidStatus

from .conftest import CSMS_MATRIX, skip_without_node
from .csms import KINDS, NODE_DIR, Csms, CsmsError


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Cp16(ChargePoint16):
    @on(Action16.remote_start_transaction)
    def on_remote_start(self, id_tag: str, **_: Any) -> result16.RemoteStartTransaction:
        self.remote_starts.append(id_tag)
        return result16.RemoteStartTransaction(status="Accepted")

    @on(Action16.unlock_connector, skip_schema_validation=True)
    def on_unlock(self, connector_id: int) -> result16.UnlockConnector:
        return result16.UnlockConnector(status="Maybe")  # not in the schema's enum: the CSMS must object


class Cp201(ChargePoint201):
    @on(Action201.request_start_transaction)
    def on_remote_start(self, id_token: dict[str, Any], remote_start_id: int, **_: Any) \
            -> result201.RequestStartTransaction:
        self.remote_starts.append(id_token["id_token"])
        return result201.RequestStartTransaction(status="Accepted", transaction_id=f"tx{remote_start_id}")

    @on(Action201.unlock_connector, skip_schema_validation=True)
    def on_unlock(self, evse_id: int, connector_id: int) -> result201.UnlockConnector:
        return result201.UnlockConnector(status="Maybe")


class MiniCp:
    """An `ocpp`-package charge point on an event loop of its own, so the test's blocking calls to the CSMS
    (which calls it back) and its own calls can interleave."""

    def __init__(self, csms: Csms, identity: str = "cp1", password: str | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        headers = None if password is None else {"Authorization": basic(identity, password)}
        tls = None
        if csms.ca_file is not None:
            tls = ssl.create_default_context(cafile=str(csms.ca_file))
        self.ws = self.run(websockets.connect(csms.url + identity, subprotocols=[f"ocpp{csms.version}"],
                                              additional_headers=headers, ssl=tls))
        self.cp = (Cp16 if csms.version == "1.6" else Cp201)(identity, self.ws)
        self.cp.remote_starts = []
        self.task = asyncio.run_coroutine_threadsafe(self.cp.start(), self.loop)

    def run(self, awaitable: Awaitable[Any]) -> Any:
        async def wrapped() -> Any:
            return await awaitable
        return asyncio.run_coroutine_threadsafe(wrapped(), self.loop).result(timeout=15)

    def call(self, payload: Any) -> Any:
        return self.run(self.cp.call(payload, suppress=False))

    def send_raw(self, text: str) -> None:
        self.run(self.ws.send(text))

    def close(self) -> None:
        self.run(self.ws.close())
        self.loop.call_soon_threadsafe(self.loop.stop)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


async def handshake(csms: Csms, identity: str, protocol: str, password: str | None = None) -> str | None:
    """The subprotocol a bare websocket gets, or raises InvalidStatus if the CSMS refuses it."""
    headers = None if password is None else {"Authorization": basic(identity, password)}
    tls = None if csms.ca_file is None else ssl.create_default_context(cafile=str(csms.ca_file))
    async with websockets.connect(csms.url + identity, subprotocols=[protocol], additional_headers=headers,
                                  ssl=tls) as ws:
        return ws.subprotocol


def session16(cp: MiniCp, csms: Csms) -> None:
    boot = cp.call(call16.BootNotification(charge_point_model="m", charge_point_vendor="v"))
    assert (boot.status, boot.interval) == ("Accepted", 60)
    cp.call(call16.StatusNotification(connector_id=1, error_code="NoError", status="Available", timestamp=now()))
    assert cp.call(call16.Authorize(id_tag="good")).id_tag_info["status"] == "Accepted"
    assert cp.call(call16.Authorize(id_tag="stranger")).id_tag_info["status"] == "Invalid"
    started = cp.call(call16.StartTransaction(connector_id=1, id_tag="good", meter_start=100, timestamp=now()))
    tx = started.transaction_id
    assert isinstance(tx, int) and started.id_tag_info["status"] == "Accepted"
    cp.call(call16.MeterValues(connector_id=1, transaction_id=tx, meter_value=[
        {"timestamp": now(), "sampled_value": [{"value": "1250", "measurand": "Energy.Active.Import.Register"}]}]))
    assert csms.call("cp1", "RemoteStartTransaction", {"idTag": "remote", "connectorId": 1}) == {"status": "Accepted"}
    assert cp.cp.remote_starts == ["remote"]
    stopped = cp.call(call16.StopTransaction(meter_stop=1350, timestamp=now(), transaction_id=tx, id_tag="good"))
    assert stopped.id_tag_info["status"] == "Accepted"
    assert cp.call(call16.Heartbeat()).current_time.endswith("Z")


def session201(cp: MiniCp, csms: Csms) -> None:
    boot = cp.call(call201.BootNotification(charging_station={"model": "m", "vendor_name": "v"}, reason="PowerUp"))
    assert (boot.status, boot.interval) == ("Accepted", 60)
    cp.call(call201.StatusNotification(timestamp=now(), connector_status="Available", evse_id=1, connector_id=1))
    good = types201.IdTokenType(id_token="good", type="ISO14443")
    assert cp.call(call201.Authorize(id_token=good)).id_token_info["status"] == "Accepted"
    stranger = types201.IdTokenType(id_token="stranger", type="ISO14443")
    assert cp.call(call201.Authorize(id_token=stranger)).id_token_info["status"] == "Invalid"
    tx = types201.TransactionType(transaction_id="tx-1")
    meter = [{"timestamp": now(), "sampled_value": [{"value": 1250.0, "measurand": "Energy.Active.Import.Register"}]}]
    started = cp.call(call201.TransactionEvent(event_type="Started", timestamp=now(), trigger_reason="Authorized",
                                               seq_no=0, transaction_info=tx, id_token=good, evse={"id": 1}))
    assert started.id_token_info["status"] == "Accepted"
    cp.call(call201.TransactionEvent(event_type="Updated", timestamp=now(), trigger_reason="MeterValuePeriodic",
                                     seq_no=1, transaction_info=tx, meter_value=meter))
    cp.call(call201.MeterValues(evse_id=1, meter_value=meter))
    answer = csms.call("cp1", "RequestStartTransaction", {"idToken": {"idToken": "remote", "type": "ISO14443"},
                                                          "remoteStartId": 7})
    assert answer == {"status": "Accepted", "transactionId": "tx7"}
    assert cp.cp.remote_starts == ["remote"]
    ended = cp.call(call201.TransactionEvent(event_type="Ended", timestamp=now(), trigger_reason="StopAuthorized",
                                             seq_no=2, transaction_info=tx))
    assert ended.id_token_info is None
    cp.call(call201.NotifyEvent(generated_at=now(), seq_no=0, event_data=[{
        "event_id": 1, "timestamp": now(), "trigger": "Delta", "actual_value": "x", "event_notification_type":
        "HardWiredNotification", "component": {"name": "EVSE"}, "variable": {"name": "Available"}}]))
    assert cp.call(call201.Heartbeat()).current_time.endswith("Z")


EXPECTED = {
    "1.6": ["BootNotification", "StatusNotification", "Authorize", "Authorize", "StartTransaction", "MeterValues",
            "StopTransaction", "Heartbeat"],
    "2.0.1": ["BootNotification", "StatusNotification", "Authorize", "Authorize", "TransactionEvent",
              "TransactionEvent", "MeterValues", "TransactionEvent", "NotifyEvent", "Heartbeat"],
}


@pytest.mark.parametrize("csms", [pytest.param((*p.values[0], {"accept_tags": ["good", "remote"], "heartbeat": 60}),
                                               id=p.id) for p in CSMS_MATRIX], indirect=True)
def test_a_scripted_session_is_answered_and_recorded_in_order(csms: Csms) -> None:
    cp = MiniCp(csms)
    assert csms.wait_connected("cp1")["protocol"] == f"ocpp{csms.version}"
    (session16 if csms.version == "1.6" else session201)(cp, csms)
    csms.wait_call("Heartbeat", cp="cp1")  # the session's last call: the CSMS reports it after it answered it
    calls = csms.calls(cp="cp1")
    assert [c["action"] for c in calls] == EXPECTED[csms.version]
    assert len({c["id"] for c in calls}) == len(calls)
    assert calls[0]["payload"]["chargePointModel" if csms.version == "1.6" else "chargingStation"]  # wire JSON
    assert csms.wait_call("Authorize", where=lambda c: c["answer"] != calls[2]["answer"]) is calls[3]
    cp.close()


BAD_FRAMES = ["this is not OCPP", "{}", "[]", '[9, "x"]', '[2, 5, "Heartbeat", {}]', '[2, "h", "Heartbeat"]',
              '[3, "no call of ours", {}]', '[4, "no call of ours", "GenericError", "", {}]',
              '[2, "u", "NoSuchAction", {}]']


@pytest.mark.parametrize("csms", CSMS_MATRIX, indirect=True)
def test_violations_are_reported_both_ways_and_the_csms_carries_on(csms: Csms) -> None:
    cp = MiniCp(csms)
    csms.wait_connected("cp1")
    boot = "BootNotification"
    for frame in BAD_FRAMES:
        cp.send_raw(frame)
        assert [v["direction"] for v in csms.take_violations()] == ["in"], frame
    cp.send_raw(json.dumps([2, "m1", boot, {"chargePointModel": 5} if csms.version == "1.6" else {"reason": "x"}]))
    taken = csms.take_violations()
    assert (taken[0]["direction"], taken[0]["action"], taken[0]["id"]) == ("in", boot, "m1")
    with pytest.raises(CsmsError):  # a call the CSMS is told to make that breaks the schema is never sent
        csms.call("cp1", "RemoteStartTransaction" if csms.version == "1.6" else "RequestStartTransaction", {})
    assert [v["direction"] for v in csms.take_violations()] == ["out"]
    unlock = {"connectorId": 1} if csms.version == "1.6" else {"evseId": 1, "connectorId": 1}
    with pytest.raises(CsmsError):  # the charge point's answer breaks the schema
        csms.call("cp1", "UnlockConnector", unlock)
    assert [(v["direction"], v["action"]) for v in csms.take_violations()] == [("in", "UnlockConnector")]
    with pytest.raises(OCPPError):  # a call a charge point never makes
        cp.call(call16.ClearCache() if csms.version == "1.6" else call201.ClearCache())
    assert [v["action"] for v in csms.take_violations()] == ["ClearCache"]
    assert cp.call(call16.Heartbeat() if csms.version == "1.6" else call201.Heartbeat()).current_time
    csms.wait_call("Heartbeat")  # reported once answered: await it, then nothing else was recorded
    assert [c["action"] for c in csms.calls()] == ["Heartbeat"]
    cp.close()


@pytest.mark.parametrize("kind", KINDS)
def test_basic_auth_over_tls_admits_the_right_password_only(kind: str, csms_factory: Callable[..., Csms]) -> None:
    csms = csms_factory(kind, "2.0.1", password="s3cret pass", tls=True)
    assert csms.url.startswith("wss://")
    assert asyncio.run(handshake(csms, "cp1", "ocpp2.0.1", "s3cret pass")) == "ocpp2.0.1"
    for password in ("wrong", None):
        with pytest.raises(InvalidStatus) as refused:
            asyncio.run(handshake(csms, "cp1", "ocpp2.0.1", password))
        assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus):  # the right password for another identity
        asyncio.run(handshake(csms, "cp2", "ocpp2.0.1", basic("cp1", "s3cret pass")[6:]))
    with pytest.raises(InvalidStatus) as refused:  # a subprotocol it does not speak
        asyncio.run(handshake(csms, "cp1", "ocpp1.6", "s3cret pass"))
    assert refused.value.response.status_code == 400
    assert [c for c in csms.calls()] == []


@pytest.mark.parametrize("kind", KINDS)
def test_a_restart_keeps_transaction_ids_increasing_and_a_drop_is_seen(kind: str,
                                                                       csms_factory: Callable[..., Csms]) -> None:
    csms = csms_factory(kind, "1.6")
    port, ids = csms.port, []
    for _ in range(2):
        cp = MiniCp(csms)
        for _ in range(2):
            ids.append(cp.call(call16.StartTransaction(connector_id=1, id_tag="t", meter_start=0,
                                                       timestamp=now())).transaction_id)
        csms.drop("cp1")
        assert not csms.connected("cp1")
        cp.close()
        csms.restart()
    assert csms.port == port and ids == [1, 2, 3, 4]
    assert [c["answer"]["transactionId"] for c in csms.calls(action="StartTransaction")] == ids


@pytest.mark.parametrize("kind", KINDS)
def test_a_reconnecting_charge_point_replaces_its_old_link(kind: str, csms_factory: Callable[..., Csms]) -> None:
    csms = csms_factory(kind, "1.6")
    old = MiniCp(csms)
    csms.wait_connected("cp1")
    new = MiniCp(csms)
    csms.wait_connected("cp1", count=2)
    assert csms.call("cp1", "RemoteStartTransaction", {"idTag": "x"}) == {"status": "Accepted"}
    assert (old.cp.remote_starts, new.cp.remote_starts) == ([], ["x"])
    assert csms.connected("cp1")  # the old link's end does not hide the new one
    new.close()
    old.close()
    csms.wait_disconnected("cp1")
    with pytest.raises(CsmsError) as refused:
        csms.call("cp1", "RemoteStartTransaction", {"idTag": "x"})
    assert refused.value.code == "NotConnected"


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
@pytest.mark.parametrize("kind", KINDS)
def test_ocpp_rpc_strict_client_finds_no_violation(kind: str, version: str, csms_factory: Callable[..., Csms]) -> None:
    skip_without_node("rpc")
    csms = csms_factory(kind, version)
    if version == "1.6":
        calls = [["BootNotification", {"chargePointModel": "m", "chargePointVendor": "v"}],
                 ["StartTransaction", {"connectorId": 1, "idTag": "t", "meterStart": 0, "timestamp": now()}],
                 ["StopTransaction", {"transactionId": 1, "meterStop": 5, "timestamp": now(), "idTag": "t"}],
                 ["DataTransfer", {"vendorId": "evnet"}]]
        reset = ("Reset", {"type": "Soft"})
    else:
        token = {"idToken": "t", "type": "Central"}
        calls = [["BootNotification", {"chargingStation": {"model": "m", "vendorName": "v"}, "reason": "PowerUp"}],
                 ["TransactionEvent", {"eventType": "Started", "timestamp": now(), "triggerReason": "RemoteStart",
                                       "seqNo": 0, "transactionInfo": {"transactionId": "a"}, "idToken": token}],
                 ["NotifyReport", {"requestId": 1, "generatedAt": now(), "seqNo": 0}],
                 ["SecurityEventNotification", {"type": "StartupOfTheDevice", "timestamp": now()}]]
        reset = ("Reset", {"type": "Immediate"})
    script = {"url": csms.url, "identity": "cp9", "protocol": f"ocpp{version}", "calls": calls,
              "answers": {"Reset": {"status": "Accepted"}}}
    client = subprocess.Popen(["node", str(NODE_DIR / "client.js"), json.dumps(script)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert client.stdout is not None and client.stdin is not None
    events = []
    for line in client.stdout:
        events.append(json.loads(line))
        if events[-1]["event"] == "done":
            break
    assert csms.call("cp9", *reset) == {"status": "Accepted"}
    client.stdin.close()
    events += [json.loads(line) for line in client.stdout]
    assert client.wait(timeout=10) == 0, events
    assert [e["event"] for e in events] == ["connected", *["result"] * len(calls), "done", "called"]
    assert [c["action"] for c in csms.calls(cp="cp9")] == [c[0] for c in calls]
