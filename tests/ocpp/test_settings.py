"""The OCPP configuration store: each key's rules, both versions' payloads (valid against the ocpp package's
schemas), persistence across instances, read-only, unknown and reboot-required keys, a damaged file."""

from __future__ import annotations

import json
import logging
import os
from typing import Any

import pytest

from firmware.ocpp.config_keys import BY_NAME, KEYS, MEASURANDS, Members
from firmware.ocpp.settings import OcppSettings

from .schemas import validate


def var(component: str, variable: str, instance: str | None = None, **extra: Any) -> dict[str, Any]:
    v = {"name": variable} | ({"instance": instance} if instance else {})
    return {"component": {"name": component}, "variable": v, **extra}


def get1(s: OcppSettings, item: dict[str, Any]) -> dict[str, Any]:
    results = s.get_variables([item])
    validate("v201", "GetVariablesResponse", {"getVariableResult": results})
    return results[0]


def set1(s: OcppSettings, item: dict[str, Any]) -> dict[str, Any]:
    results = s.set_variables([item])
    validate("v201", "SetVariablesResponse", {"setVariableResult": results})
    return results[0]


def config(s: OcppSettings, keys: list[str] | None = None) -> dict[str, str]:
    payload = s.get_configuration(keys)
    validate("v16", "GetConfigurationResponse", payload)
    return {e["key"]: e["value"] for e in payload["configurationKey"]}


# --- the table ---------------------------------------------------------------------------------------


def test_the_1_6_core_required_keys_and_the_briefs_mappings_are_all_there() -> None:
    required = ["AuthorizeRemoteTxRequests", "ClockAlignedDataInterval", "ConnectionTimeOut", "ConnectorPhaseRotation",
                "GetConfigurationMaxKeys", "HeartbeatInterval", "LocalAuthorizeOffline", "LocalPreAuthorize",
                "MeterValuesAlignedData", "MeterValuesSampledData", "MeterValueSampleInterval", "NumberOfConnectors",
                "ResetRetries", "StopTransactionOnEVSideDisconnect", "StopTransactionOnInvalidId",
                "StopTxnAlignedData", "StopTxnSampledData", "SupportedFeatureProfiles", "TransactionMessageAttempts",
                "TransactionMessageRetryInterval", "UnlockConnectorOnEVSideDisconnect",
                "ChargeProfileMaxStackLevel", "ChargingScheduleAllowedChargingRateUnit", "ChargingScheduleMaxPeriods",
                "MaxChargingProfilesInstalled"]
    assert set(required) <= set(config(OcppSettings(None)))
    mapped = {k.name: k.v201.name for k in KEYS if k.v16 and k.v201}
    assert mapped["HeartbeatInterval"] == "OCPPCommCtrlr.HeartbeatInterval"
    assert mapped["MeterValueSampleInterval"] == "SampledDataCtrlr.TxUpdatedInterval"
    assert mapped["ConnectionTimeOut"] == "TxCtrlr.EVConnectionTimeOut"
    assert mapped["TransactionMessageAttempts"] == "OCPPCommCtrlr.MessageAttempts[TransactionEvent]"
    assert mapped["GetConfigurationMaxKeys"] == "DeviceDataCtrlr.ItemsPerMessage[GetVariables]"


def test_every_1_6_key_fits_in_one_get_configuration() -> None:
    s = OcppSettings(None)
    assert len(config(s)) == sum(k.v16 for k in KEYS) <= s.value("GetConfigurationMaxKeys")


# --- each rule, through 1.6 ChangeConfiguration ----------------------------------------------------------


