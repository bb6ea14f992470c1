"""The scripted OCPP session, in each version's words: what a CSMS sends, and how to read what it got.

One table per version, so the scripted session (test_scripted_session.py) and the benchmark (bench/ocpp.py)
read the same: `V16` and `V201` build the CSMS's requests and recognise the charge point's messages.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from firmware.ocpp.times import stamp


@dataclass(frozen=True)
class Script:
    version: str

    # -- what the CSMS sends ------------------------------------------------------------------------

    def sample_interval(self, seconds: int) -> tuple[str, dict[str, Any]]:
        if self.version == "1.6":
            return "ChangeConfiguration", {"key": "MeterValueSampleInterval", "value": str(seconds)}
        return "SetVariables", {"setVariableData": [{"component": {"name": "SampledDataCtrlr"},
                                                     "variable": {"name": "TxUpdatedInterval"},
                                                     "attributeValue": str(seconds)}]}

    def get_sample_interval(self) -> tuple[str, dict[str, Any]]:
        if self.version == "1.6":
            return "GetConfiguration", {"key": ["MeterValueSampleInterval"]}
        return "GetVariables", {"getVariableData": [{"component": {"name": "SampledDataCtrlr"},
                                                     "variable": {"name": "TxUpdatedInterval"}}]}

    @staticmethod
    def config_value(answer: dict[str, Any]) -> str:
        if "configurationKey" in answer:
            return answer["configurationKey"][0]["value"]
        return answer["getVariableResult"][0]["attributeValue"]

    @staticmethod
    def config_accepted(answer: dict[str, Any]) -> bool:
        if "status" in answer:
            return answer["status"] == "Accepted"
        return answer["setVariableResult"][0]["attributeStatus"] == "Accepted"

    def remote_start(self, token: str, remote_id: int = 7) -> tuple[str, dict[str, Any]]:
        if self.version == "1.6":
            return "RemoteStartTransaction", {"connectorId": 1, "idTag": token}
        return "RequestStartTransaction", {"idToken": {"idToken": token, "type": "Central"}, "remoteStartId": remote_id,
                                           "evseId": 1}

    def remote_stop(self, tx_id: Any) -> tuple[str, dict[str, Any]]:
        if self.version == "1.6":
            return "RemoteStopTransaction", {"transactionId": tx_id}
        return "RequestStopTransaction", {"transactionId": tx_id}

    def tx_profile(self, tx_id: Any, amps: float, profile_id: int = 1) -> tuple[str, dict[str, Any]]:
        periods = [{"startPeriod": 0, "limit": amps}]
        if self.version == "1.6":
            return "SetChargingProfile", {"connectorId": 1, "csChargingProfiles": {
                "chargingProfileId": profile_id, "transactionId": tx_id, "stackLevel": 0,
                "chargingProfilePurpose": "TxProfile", "chargingProfileKind": "Relative",
                "chargingSchedule": {"chargingRateUnit": "A", "chargingSchedulePeriod": periods}}}
        return "SetChargingProfile", {"evseId": 1, "chargingProfile": {
            "id": profile_id, "transactionId": tx_id, "stackLevel": 0, "chargingProfilePurpose": "TxProfile",
            "chargingProfileKind": "Relative",
            "chargingSchedule": [{"id": 1, "chargingRateUnit": "A", "chargingSchedulePeriod": periods}]}}

    def composite(self, seconds: int) -> tuple[str, dict[str, Any]]:
        if self.version == "1.6":
            return "GetCompositeSchedule", {"connectorId": 1, "duration": seconds, "chargingRateUnit": "A"}
        return "GetCompositeSchedule", {"evseId": 1, "duration": seconds, "chargingRateUnit": "A"}

    @staticmethod
    def composite_limits(answer: dict[str, Any]) -> list[float]:
        schedule = answer.get("chargingSchedule") or answer.get("schedule") or {}
        return [p["limit"] for p in schedule.get("chargingSchedulePeriod", [])]

    def reserve(self, token: str, reservation_id: int, seconds: int) -> tuple[str, dict[str, Any]]:
        expiry = stamp(time.time() + seconds)
        if self.version == "1.6":
            return "ReserveNow", {"connectorId": 1, "expiryDate": expiry, "idTag": token,
                                  "reservationId": reservation_id}
        return "ReserveNow", {"id": reservation_id, "expiryDateTime": expiry, "evseId": 1,
                              "idToken": {"idToken": token, "type": "Central"}}

    def cancel_reservation(self, reservation_id: int) -> tuple[str, dict[str, Any]]:
        return "CancelReservation", {"reservationId": reservation_id}

    def reset(self) -> tuple[str, dict[str, Any]]:
        return "Reset", {"type": "Soft" if self.version == "1.6" else "OnIdle"}

    # -- what the charge point sent -------------------------------------------------------------------

    def status_of(self, call: dict[str, Any]) -> str:
        p = call["payload"]
        return p["status"] if self.version == "1.6" else p["connectorStatus"]

    def is_start(self, call: dict[str, Any]) -> bool:
        if self.version == "1.6":
            return call["action"] == "StartTransaction"
        return call["action"] == "TransactionEvent" and call["payload"]["eventType"] == "Started"

    def is_update(self, call: dict[str, Any]) -> bool:
        if self.version == "1.6":
            return call["action"] == "MeterValues" and "transactionId" in call["payload"]
        return call["action"] == "TransactionEvent" and call["payload"]["eventType"] == "Updated"

    def is_end(self, call: dict[str, Any]) -> bool:
        if self.version == "1.6":
            return call["action"] == "StopTransaction"
        return call["action"] == "TransactionEvent" and call["payload"]["eventType"] == "Ended"

    def tx_action(self, kind: str) -> str:
        return "TransactionEvent" if self.version != "1.6" else {"start": "StartTransaction", "update": "MeterValues",
                                                                  "end": "StopTransaction"}[kind]

    def token_of(self, call: dict[str, Any]) -> str:
        p = call["payload"]
        return p["idTag"] if self.version == "1.6" else p["idToken"]["idToken"]

    def tx_id_of(self, call: dict[str, Any]) -> Any:
        """The transaction's id as the CSMS knows it: 1.6 its answer to StartTransaction, 2.0.1 the station's."""
        if self.version == "1.6":
            return call["answer"]["transactionId"] if call["action"] == "StartTransaction" \
                else call["payload"]["transactionId"]
        return call["payload"]["transactionInfo"]["transactionId"]

    def stop_reason(self, call: dict[str, Any]) -> str | None:
        p = call["payload"]
        return p.get("reason") if self.version == "1.6" else p["transactionInfo"].get("stoppedReason")

    def stamp(self, call: dict[str, Any]) -> str:
        p = call["payload"]
        if self.version == "1.6" and call["action"] == "MeterValues":
            return p["meterValue"][0]["timestamp"]
        return p["timestamp"]

    def reservation_of(self, call: dict[str, Any]) -> int | None:
        return call["payload"].get("reservationId")
