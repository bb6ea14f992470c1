"""The configuration a CSMS reads and sets: each key's names in 1.6 and 2.0.1, its type, default and rules.

One table (`KEYS`), built once, serves both versions: a 1.6 key (GetConfiguration / ChangeConfiguration)
and its 2.0.1 variable (GetVariables / SetVariables) are one setting with one value, so a charge point
that changes protocol keeps its settings. A key has its 1.6 name; a setting 2.0.1 alone has is named
`Component.Variable` (with `[Instance]` where it has one), which no 1.6 name looks like.

Values arrive from a CSMS as text and are untrusted: each kind parses its text strictly, within a size
cap, and says why it refused (`SettingError.reason`, short enough for a 2.0.1 `reasonCode`).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from firmware.ocpp.events import MEASURANDS as MEASURED

MAX_TEXT = 500  # a 1.6 configuration value's limit on the wire (GetConfiguration.conf)
MEASURANDS = tuple(MEASURED)  # what this charge point measures (events.py)
PHASE_ROTATIONS = ("NotApplicable", "Unknown", "RST", "RTS", "SRT", "STR", "TRS", "TSR")
_INT = re.compile(r"[+-]?[0-9]{1,12}")
_DECIMAL = re.compile(r"[+-]?([0-9]{1,12}(\.[0-9]{0,6})?|\.[0-9]{1,6})")


class SettingError(ValueError):
    """A value a key does not take; `reason` is a 2.0.1 reasonCode (at most 20 characters)."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


def _clip(text: object) -> str:
    return repr(text)[:40]


@dataclass(frozen=True)
class _Range:
    lo: float
    hi: float

    def _within(self, value: Any, integral: bool) -> None:
        number = int if integral else int | float
        if isinstance(value, bool) or not isinstance(value, number) or not math.isfinite(value):
            raise SettingError("InvalidValue", f"not {'an integer' if integral else 'a number'}: {_clip(value)}")
        if not self.lo <= value <= self.hi:
            raise SettingError("ValueOutOfRange", f"{value} is outside {self.lo}..{self.hi}")

    def limits(self) -> dict[str, Any]:
        return {"minLimit": self.lo, "maxLimit": self.hi}


class Integer(_Range):
    data_type = "integer"

    def parse(self, text: str) -> int:
        if not _INT.fullmatch(text.strip()):
            raise SettingError("InvalidValue", f"not an integer: {_clip(text)}")
        return self.check(int(text))

    def check(self, value: Any) -> int:
        self._within(value, True)
        return value

    def render(self, value: int) -> str:
        return str(value)


class Decimal(_Range):
    data_type = "decimal"

    def parse(self, text: str) -> float:
        if not _DECIMAL.fullmatch(text.strip()):
            raise SettingError("InvalidValue", f"not a decimal number: {_clip(text)}")
        return self.check(float(text))

    def check(self, value: Any) -> float:
        self._within(value, False)
        return float(value)

    def render(self, value: float) -> str:
        return f"{value:g}"


@dataclass(frozen=True)
class Boolean:
    data_type = "boolean"

    def parse(self, text: str) -> bool:
        match text.strip().lower():
            case "true":
                return True
            case "false":
                return False
        raise SettingError("InvalidValue", f"not true or false: {_clip(text)}")

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise SettingError("InvalidValue", f"not a boolean: {_clip(value)}")
        return value

    def render(self, value: bool) -> str:
        return "true" if value else "false"

    def limits(self) -> dict[str, Any]:
        return {}


@dataclass(frozen=True)
class Members:
    """A comma-separated list of allowed values (a 1.6 CSL, a 2.0.1 MemberList), each at most once, in order."""

    allowed: tuple[str, ...]
    empty_ok: bool = True
    data_type = "MemberList"

    def parse(self, text: str) -> tuple[str, ...]:
        if len(text) > MAX_TEXT:
            raise SettingError("InvalidValue", f"{len(text)} characters (at most {MAX_TEXT})")
        items = [] if not text.strip() else [item.strip() for item in text.split(",")]
        return self.check(tuple(items))

    def check(self, value: Any) -> tuple[str, ...]:
        if not isinstance(value, tuple | list) or not all(isinstance(v, str) for v in value):
            raise SettingError("InvalidValue", f"not a list of names: {_clip(value)}")
        canonical = {a.lower(): a for a in self.allowed}  # CiString: case-insensitive
        out: list[str] = []
        for item in value:
            name = canonical.get(item.lower())
            if name is None:
                raise SettingError("ValueNotAllowed", f"{_clip(item)} is not one of {','.join(self.allowed)}")
            if name in out:
                raise SettingError("InvalidValue", f"{name} listed twice")
            out.append(name)
        if not out and not self.empty_ok:
            raise SettingError("InvalidValue", "an empty list")
        return tuple(out)

    def render(self, value: tuple[str, ...]) -> str:
        return ",".join(value)

    def limits(self) -> dict[str, Any]:
        return {"valuesList": ",".join(self.allowed)}