@pytest.mark.parametrize("key, good, bad", [
    ("HeartbeatInterval", ["0", "86400", " 60 "], ["-1", "86401", "1.5", "", "ten", "1e3", "9" * 40]),
    ("MeterValueSampleInterval", ["0", "3600"], ["3601", "-5"]),
    ("ConnectionTimeOut", ["1", "3600"], ["0", "3601"]),
    ("ClockAlignedDataInterval", ["900"], ["86401"]),
    ("TransactionMessageAttempts", ["0", "100"], ["101"]),
    ("ResetRetries", ["3"], ["11"]),
    ("LocalPreAuthorize", ["True"], ["maybe"]),
    ("LocalAuthorizeOffline", ["true", "FALSE"], ["yes", "1", ""]),
    ("MeterValuesSampledData", ["Energy.Active.Import.Register,Voltage", "", "current.import"],
     ["Energy.Active.Export.Register", "Voltage,Voltage", "Voltage," + "x" * 600, "Temperature"]),
    ("ConnectorPhaseRotation", ["0.RST,1.RTS", "1.NotApplicable"], ["2.RST", "1.XYZ", "1.RST,1.RTS", "RST", ""]),
])
def test_change_configuration_accepts_values_within_the_rules_and_rejects_the_rest(
        key: str, good: list[str], bad: list[str]) -> None:
    s = OcppSettings(None)
    for text in good:
        assert s.change_configuration(key, text) == "Accepted", text
        assert config(s, [key])[key] == BY_NAME[key.lower()].kind.render(s.value(key))
    before = s.value(key)
    for text in bad:
        assert s.change_configuration(key, text) == "Rejected", text
        assert s.value(key) == before


def test_values_are_typed_for_the_core() -> None:
    s = OcppSettings(None)
    assert s.change_configuration("MeterValuesSampledData", "voltage, Energy.Active.Import.Register") == "Accepted"
    assert s.value("MeterValuesSampledData") == ("Voltage", "Energy.Active.Import.Register")
    assert config(s, ["MeterValuesSampledData"])["MeterValuesSampledData"] == "Voltage,Energy.Active.Import.Register"
    assert s.change_configuration("LocalAuthorizeOffline", "FALSE") == "Accepted"
    assert s.value("LocalAuthorizeOffline") is False
    assert s.value("HeartbeatInterval") == 300 and isinstance(s.value("HeartbeatInterval"), int)
    assert set(Members(MEASURANDS).allowed) == set(MEASURANDS)


def test_changed_lists_each_key_whose_value_changed_once() -> None:
    s = OcppSettings(None)
    assert s.changed() == set()
    s.change_configuration("HeartbeatInterval", "60")
    s.change_configuration("MeterValueSampleInterval", "60")  # the value it had: nothing to re-arm
    s.change_configuration("ConnectionTimeOut", "zero")  # rejected
    set1(s, var("SampledDataCtrlr", "TxUpdatedInterval", attributeValue="15"))
    assert s.changed() == {"HeartbeatInterval", "MeterValueSampleInterval"}
    assert s.changed() == set()


def test_read_only_keys_refuse_changes_in_both_versions() -> None:
    s = OcppSettings(None)
    for key in ("NumberOfConnectors", "SupportedFeatureProfiles", "ChargeProfileMaxStackLevel",
                "StopTransactionOnEVSideDisconnect", "GetConfigurationMaxKeys", "ReserveConnectorZeroSupported"):
        assert s.change_configuration(key, "1") == "Rejected"
        assert config(s, [key]) and next(e for e in s.get_configuration([key])["configurationKey"])["readonly"]
    r = set1(s, var("SmartChargingCtrlr", "Entries", "ChargingProfiles", attributeValue="99"))
    assert (r["attributeStatus"], r["attributeStatusInfo"]["reasonCode"]) == ("Rejected", "ReadOnly")
    assert s.value("MaxChargingProfilesInstalled") == 20 and s.changed() == set()


def test_unknown_keys() -> None:
    s = OcppSettings(None)
    payload = s.get_configuration(["HeartbeatInterval", "NoSuchKey", "NoSuchKey", "x" * 51, "SecurityCtrlr.Identity"])
    validate("v16", "GetConfigurationResponse", payload)
    assert [e["key"] for e in payload["configurationKey"]] == ["HeartbeatInterval"]
    assert payload["unknownKey"] == ["NoSuchKey", "SecurityCtrlr.Identity"]  # 2.0.1-only keys are not 1.6 keys
    assert s.change_configuration("NoSuchKey", "1") == "NotSupported"
    assert s.change_configuration("SecurityCtrlr.Identity", "x") == "NotSupported"
    assert s.change_configuration("heartbeatinterval", "42") == "Accepted"  # CiString: case-insensitive
    assert s.value("HeartbeatInterval") == 42


