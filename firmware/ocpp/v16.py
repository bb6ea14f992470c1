"""OCPP 1.6J's words: the payloads this charge point sends, and what each CSMS request asks (requests.py).

One connector (connectorId 1; 0 is the whole charge point, which for us is the same). An id token longer
than 1.6's 20 characters is cut to 20 on the wire (the site keeps the whole).
"""

from __future__ import annotations

from typing import Any

from firmware.ocpp import requests as r
from firmware.ocpp.events import MEASURANDS, Connector, Sample
from firmware.ocpp.profiles import parse_time
from firmware.ocpp.times import stamp
from firmware.ocpp.transactions import Tx

VERSION = "1.6"
PURPOSES = {"ChargePointMaxProfile": "cp_max", "TxDefaultProfile": "tx_default", "TxProfile": "tx"}
STOP_REASON = {"ev": "Local", "unplugged": "EVDisconnected", "driver": "Local", "operator": "Other",
               "remote": "Remote", "fault": "Other", "local": "Local", "power_loss": "PowerLoss", "other": "Other",
               "cp_lost": "Other", "reset": "SoftReset", "hard_reset": "HardReset"}
TRIGGERS = {"BootNotification": "boot", "Heartbeat": "heartbeat", "StatusNotification": "status",
            "MeterValues": "meter", "DiagnosticsStatusNotification": "diagnostics",
            "FirmwareStatusNotification": "firmware"}


def _tag(token: str) -> str:
    return token[:20]


def _ours(connector: Any) -> bool:
    return connector in (None, 0, 1)


