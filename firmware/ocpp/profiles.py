"""A charging profile as a CSMS sends it (OCPP 1.6 `csChargingProfiles`, 2.0.1 `chargingProfile`), decoded once.

Both versions decode to one `ChargingProfile`, every field checked: a profile the store holds is one
whose numbers are in range, so evaluating it later cannot fail. Anything else is a `ProfileError`
(a ValueError) with a one-line reason for the CSMS's answer and the log, never another exception.
Times on the wire are RFC 3339; inside they are unix seconds.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, Literal

Purpose = Literal["cp_max", "tx_default", "tx"]
Kind = Literal["Absolute", "Recurring", "Relative"]
Recurrency = Literal["Daily", "Weekly"]
Unit = Literal["A", "W"]
Version = Literal["1.6", "2.0.1"]

PURPOSES_V16: dict[str, Purpose] = {"ChargePointMaxProfile": "cp_max", "TxDefaultProfile": "tx_default",
                                    "TxProfile": "tx"}
PURPOSES_V201: dict[str, Purpose] = {"ChargingStationMaxProfile": "cp_max", "TxDefaultProfile": "tx_default",
                                     "TxProfile": "tx"}
KINDS: tuple[Kind, ...] = ("Absolute", "Recurring", "Relative")
RECURRENCIES: tuple[Recurrency, ...] = ("Daily", "Weekly")
UNITS: tuple[Unit, ...] = ("A", "W")

MAX_INT = 2**31 - 1          # OCPP integers are 32-bit signed
MAX_LIMIT = 10_000_000.0     # 10 MW or 10 MA: anything above is not a charge point's number
MAX_TX_ID = 36               # 2.0.1 transactionId maxLength
MAX_PHASES = 3
MIN_TIME = 0.0               # 1970
MAX_TIME = 253402300799.0    # 9999-12-31T23:59:59Z
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})?")


class ProfileError(ValueError):
    """A charging profile we do not take; `reason` is one line for the CSMS and the log."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Period:
    """From `start_s` after the schedule's start, at most `limit` (in the profile's unit) on `phases` phases."""

    start_s: int
    limit: float
    phases: int | None = None


@dataclass(frozen=True)
class ChargingProfile:
    id: int
    stack_level: int
    purpose: Purpose
    kind: Kind
    recurrency: Recurrency | None
    valid_from: float | None
    valid_to: float | None
    transaction_id: str | None
    start: float | None
    duration_s: float | None
    unit: Unit
    periods: tuple[Period, ...]
    min_rate: float | None
    raw: dict[str, Any]
    version: Version = "1.6"