@dataclass(frozen=True)
class PhaseRotation:
    """1.6 ConnectorPhaseRotation: `<connector>.<rotation>` per connector (0 = the grid connection)."""

    connectors: int
    data_type = "string"

    def parse(self, text: str) -> tuple[str, ...]:
        if len(text) > MAX_TEXT:
            raise SettingError("InvalidValue", f"{len(text)} characters (at most {MAX_TEXT})")
        return self.check(tuple(item.strip() for item in text.split(",")))

    def check(self, value: Any) -> tuple[str, ...]:
        if not isinstance(value, tuple | list) or not all(isinstance(v, str) for v in value) or not value:
            raise SettingError("InvalidValue", f"not a list of rotations: {_clip(value)}")
        canonical = {r.lower(): r for r in PHASE_ROTATIONS}
        seen: dict[int, str] = {}
        for item in value:
            connector, _, rotation = item.partition(".")
            if not connector.isdigit() or len(connector) > 3 or rotation.lower() not in canonical:
                raise SettingError("InvalidValue", f"not <connector>.<rotation>: {_clip(item)}")
            if int(connector) > self.connectors or int(connector) in seen:
                raise SettingError("ValueOutOfRange", f"connector {connector} unknown or listed twice")
            seen[int(connector)] = canonical[rotation.lower()]
        return tuple(f"{c}.{r}" for c, r in seen.items())

    def render(self, value: tuple[str, ...]) -> str:
        return ",".join(value)

    def limits(self) -> dict[str, Any]:
        return {"maxLimit": MAX_TEXT}


@dataclass(frozen=True)
class Text:
    max_len: int
    data_type = "string"

    def parse(self, text: str) -> str:
        return self.check(text)

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or len(value) > self.max_len or not value.isprintable():
            raise SettingError("InvalidValue", f"not printable text of at most {self.max_len}: {_clip(value)}")
        return value

    def render(self, value: str) -> str:
        return value

    def limits(self) -> dict[str, Any]:
        return {"maxLimit": self.max_len}


Kind = Integer | Decimal | Boolean | Members | PhaseRotation | Text


@dataclass(frozen=True)
class Variable:
    """A 2.0.1 component-variable (names are case-insensitive on the wire; these are the canonical spelling)."""

    component: str
    variable: str
    instance: str | None = None

    @property
    def name(self) -> str:
        """The key's name when 2.0.1 alone has it: `Component.Variable[Instance]`."""
        return f"{self.component}.{self.variable}" + (f"[{self.instance}]" if self.instance else "")


@dataclass(frozen=True)
class Key:
    name: str  # the 1.6 name, or `Variable.name` for a 2.0.1-only setting
    kind: Kind
    default: Any
    readonly: bool = False
    reboot: bool = False  # a change is stored at once and takes effect at the next start
    v16: bool = True  # listed in 1.6 GetConfiguration
    v201: Variable | None = None
    unit: str | None = None


def _k(name: str, kind: Kind, default: Any, v201: tuple[str, ...] | None = None, **flags: Any) -> Key:
    return Key(name, kind, default, v201=Variable(*v201) if v201 else None, **flags)


def _v201(component: str, variable: str, kind: Kind, default: Any, instance: str | None = None,
          **flags: Any) -> Key:
    var = Variable(component, variable, instance)
    return Key(var.name, kind, default, v16=False, v201=var, **flags)


SECONDS = {"unit": "s"}
_MEASURED = Members(MEASURANDS)
_ALWAYS = {"readonly": True}