def test_get_configuration_answers_at_most_get_configuration_max_keys() -> None:
    s = OcppSettings(None, defaults={"GetConfigurationMaxKeys": 2})
    payload = s.get_configuration(["HeartbeatInterval", "Nope", "ResetRetries"])
    validate("v16", "GetConfigurationResponse", payload)
    assert [e["key"] for e in payload["configurationKey"]] == ["HeartbeatInterval"]
    assert payload["unknownKey"] == ["Nope"]


def test_a_reboot_required_key_is_stored_and_reported_but_in_force_only_after_a_restart(tmp_path) -> None:
    path = str(tmp_path / "ocpp.json")
    s = OcppSettings(path)
    assert s.change_configuration("WebSocketPingInterval", "90") == "RebootRequired"
    assert config(s, ["WebSocketPingInterval"]) == {"WebSocketPingInterval": "90"}
    assert s.value("WebSocketPingInterval") == 30 and s.changed() == set()
    assert s.pending_reboot() == {"WebSocketPingInterval"}
    r = set1(s, var("OCPPCommCtrlr", "WebSocketPingInterval", attributeValue="45"))
    assert r["attributeStatus"] == "RebootRequired"
    after = OcppSettings(path)
    assert after.value("WebSocketPingInterval") == 45 and after.pending_reboot() == set()


# --- persistence -------------------------------------------------------------------------------------


def test_changes_survive_a_new_instance_on_the_same_path(tmp_path) -> None:
    path = str(tmp_path / "state" / "ocpp.json")  # its directory is made on the first change
    s = OcppSettings(path)
    assert s.change_configuration("HeartbeatInterval", "120") == "Accepted"
    assert os.path.exists(path)  # on disk when Accepted is returned
    set1(s, var("SampledDataCtrlr", "TxUpdatedMeasurands", attributeValue="Voltage"))
    set1(s, var("OCPPCommCtrlr", "MessageTimeout", "Default", attributeValue="45"))
    again = OcppSettings(path)
    assert again.value("HeartbeatInterval") == 120
    assert again.value("MeterValuesSampledData") == ("Voltage",)
    assert again.value("OCPPCommCtrlr.MessageTimeout[Default]") == 45
    assert again.value("ConnectionTimeOut") == 120  # never set: its default
    assert not os.path.exists(path + ".tmp")


def test_the_file_holds_only_what_a_csms_set_so_a_new_default_applies_to_the_rest(tmp_path) -> None:
    path = str(tmp_path / "ocpp.json")
    OcppSettings(path).change_configuration("ResetRetries", "4")
    assert json.loads((tmp_path / "ocpp.json").read_text()) == {"version": 1, "values": {"ResetRetries": "4"}}
    s = OcppSettings(path, defaults={"HeartbeatInterval": 900, "ResetRetries": 2})
    assert (s.value("HeartbeatInterval"), s.value("ResetRetries")) == (900, 4)