def parse_time(text: Any, name: str = "time") -> float:
    """An RFC 3339 date-time to unix seconds; a time without an offset is taken as UTC."""
    if not isinstance(text, str) or len(text) > 40 or not _RFC3339.fullmatch(text):
        raise ProfileError(f"{name}: expected an RFC 3339 date-time, got {_shown(text)}")
    head, dot, rest = text.upper().partition(".")
    if dot:  # Python takes at most 6 fractional digits
        digits = re.match(r"\d+", rest)
        assert digits is not None
        head = f"{head}.{digits.group()[:6]}{rest[digits.end():]}"
    try:
        when = datetime.fromisoformat(head)
    except ValueError as e:
        raise ProfileError(f"{name}: {e}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        seconds = when.timestamp()
    except (OverflowError, ValueError, OSError) as e:
        raise ProfileError(f"{name}: {e}") from None
    if not MIN_TIME <= seconds <= MAX_TIME:
        raise ProfileError(f"{name}: {text} is out of range")
    return seconds


def format_time(seconds: float) -> str:
    """Unix seconds to the RFC 3339 UTC form OCPP sends (whole seconds)."""
    return datetime.fromtimestamp(int(seconds), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_v16(obj: Any, *, max_periods: int = 24) -> ChargingProfile:
    """A 1.6 `csChargingProfiles` object (SetChargingProfile.req, RemoteStartTransaction.req)."""
    f = _Fields(obj, "csChargingProfiles")
    purpose = _enum(f.take("chargingProfilePurpose"), PURPOSES_V16, "chargingProfilePurpose")
    tx = f.take("transactionId", required=False)
    profile = _common(f, purpose, version="1.6",
                      transaction_id=None if tx is None else str(_int(tx, "transactionId")))
    schedule = _Fields(f.take("chargingSchedule"), "chargingSchedule")
    f.done()
    return replace(_with_schedule(profile, schedule, max_periods), raw=_copy(obj))


def from_v201(obj: Any, *, max_periods: int = 24) -> ChargingProfile:
    """A 2.0.1 `chargingProfile` (SetChargingProfileRequest, RequestStartTransactionRequest)."""
    f = _Fields(obj, "chargingProfile", extra=("customData",))
    purpose_text = f.take("chargingProfilePurpose")
    if purpose_text == "ChargingStationExternalConstraints":
        raise ProfileError("chargingProfilePurpose: ChargingStationExternalConstraints is set by the station, "
                           "not by a CSMS")
    purpose = _enum(purpose_text, PURPOSES_V201, "chargingProfilePurpose")
    tx = f.take("transactionId", required=False)
    if tx is not None and (not isinstance(tx, str) or not 0 < len(tx) <= MAX_TX_ID):
        raise ProfileError(f"transactionId: expected a string of 1 to {MAX_TX_ID} characters, got {_shown(tx)}")
    profile = _common(f, purpose, version="2.0.1", transaction_id=tx, id_key="id")
    schedules = f.take("chargingSchedule")
    f.done()
    if not isinstance(schedules, list) or not schedules:
        raise ProfileError(f"chargingSchedule: expected a list of one schedule, got {_shown(schedules)}")
    if len(schedules) > 1:
        raise ProfileError(f"chargingSchedule: {len(schedules)} schedules; only one per profile is supported")
    schedule = _Fields(schedules[0], "chargingSchedule", extra=("customData", "salesTariff"))
    _int(schedule.take("id"), "chargingSchedule.id")
    given = schedule.obj.get("startSchedule") is not None
    if profile.kind != "Relative" and not given:  # K01.FR.40
        raise ProfileError(f"chargingSchedule.startSchedule: required for an {profile.kind} profile")
    if profile.kind == "Relative" and given:  # K01.FR.41
        raise ProfileError("chargingSchedule.startSchedule: not for a Relative profile")
    return replace(_with_schedule(profile, schedule, max_periods), raw=_copy(obj))


def _common(f: _Fields, purpose: Purpose, *, version: Version, transaction_id: str | None,
            id_key: str = "chargingProfileId") -> ChargingProfile:
    kind = _enum(f.take("chargingProfileKind"), {k: k for k in KINDS}, "chargingProfileKind")
    recurrency_text = f.take("recurrencyKind", required=False)
    recurrency = None if recurrency_text is None else _enum(recurrency_text, {r: r for r in RECURRENCIES},
                                                             "recurrencyKind")
    if kind == "Recurring" and recurrency is None:
        raise ProfileError("recurrencyKind: required for a Recurring profile")
    if kind != "Recurring" and recurrency is not None:
        raise ProfileError(f"recurrencyKind: only for a Recurring profile, not {kind}")
    if transaction_id is not None and purpose != "tx":
        raise ProfileError("transactionId: only a TxProfile names a transaction")
    if purpose == "cp_max" and kind == "Relative":  # 2.0.1 K01.FR.38; 1.6 has no transaction for it either
        raise ProfileError("chargingProfileKind: a charge point's maximum cannot be Relative")
    valid_from = _opt_time(f.take("validFrom", required=False), "validFrom")
    valid_to = _opt_time(f.take("validTo", required=False), "validTo")
    if valid_from is not None and valid_to is not None and valid_to <= valid_from:
        raise ProfileError("validTo: not after validFrom")
    return ChargingProfile(
        id=_int(f.take(id_key), id_key), stack_level=_int(f.take("stackLevel"), "stackLevel"),
        purpose=purpose, kind=kind, recurrency=recurrency, valid_from=valid_from, valid_to=valid_to,
        transaction_id=transaction_id, start=None, duration_s=None, unit="A", periods=(), min_rate=None,
        raw={}, version=version)


def _with_schedule(profile: ChargingProfile, s: _Fields, max_periods: int) -> ChargingProfile:
    start = _opt_time(s.take("startSchedule", required=False), "chargingSchedule.startSchedule")
    duration = s.take("duration", required=False)
    duration_s = None if duration is None else float(_int(duration, "chargingSchedule.duration"))
    unit = _enum(s.take("chargingRateUnit"), {u: u for u in UNITS}, "chargingSchedule.chargingRateUnit")
    min_rate = s.take("minChargingRate", required=False)
    periods_obj = s.take("chargingSchedulePeriod")
    s.done()
    if not isinstance(periods_obj, list) or not periods_obj:
        raise ProfileError(f"chargingSchedulePeriod: expected a non-empty list, got {_shown(periods_obj)}")
    if len(periods_obj) > max_periods:
        raise ProfileError(f"chargingSchedulePeriod: {len(periods_obj)} periods, at most {max_periods}")
    periods = tuple(_period(p, i) for i, p in enumerate(periods_obj))
    if periods[0].start_s != 0:
        raise ProfileError("chargingSchedulePeriod: the first period must start at 0")
    if any(b.start_s <= a.start_s for a, b in zip(periods, periods[1:], strict=False)):
        raise ProfileError("chargingSchedulePeriod: startPeriod must increase")
    if profile.kind == "Recurring" and start is None:
        raise ProfileError("chargingSchedule.startSchedule: required for a Recurring profile")
    if profile.kind == "Absolute" and start is None:
        start = profile.valid_from
    return replace(profile, start=start, duration_s=duration_s, unit=unit, periods=periods,
                   min_rate=None if min_rate is None else _number(min_rate, "minChargingRate"))


def _period(obj: Any, i: int) -> Period:
    name = f"chargingSchedulePeriod[{i}]"
    f = _Fields(obj, name, extra=("customData", "phaseToUse"))
    start = _int(f.take("startPeriod"), f"{name}.startPeriod")
    limit = _number(f.take("limit"), f"{name}.limit")
    phases_obj = f.take("numberPhases", required=False)
    f.done()
    phases = None if phases_obj is None else _int(phases_obj, f"{name}.numberPhases")
    if phases is not None and not 1 <= phases <= MAX_PHASES:
        raise ProfileError(f"{name}.numberPhases: {phases} is not 1 to {MAX_PHASES}")
    return Period(start, limit, phases)


class _Fields:
    """The keys of one JSON object, taken one by one; `done` refuses any left over (the schemas allow none)."""

    def __init__(self, obj: Any, name: str, extra: tuple[str, ...] = ()) -> None:
        if not isinstance(obj, dict):
            raise ProfileError(f"{name}: expected an object, got {_shown(obj)}")
        self.obj: dict[str, Any] = obj
        self.name = name
        self.left = set(obj) - set(extra)

    def take(self, key: str, *, required: bool = True) -> Any:
        self.left.discard(key)
        value = self.obj.get(key)
        if value is None and required:
            raise ProfileError(f"{key}: missing in {self.name}")
        return value

    def done(self) -> None:
        if self.left:
            raise ProfileError(f"{self.name}: unknown field {_shown(sorted(map(str, self.left))[0])}")


def _int(value: Any, name: str) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_INT:
        raise ProfileError(f"{name}: expected an integer 0 to {MAX_INT}, got {_shown(value)}")
    return value


def _number(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ProfileError(f"{name}: expected a number, got {_shown(value)}")
    if isinstance(value, int) and not 0 <= value <= MAX_LIMIT:  # before float(): a huge int overflows
        raise ProfileError(f"{name}: {_shown(value)} is not 0 to {MAX_LIMIT:g}")
    number = float(value)
    if not (math.isfinite(number) and 0 <= number <= MAX_LIMIT):
        raise ProfileError(f"{name}: {_shown(value)} is not 0 to {MAX_LIMIT:g}")
    return number


def _enum(value: Any, table: dict[str, Any], name: str) -> Any:
    if not isinstance(value, str) or value not in table:
        raise ProfileError(f"{name}: expected one of {', '.join(table)}, got {_shown(value)}")
    return table[value]


def _opt_time(value: Any, name: str) -> float | None:
    return None if value is None else parse_time(value, name)


def _copy(obj: dict[str, Any]) -> dict[str, Any]:
    """The wire JSON, ours to keep (the caller's dict may change) and sure to serialise when persisted."""
    try:
        copied: dict[str, Any] = json.loads(json.dumps(obj, allow_nan=False))
    except (TypeError, ValueError, RecursionError) as e:
        raise ProfileError(f"not plain JSON: {_shown(str(e))}") from None
    return copied


def _shown(value: Any) -> str:
    """A short picture of a bad value for the reason, safe for any value (a huge int, a deep list)."""
    match value:
        case bool() | None:
            return repr(value)
        case int() if abs(value) >= 10**15:
            return "a huge integer"
        case int() | float():
            return repr(value)
        case str():
            return repr(value) if len(value) <= 40 else repr(value[:37]) + "..."
        case list():
            return "a list"
        case dict():
            return "an object"
        case _:
            return type(value).__name__