class Dialect16:
    version = VERSION
    tx_start_action = "StartTransaction"

    def __init__(self, vendor: str, model: str, serial: str, firmware: str) -> None:
        self.boot_payload = {"chargePointVendor": vendor[:20], "chargePointModel": model[:20],
                             "chargePointSerialNumber": serial[:25], "firmwareVersion": firmware[:50]}

    # -- what we send ---------------------------------------------------------------------------------

    def boot(self) -> tuple[str, dict[str, Any]]:
        return "BootNotification", dict(self.boot_payload)

    def status(self, connector: Connector, now: float) -> tuple[str, dict[str, Any]]:
        payload: dict[str, Any] = {"connectorId": 1, "status": connector.status, "timestamp": stamp(now),
                                   "errorCode": "OtherError" if connector.status == "Faulted" else "NoError"}
        if connector.fault:
            payload["info"] = connector.fault[:50]
        return "StatusNotification", payload

    def authorize(self, token: str) -> tuple[str, dict[str, Any]]:
        return "Authorize", {"idTag": _tag(token)}

    @staticmethod
    def token_status(result: dict[str, Any]) -> str | None:
        return result.get("idTagInfo", {}).get("status")

    def sampled(self, sample: Sample, measurands: list[str], context: str) -> dict[str, Any]:
        values = [{"value": f"{sample.value(m):.1f}" if m != "Energy.Active.Import.Register"
                   else str(round(sample.energy_wh)), "context": context, "format": "Raw", "measurand": m,
                   "unit": MEASURANDS[m]} for m in measurands if m in MEASURANDS]
        return {"timestamp": stamp(sample.at), "sampledValue": values}

    def tx_start(self, tx: Tx, sample: Sample, measurands: list[str]) -> tuple[str, dict[str, Any]]:
        payload: dict[str, Any] = {"connectorId": 1, "idTag": _tag(tx.token), "meterStart": round(tx.start_wh),
                                   "timestamp": stamp(tx.start_at)}
        if tx.reservation_id is not None:
            payload["reservationId"] = tx.reservation_id
        return "StartTransaction", payload

    def tx_sample(self, tx: Tx, sample: Sample, measurands: list[str],
                  why: str = "periodic") -> tuple[str, dict[str, Any]]:
        # transactionId 0 until the outbox fills in the CSMS's (outbox.py)
        context = {"periodic": "Sample.Periodic", "clock": "Sample.Clock", "trigger": "Trigger"}[why]
        return "MeterValues", {"connectorId": 1, "transactionId": 0,
                               "meterValue": [self.sampled(sample, measurands, context)]}

    def tx_end(self, tx: Tx, sample: Sample, reason: str, measurands: list[str]) -> tuple[str, dict[str, Any]]:
        payload: dict[str, Any] = {"transactionId": 0, "idTag": _tag(tx.token), "meterStop": round(sample.energy_wh),
                                   "timestamp": stamp(sample.at), "reason": STOP_REASON.get(reason, "Other")}
        if measurands:
            payload["transactionData"] = [self.sampled(sample, measurands, "Transaction.End")]
        return "StopTransaction", payload

    def meter_values(self, sample: Sample, tx_id: int | None, measurands: list[str],
                     context: str = "Trigger") -> tuple[str, dict[str, Any]]:
        payload: dict[str, Any] = {"connectorId": 1, "meterValue": [self.sampled(sample, measurands, context)]}
        if tx_id is not None:
            payload["transactionId"] = tx_id
        return "MeterValues", payload

    @staticmethod
    def csms_tx_id(result: dict[str, Any]) -> int | None:
        """StartTransaction's answer: the CSMS's id of the transaction."""
        tx_id = result.get("transactionId")
        return tx_id if isinstance(tx_id, int) and not isinstance(tx_id, bool) else None

    # -- what the CSMS asks ---------------------------------------------------------------------------

    def request(self, action: str, p: dict[str, Any]) -> r.Request | None:
        """The request of a valid payload (rpc.py checked the schema); None: not a request we take."""
        match action:
            case "RemoteStartTransaction":
                return r.RemoteStart(p["idTag"], p.get("chargingProfile"), None, _ours(p.get("connectorId")))
            case "RemoteStopTransaction":
                return r.RemoteStop(str(p["transactionId"]))
            case "ChangeAvailability":
                return r.ChangeAvailability(p["type"] == "Operative", _ours(p["connectorId"]))
            case "Reset":
                return r.Reset(p["type"] == "Hard")
            case "UnlockConnector":
                return r.Unlock(_ours(p["connectorId"]))
            case "ReserveNow":
                return r.Reserve(p["reservationId"], p["idTag"], parse_time(p["expiryDate"]), _ours(p["connectorId"]))
            case "CancelReservation":
                return r.CancelReserve(p["reservationId"])
            case "SetChargingProfile":
                return r.SetProfile(p["csChargingProfiles"], _ours(p["connectorId"]))
            case "ClearChargingProfile":
                purpose = p.get("chargingProfilePurpose")
                return r.ClearProfile(p.get("id"), None if purpose is None else PURPOSES[purpose], p.get("stackLevel"))
            case "GetCompositeSchedule":
                unit = p.get("chargingRateUnit")
                return r.Composite(p["duration"], None if unit is None else unit)
            case "TriggerMessage":
                what = p["requestedMessage"]
                return r.Trigger(TRIGGERS.get(what, what), what in TRIGGERS and _ours(p.get("connectorId")))
            case "GetConfiguration":
                return r.GetConfig(p)
            case "ChangeConfiguration":
                return r.SetConfig(p)
            case "ClearCache":
                return r.Plain({"status": "Accepted"})  # no authorization cache: the site's state is the list
            case "DataTransfer":
                return r.Plain({"status": "UnknownVendorId"})
        return None

    def reply(self, request: r.Request, outcome: str) -> dict[str, Any]:
        """The answer's payload for a decision (`outcome`: an OCPP status word)."""
        match request:
            case r.Unlock():
                return {"status": {"Accepted": "Unlocked", "Rejected": "UnlockFailed"}.get(outcome, outcome)}
            case r.ChangeAvailability() | r.Reserve() | r.RemoteStart() | r.RemoteStop() | r.Reset() \
                    | r.CancelReserve() | r.SetProfile() | r.ClearProfile() | r.Trigger():
                return {"status": outcome}
        raise ValueError(f"no plain reply for {type(request).__name__}")

    @staticmethod
    def profile_purpose(profile: dict[str, Any]) -> str | None:
        return PURPOSES.get(profile.get("chargingProfilePurpose", ""))