KEYS: tuple[Key, ...] = (
    # 1.6 Core (its required keys, and the optional ones the core acts on)
    # A remote start is authorized by the CSMS that asks for it: no Authorize first (1.6 lets the point choose R).
    _k("AuthorizeRemoteTxRequests", Boolean(), False, ("AuthCtrlr", "AuthorizeRemoteStart"), **_ALWAYS),
    _k("ClockAlignedDataInterval", Integer(0, 86400), 0, ("AlignedDataCtrlr", "Interval"), **SECONDS),
    _k("ConnectionTimeOut", Integer(1, 3600), 120, ("TxCtrlr", "EVConnectionTimeOut"), **SECONDS),
    _k("ConnectorPhaseRotation", PhaseRotation(1), ("1.Unknown",)),
    _k("GetConfigurationMaxKeys", Integer(1, 1000), 64, ("DeviceDataCtrlr", "ItemsPerMessage", "GetVariables"),
       **_ALWAYS),
    _k("HeartbeatInterval", Integer(0, 86400), 300, ("OCPPCommCtrlr", "HeartbeatInterval"), **SECONDS),
    _k("LocalAuthorizeOffline", Boolean(), True, ("AuthCtrlr", "LocalAuthorizeOffline")),
    _k("LocalPreAuthorize", Boolean(), False, ("AuthCtrlr", "LocalPreAuthorize")),
    _k("MeterValuesAlignedData", _MEASURED, ("Energy.Active.Import.Register",), ("AlignedDataCtrlr", "Measurands")),
    _k("MeterValuesSampledData", _MEASURED, ("Energy.Active.Import.Register", "Power.Active.Import", "Current.Import"),
       ("SampledDataCtrlr", "TxUpdatedMeasurands")),
    _k("MeterValueSampleInterval", Integer(0, 3600), 60, ("SampledDataCtrlr", "TxUpdatedInterval"), **SECONDS),
    _k("NumberOfConnectors", Integer(1, 1), 1, **_ALWAYS),
    _k("ResetRetries", Integer(0, 10), 1, ("OCPPCommCtrlr", "ResetRetries")),
    _k("StopTransactionOnEVSideDisconnect", Boolean(), True, ("TxCtrlr", "StopTxOnEVSideDisconnect"), **_ALWAYS),
    _k("StopTransactionOnInvalidId", Boolean(), True, ("TxCtrlr", "StopTxOnInvalidId")),
    _k("StopTxnAlignedData", _MEASURED, (), ("AlignedDataCtrlr", "TxEndedMeasurands")),
    _k("StopTxnSampledData", _MEASURED, ("Energy.Active.Import.Register",), ("SampledDataCtrlr", "TxEndedMeasurands")),
    _k("SupportedFeatureProfiles", Members(("Core", "Reservation", "SmartCharging", "RemoteTrigger"), False),
       ("Core", "Reservation", "SmartCharging", "RemoteTrigger"), **_ALWAYS),
    _k("TransactionMessageAttempts", Integer(0, 100), 3, ("OCPPCommCtrlr", "MessageAttempts", "TransactionEvent")),
    _k("TransactionMessageRetryInterval", Integer(0, 86400), 60,
       ("OCPPCommCtrlr", "MessageAttemptInterval", "TransactionEvent"), **SECONDS),
    _k("UnlockConnectorOnEVSideDisconnect", Boolean(), True, ("OCPPCommCtrlr", "UnlockOnEVSideDisconnect"),
       **_ALWAYS),
    # The link sets its ping interval when it connects: stored now, in force after a restart.
    _k("WebSocketPingInterval", Integer(0, 86400), 30, ("OCPPCommCtrlr", "WebSocketPingInterval"), reboot=True,
       **SECONDS),
    # 1.6 Reservation
    _k("ReserveConnectorZeroSupported", Boolean(), False, **_ALWAYS),
    # 1.6 Smart Charging (the profile store's limits) and 2.0.1 SmartChargingCtrlr
    _k("ChargeProfileMaxStackLevel", Integer(0, 1000), 10, ("SmartChargingCtrlr", "ProfileStackLevel"), **_ALWAYS),
    _k("ChargingScheduleAllowedChargingRateUnit", Members(("Current", "Power"), False), ("Current", "Power"),
       **_ALWAYS),
    _k("ChargingScheduleMaxPeriods", Integer(1, 1000), 24, ("SmartChargingCtrlr", "PeriodsPerSchedule"), **_ALWAYS),
    _k("MaxChargingProfilesInstalled", Integer(1, 1000), 20, ("SmartChargingCtrlr", "Entries", "ChargingProfiles"),
       **_ALWAYS),
    _v201("SmartChargingCtrlr", "RateUnit", Members(("A", "W"), False), ("A", "W"), **_ALWAYS),
    _v201("SmartChargingCtrlr", "Enabled", Boolean(), True, **_ALWAYS),
    _v201("SmartChargingCtrlr", "Available", Boolean(), True, **_ALWAYS),
    _v201("SmartChargingCtrlr", "LimitChangeSignificance", Decimal(0, 100), 10.0, unit="Percent"),
    # 2.0.1 only: provisioning, security, transactions, sampled data, reservation
    _v201("DeviceDataCtrlr", "ItemsPerMessage", Integer(1, 1000), 64, "SetVariables", **_ALWAYS),
    _v201("DeviceDataCtrlr", "ItemsPerMessage", Integer(1, 1000), 64, "GetReport", **_ALWAYS),
    _v201("DeviceDataCtrlr", "BytesPerMessage", Integer(1024, 1 << 20), 65536, "GetVariables", **_ALWAYS),
    _v201("DeviceDataCtrlr", "BytesPerMessage", Integer(1024, 1 << 20), 65536, "SetVariables", **_ALWAYS),
    _v201("DeviceDataCtrlr", "BytesPerMessage", Integer(1024, 1 << 20), 65536, "GetReport", **_ALWAYS),
    _v201("OCPPCommCtrlr", "MessageTimeout", Integer(1, 600), 30, "Default", **SECONDS),
    # Read-only where the core does not act on the value (the link's backoff is its own: 1 s doubling to 30 s).
    _v201("OCPPCommCtrlr", "OfflineThreshold", Integer(0, 86400), 60, **SECONDS, readonly=True),
    _v201("OCPPCommCtrlr", "RetryBackOffRepeatTimes", Integer(0, 20), 5, readonly=True),
    _v201("OCPPCommCtrlr", "RetryBackOffRandomRange", Integer(0, 600), 10, **SECONDS, readonly=True),
    _v201("OCPPCommCtrlr", "RetryBackOffWaitMinimum", Integer(1, 3600), 5, **SECONDS, readonly=True),
    _v201("SecurityCtrlr", "Identity", Text(48), "", **_ALWAYS),
    _v201("SecurityCtrlr", "SecurityProfile", Integer(0, 3), 1, **_ALWAYS),
    _v201("SecurityCtrlr", "OrganizationName", Text(50), "evnet", **_ALWAYS),
    # A transaction starts when energy can flow (authorized and plugged in) and ends on unplug or deauthorization.
    _v201("TxCtrlr", "TxStartPoint", Members(("PowerPathClosed",), False), ("PowerPathClosed",), **_ALWAYS),
    _v201("TxCtrlr", "TxStopPoint", Members(("EVConnected", "Authorized"), False), ("EVConnected", "Authorized"),
          **_ALWAYS),
    _v201("SampledDataCtrlr", "TxStartedMeasurands", _MEASURED, ("Energy.Active.Import.Register",)),
    _v201("SampledDataCtrlr", "TxEndedInterval", Integer(0, 3600), 0, **SECONDS, readonly=True),
    _v201("AlignedDataCtrlr", "TxEndedInterval", Integer(0, 86400), 0, **SECONDS, readonly=True),
    _v201("ReservationCtrlr", "Enabled", Boolean(), True, **_ALWAYS),
    _v201("ReservationCtrlr", "Available", Boolean(), True, **_ALWAYS),
)

BY_NAME: dict[str, Key] = {k.name.lower(): k for k in KEYS}  # 1.6 keys are CiString: case-insensitive
BY_VARIABLE: dict[tuple[str, str, str], Key] = {
    (k.v201.component.lower(), k.v201.variable.lower(), (k.v201.instance or "").lower()): k
    for k in KEYS if k.v201 is not None}
COMPONENTS: frozenset[str] = frozenset(c for c, _, _ in BY_VARIABLE)
assert len(BY_NAME) == len(KEYS) and len(BY_VARIABLE) == sum(k.v201 is not None for k in KEYS), "a name twice"
for _key in KEYS:
    _key.kind.check(_key.default)