def test_a_value_that_cannot_be_written_is_rejected_and_not_taken(tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="evnet")  # an earlier test may have set evnet's level
    blocker = tmp_path / "file"
    blocker.write_text("")
    s = OcppSettings(str(blocker / "ocpp.json"))  # its directory is a file: every write fails
    assert s.change_configuration("HeartbeatInterval", "60") == "Rejected"
    r = set1(s, var("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="60"))
    assert (r["attributeStatus"], r["attributeStatusInfo"]["reasonCode"]) == ("Rejected", "WriteFailed")
    assert s.value("HeartbeatInterval") == 300 and s.changed() == set()
    assert "event=ocpp.settings_not_saved" in caplog.text


@pytest.mark.parametrize("content", [b"{not json", b"[]", b'{"version": 7, "values": {}}', b"\xff\xfe", b"x" * 300_000])
def test_a_corrupt_file_logs_one_line_reads_as_defaults_and_is_kept_aside(tmp_path, caplog, content) -> None:
    caplog.set_level(logging.INFO, logger="evnet")
    path = tmp_path / "ocpp.json"
    path.write_bytes(content)
    s = OcppSettings(str(path))
    assert s.value("HeartbeatInterval") == 300
    assert [r for r in caplog.records if "event=ocpp.settings_corrupt" in r.getMessage()] != []
    assert len(caplog.records) == 1
    assert (tmp_path / "ocpp.json.corrupt").read_bytes() == content and not path.exists()
    assert s.change_configuration("HeartbeatInterval", "60") == "Accepted"
    assert OcppSettings(str(path)).value("HeartbeatInterval") == 60


def test_a_bad_value_in_the_file_is_dropped_alone(tmp_path, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="evnet")  # an earlier test may have set evnet's level
    path = tmp_path / "ocpp.json"
    path.write_text(json.dumps({"version": 1, "values": {"HeartbeatInterval": "-3", "ResetRetries": "2",
                                                         "ChargeProfileMaxStackLevel": "3", "Gone": "1"}}))
    s = OcppSettings(str(path))  # a read-only key is not a CSMS's to set, even with a valid value
    assert [s.value(k) for k in ("HeartbeatInterval", "ResetRetries", "ChargeProfileMaxStackLevel")] == [300, 2, 10]
    assert caplog.text.count("event=ocpp.settings_value_dropped") == 3


def test_defaults_set_read_only_keys_and_a_bad_one_is_a_clear_error() -> None:
    s = OcppSettings(None, defaults={"SecurityCtrlr.Identity": "cp1", "MaxChargingProfilesInstalled": 8,
                                     "MeterValuesSampledData": "Voltage"})
    assert get1(s, var("SecurityCtrlr", "Identity"))["attributeValue"] == "cp1"
    assert config(s, ["MaxChargingProfilesInstalled"]) == {"MaxChargingProfilesInstalled": "8"}
    assert s.value("MeterValuesSampledData") == ("Voltage",)
    with pytest.raises(ValueError, match="HeartbeatInterval"):
        OcppSettings(None, defaults={"HeartbeatInterval": -1})
    with pytest.raises(ValueError, match="NoSuchKey"):
        OcppSettings(None, defaults={"NoSuchKey": 1})


# --- 2.0.1 --------------------------------------------------------------------------------------------


def test_get_and_set_variables_read_and_write_the_same_setting_as_1_6() -> None:
    s = OcppSettings(None)
    r = set1(s, var("ocppcommctrlr", "heartbeatinterval", attributeValue="77"))  # names are case-insensitive
    assert r == {"component": {"name": "ocppcommctrlr"}, "variable": {"name": "heartbeatinterval"},
                 "attributeType": "Actual", "attributeStatus": "Accepted"}
    assert config(s, ["HeartbeatInterval"]) == {"HeartbeatInterval": "77"}
    s.change_configuration("ConnectionTimeOut", "33")
    assert get1(s, var("TxCtrlr", "EVConnectionTimeOut"))["attributeValue"] == "33"
    assert get1(s, var("SmartChargingCtrlr", "RateUnit"))["attributeValue"] == "A,W"
    assert get1(s, var("SmartChargingCtrlr", "Enabled"))["attributeValue"] == "true"


def test_get_variables_statuses() -> None:
    s = OcppSettings(None)
    cases = [
        (var("OCPPCommCtrlr", "HeartbeatInterval"), "Accepted"),
        (var("NoCtrlr", "HeartbeatInterval"), "UnknownComponent"),
        ({"component": {"name": "OCPPCommCtrlr", "evse": {"id": 1}}, "variable": {"name": "HeartbeatInterval"}},
         "UnknownComponent"),
        (var("OCPPCommCtrlr", "NoVariable"), "UnknownVariable"),
        (var("OCPPCommCtrlr", "MessageAttempts"), "UnknownVariable"),  # it has an instance
        (var("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent"), "Accepted"),
        (var("OCPPCommCtrlr", "HeartbeatInterval", attributeType="MaxSet"), "NotSupportedAttributeType"),
        (var("OCPPCommCtrlr", "HeartbeatInterval", attributeType="Bogus"), "Rejected"),
        ({"component": "OCPPCommCtrlr", "variable": {"name": "HeartbeatInterval"}}, "Rejected"),
    ]
    results = s.get_variables([item for item, _ in cases])
    validate("v201", "GetVariablesResponse", {"getVariableResult": results})
    assert [r["attributeStatus"] for r in results] == [status for _, status in cases]
    assert [("attributeValue" in r) for r in results] == [status == "Accepted" for _, status in cases]


def test_set_variables_applies_each_item_by_its_own_rules() -> None:
    s = OcppSettings(None)
    results = s.set_variables([
        var("OCPPCommCtrlr", "HeartbeatInterval", attributeValue="100"),
        var("SampledDataCtrlr", "TxUpdatedInterval", attributeValue="99999"),
        var("SampledDataCtrlr", "TxUpdatedMeasurands", attributeValue="Power.Factor"),
        var("SmartChargingCtrlr", "LimitChangeSignificance", attributeValue="2.5"),
        var("AuthCtrlr", "AuthorizeRemoteStart", attributeValue="false", attributeType="Target"),
        var("AuthCtrlr", "Nope", attributeValue="false"),
        var("AuthCtrlr", "LocalPreAuthorize"),  # no attributeValue
    ])
    validate("v201", "SetVariablesResponse", {"setVariableResult": results})
    assert [(r["attributeStatus"], r.get("attributeStatusInfo", {}).get("reasonCode")) for r in results] == [
        ("Accepted", None), ("Rejected", "ValueOutOfRange"), ("Rejected", "ValueNotAllowed"), ("Accepted", None),
        ("NotSupportedAttributeType", None), ("UnknownVariable", None), ("Rejected", "InvalidValue")]
    assert s.value("HeartbeatInterval") == 100 and s.value("MeterValueSampleInterval") == 60
    assert s.value("SmartChargingCtrlr.LimitChangeSignificance") == 2.5


def test_items_beyond_items_per_message_are_rejected() -> None:
    s = OcppSettings(None, defaults={"GetConfigurationMaxKeys": 2, "DeviceDataCtrlr.ItemsPerMessage[SetVariables]": 1})
    got = s.get_variables([var("OCPPCommCtrlr", "HeartbeatInterval")] * 3)
    validate("v201", "GetVariablesResponse", {"getVariableResult": got})
    assert [r["attributeStatus"] for r in got] == ["Accepted", "Accepted", "Rejected"]
    assert got[2]["attributeStatusInfo"] == {"reasonCode": "TooManyElements"}
    done = s.set_variables([var("OCPPCommCtrlr", "HeartbeatInterval", attributeValue=v) for v in ("1", "2")])
    assert [r["attributeStatus"] for r in done] == ["Accepted", "Rejected"] and s.value("HeartbeatInterval") == 1


@pytest.mark.parametrize("base", ["FullInventory", "ConfigurationInventory"])
def test_the_base_report_lists_the_variables_and_is_valid_notify_report_data(base: str) -> None:
    s = OcppSettings(None, defaults={"SecurityCtrlr.Identity": "cp1"})
    data = s.report(base)
    validate("v201", "NotifyReportRequest",
             {"requestId": 1, "generatedAt": "2026-01-01T00:00:00Z", "seqNo": 0, "reportData": data})
    names = {(d["component"]["name"], d["variable"]["name"], d["variable"].get("instance")) for d in data}
    assert ("OCPPCommCtrlr", "HeartbeatInterval", None) in names
    assert (("SecurityCtrlr", "Identity", None) in names) == (base == "FullInventory")
    assert all(d["variableAttribute"][0]["mutability"] == "ReadWrite" for d in data) == (base != "FullInventory")
    assert s.report("SummaryInventory") == []


@pytest.mark.parametrize("text, status", [("0", "Accepted"), ("99.5", "Accepted"), (".5", "Accepted"),
                                          ("100.5", "Rejected"), ("-1", "Rejected"), ("nan", "Rejected"),
                                          ("inf", "Rejected"), ("1e1", "Rejected"), ("1_0", "Rejected")])
def test_a_decimal_variable_takes_plain_finite_numbers_in_its_range(text: str, status: str) -> None:
    s = OcppSettings(None)
    result = set1(s, var("SmartChargingCtrlr", "LimitChangeSignificance", attributeValue=text))
    assert result["attributeStatus"] == status
    assert s.value("SmartChargingCtrlr.LimitChangeSignificance") == (float(text) if status == "Accepted" else 10.0)
