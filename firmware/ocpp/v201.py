"""OCPP 2.0.1's words: the payloads this charging station sends, and what each CSMS request asks (requests.py).

One EVSE (evseId 1) with one connector. Transactions are TransactionEvents (Started, Updated, Ended) whose
transactionId is ours (the session id), numbered by `seqNo` so a CSMS can tell a repeat.
"""

from __future__ import annotations

from typing import Any

from firmware.ocpp import requests as r
from firmware.ocpp.events import MEASURANDS, Connector, Sample
from firmware.ocpp.profiles import parse_time
from firmware.ocpp.times import stamp
from firmware.ocpp.transactions import Tx

VERSION = "2.0.1"
PURPOSES = {"ChargingStationMaxProfile": "cp_max", "TxDefaultProfile": "tx_default", "TxProfile": "tx"}
CONNECTOR_STATUS = {"Available": "Available", "Preparing": "Occupied", "Charging": "Occupied",
                    "SuspendedEV": "Occupied", "SuspendedEVSE": "Occupied", "Finishing": "Occupied",
                    "Reserved": "Reserved", "Unavailable": "Unavailable", "Faulted": "Faulted"}
STOPPED_REASON = {"ev": "StoppedByEV", "unplugged": "EVDisconnected", "driver": "Local", "operator": "Other",
                  "remote": "Remote", "fault": "Other", "local": "Local", "power_loss": "PowerLoss", "other": "Other",
                  "cp_lost": "Other", "reset": "Reboot", "hard_reset": "ImmediateReset"}
END_TRIGGER = {"remote": "RemoteStop", "unplugged": "EVDeparted", "ev": "ChargingStateChanged",
               "driver": "StopAuthorized", "local": "StopAuthorized", "operator": "Deauthorized",
               "reset": "ResetCommand", "hard_reset": "ResetCommand"}
TRIGGERS = {"BootNotification": "boot", "Heartbeat": "heartbeat", "StatusNotification": "status",
            "MeterValues": "meter", "TransactionEvent": "transaction"}


def _ours(evse: Any) -> bool:
    return evse in (None, 0, 1)


def _token(token: str, remote: bool) -> dict[str, Any]:
    return {"idToken": token[:36], "type": "Central" if remote else "Local"}


class Dialect201:
    version = VERSION
    tx_start_action = None  # 2.0.1's transaction ids are ours: nothing to bind

    def __init__(self, vendor: str, model: str, serial: str, firmware: str) -> None:
        self.station = {"vendorName": vendor[:50], "model": model[:20], "serialNumber": serial[:25],
                        "firmwareVersion": firmware[:50]}

    # -- what we send ---------------------------------------------------------------------------------

    def boot(self) -> tuple[str, dict[str, Any]]:
        return "BootNotification", {"chargingStation": dict(self.station), "reason": "PowerUp"}

    def status(self, connector: Connector, now: float) -> tuple[str, dict[str, Any]]:
        return "StatusNotification", {"timestamp": stamp(now), "connectorStatus": CONNECTOR_STATUS[connector.status],
                                      "evseId": 1, "connectorId": 1}

    def authorize(self, token: str) -> tuple[str, dict[str, Any]]:
        return "Authorize", {"idToken": {"idToken": token[:36], "type": "ISO14443"}}

    @staticmethod
    def token_status(result: dict[str, Any]) -> str | None:
        return result.get("idTokenInfo", {}).get("status")

    def sampled(self, sample: Sample, measurands: list[str], context: str) -> dict[str, Any]:
        values = [{"value": round(sample.value(m), 1), "context": context, "measurand": m,
                   "unitOfMeasure": {"unit": MEASURANDS[m]}} for m in measurands if m in MEASURANDS]
        return {"timestamp": stamp(sample.at), "sampledValue": values}

    def _event(self, tx: Tx, kind: str, trigger: str, at: float, meter: list[dict[str, Any]],
               info: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        payload: dict[str, Any] = {"eventType": kind, "timestamp": stamp(at), "triggerReason": trigger,
                                   "seqNo": tx.seq_no, "transactionInfo": {"transactionId": tx.id201, **info}}
        if meter:
            payload["meterValue"] = meter
        return "TransactionEvent", payload

    def tx_start(self, tx: Tx, sample: Sample, measurands: list[str]) -> tuple[str, dict[str, Any]]:
        info: dict[str, Any] = {"chargingState": "Charging"}
        if tx.remote_id is not None:
            info["remoteStartId"] = tx.remote_id
        action, payload = self._event(tx, "Started", "RemoteStart" if tx.remote_id is not None else "Authorized",
                                      tx.start_at, [self.sampled(sample, measurands or list(MEASURANDS)[:1],
                                                                 "Transaction.Begin")], info)
        payload["idToken"] = _token(tx.token, tx.remote_id is not None)
        payload["evse"] = {"id": 1, "connectorId": 1}
        if tx.reservation_id is not None:
            payload["reservationId"] = tx.reservation_id
        return action, payload

    def tx_sample(self, tx: Tx, sample: Sample, measurands: list[str],
                  why: str = "periodic") -> tuple[str, dict[str, Any]]:
        trigger, context = {"periodic": ("MeterValuePeriodic", "Sample.Periodic"),
                            "clock": ("MeterValueClock", "Sample.Clock"), "trigger": ("Trigger", "Trigger")}[why]
        return self._event(tx, "Updated", trigger, sample.at, [self.sampled(sample, measurands, context)], {})

    def tx_end(self, tx: Tx, sample: Sample, reason: str, measurands: list[str]) -> tuple[str, dict[str, Any]]:
        return self._event(tx, "Ended", END_TRIGGER.get(reason, "AbnormalCondition"), sample.at,
                           [self.sampled(sample, measurands or list(MEASURANDS)[:1], "Transaction.End")],
                           {"stoppedReason": STOPPED_REASON.get(reason, "Other"), "chargingState": "Idle"})

    def meter_values(self, sample: Sample, tx_id: int | None, measurands: list[str],
                     context: str = "Trigger") -> tuple[str, dict[str, Any]]:
        return "MeterValues", {"evseId": 1, "meterValue": [self.sampled(sample, measurands, context)]}

    @staticmethod
    def csms_tx_id(result: dict[str, Any]) -> int | None:
        return None

    # -- what the CSMS asks ---------------------------------------------------------------------------

    def request(self, action: str, p: dict[str, Any]) -> r.Request | None:
        """The request of a valid payload (rpc.py checked the schema); None: not a request we take."""
        match action:
            case "RequestStartTransaction":
                return r.RemoteStart(p["idToken"]["idToken"], p.get("chargingProfile"), p["remoteStartId"],
                                     _ours(p.get("evseId")))
            case "RequestStopTransaction":
                return r.RemoteStop(p["transactionId"])
            case "ChangeAvailability":
                return r.ChangeAvailability(p["operationalStatus"] == "Operative", _ours(p.get("evse", {}).get("id")))
            case "Reset":
                return r.Reset(p["type"] == "Immediate")
            case "UnlockConnector":
                return r.Unlock(_ours(p["evseId"]) and p["connectorId"] in (0, 1))
            case "ReserveNow":
                return r.Reserve(p["id"], p["idToken"]["idToken"], parse_time(p["expiryDateTime"]),
                                 _ours(p.get("evseId")))
            case "CancelReservation":
                return r.CancelReserve(p["reservationId"])
            case "SetChargingProfile":
                return r.SetProfile(p["chargingProfile"], _ours(p["evseId"]))
            case "ClearChargingProfile":
                criteria = p.get("chargingProfileCriteria") or {}
                purpose = criteria.get("chargingProfilePurpose")
                return r.ClearProfile(p.get("chargingProfileId"),
                                      None if purpose is None else PURPOSES.get(purpose, "?"),
                                      criteria.get("stackLevel"))
            case "GetCompositeSchedule":
                return r.Composite(p["duration"], p.get("chargingRateUnit"))
            case "TriggerMessage":
                what = p["requestedMessage"]
                return r.Trigger(TRIGGERS.get(what, what), what in TRIGGERS and _ours(p.get("evse", {}).get("id")))
            case "GetVariables":
                return r.GetConfig(p)
            case "SetVariables":
                return r.SetConfig(p)
            case "ClearCache":
                return r.Plain({"status": "Accepted"})
            case "DataTransfer":
                return r.Plain({"status": "UnknownVendorId"})
        return None

    def reply(self, request: r.Request, outcome: str) -> dict[str, Any]:
        match request:
            case r.Unlock():
                return {"status": {"Accepted": "Unlocked", "Rejected": "UnlockFailed",
                                   "NotSupported": "UnlockFailed"}.get(outcome, outcome)}
            case r.ClearProfile():
                return {"status": outcome}
            case r.Trigger():
                return {"status": outcome}
            case r.ChangeAvailability() | r.Reserve() | r.RemoteStart() | r.RemoteStop() | r.Reset() \
                    | r.CancelReserve() | r.SetProfile():
                return {"status": outcome}
        raise ValueError(f"no plain reply for {type(request).__name__}")

    @staticmethod
    def profile_purpose(profile: dict[str, Any]) -> str | None:
        return PURPOSES.get(profile.get("chargingProfilePurpose", ""))
