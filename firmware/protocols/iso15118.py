"""ISO 15118-2 messages (AC, the subset this project uses) as plain data types.

The EV (EVCC) sends requests, the charge point (SECC) answers each with a response.
On the virtual cable's message channel a message travels as a JSON-able dict:
`{"type": "SessionSetupReq", "session_id": "...", ...fields}`; `decode()` turns it back
into a dataclass and rejects anything malformed with a `MessageError` that says what.
Real ISO 15118 uses EXI over TLS on PLC; the message flow and its fields are what matter here.

Flow (SECC view): SessionSetup -> ServiceDiscovery -> PaymentServiceSelection ->
Authorization (repeated while `evse_processing == "Ongoing"`) -> ChargeParameterDiscovery ->
PowerDelivery(Start) -> ChargingStatus ... -> PowerDelivery(Stop) -> SessionStop.
A renegotiation (the SECC answers ChargingStatus with `evse_notification="ReNegotiation"`) is
PowerDelivery(Renegotiate) -> ChargeParameterDiscovery -> PowerDelivery(Start).
A pause is SessionStop(Pause); the EV resumes with SessionSetup carrying the old session id.
"""

from __future__ import annotations

import dataclasses
import math
import reprlib
import typing
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

# ResponseCode values (ISO 15118-2 Table 9, those this project uses).
OK = "OK"
OK_NEW_SESSION = "OK_NewSessionEstablished"
OK_OLD_SESSION = "OK_OldSessionJoined"
FAILED = "FAILED"
FAILED_SEQUENCE = "FAILED_SequenceError"
FAILED_UNKNOWN_SESSION = "FAILED_UnknownSession"
FAILED_PAYMENT = "FAILED_PaymentSelectionInvalid"
FAILED_CHARGE_PARAMETER = "FAILED_WrongChargeParameter"
FAILED_NO_SCHEDULE = "FAILED_TariffSelectionInvalid"

Processing = Literal["Finished", "Ongoing"]
Notification = Literal["None", "StopCharging", "ReNegotiation"]
Progress = Literal["Start", "Stop", "Renegotiate"]
PaymentOption = Literal["ExternalPayment", "Contract"]
EnergyMode = Literal["AC_single_phase_core", "AC_three_phase_core"]


# What a field may hold: every number an EV or a charge point sends (amps, kWh, seconds, an epoch
# timestamp) is far inside these; anything beyond is refused before it is converted (a 401-digit
# integer would overflow `float`). Strings and lists are capped so that a message stays loggable.
MAX_NUMBER = 1e15
MAX_INTEGER = 2**31 - 1
MAX_STRING = 256
MAX_ITEMS = 1024  # ISO 15118-2 allows up to 1024 PMaxScheduleEntries

_show = reprlib.Repr()
_show.maxstring = _show.maxother = 60


class MessageError(ValueError):
    """A dict from the cable that is not a valid message: says which type and which field."""


@dataclass(frozen=True)
class ScheduleEntry:
    """One interval of a charging schedule (SAScheduleTuple/PMaxSchedule, expressed in amps)."""

    start_s: float
    max_current_a: float

    def to_dict(self) -> dict[str, Any]:
        return {"start_s": self.start_s, "max_current_a": self.max_current_a}


@dataclass(frozen=True)
class Message:
    """Common header: the session id (hex string; "" before SessionSetupRes assigns one)."""

    TYPES: ClassVar[dict[str, type[Message]]] = {}
    session_id: str = ""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        Message.TYPES[cls.__name__] = cls

    @property
    def is_request(self) -> bool:
        return type(self).__name__.endswith("Req")

    @classmethod
    def from_dict(cls, data: Any) -> Message:
        """The message in `data`; on a subclass, `data` must hold that type (else `MessageError`)."""
        msg = decode(data)
        if cls is not Message and not isinstance(msg, cls):
            raise MessageError(f"message: got {type(msg).__name__}, expected {cls.__name__}")
        return msg

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": type(self).__name__}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, tuple):
                value = [v.to_dict() if isinstance(v, ScheduleEntry) else v for v in value]
            out[f.name] = value
        return out


# --- requests (EV -> charge point) and responses (charge point -> EV) -----------------------

@dataclass(frozen=True)
class SessionSetupReq(Message):
    evcc_id: str = ""


@dataclass(frozen=True)
class SessionSetupRes(Message):
    response_code: str = OK
    evse_id: str = ""
    timestamp: float = 0.0


@dataclass(frozen=True)
class ServiceDiscoveryReq(Message):
    pass


@dataclass(frozen=True)
class ServiceDiscoveryRes(Message):
    response_code: str = OK
    payment_options: tuple[str, ...] = ("ExternalPayment",)
    energy_modes: tuple[str, ...] = ("AC_three_phase_core",)


@dataclass(frozen=True)
class PaymentServiceSelectionReq(Message):
    payment_option: PaymentOption = "ExternalPayment"


@dataclass(frozen=True)
class PaymentServiceSelectionRes(Message):
    response_code: str = OK


@dataclass(frozen=True)
class AuthorizationReq(Message):
    pass


@dataclass(frozen=True)
class AuthorizationRes(Message):
    response_code: str = OK
    evse_processing: Processing = "Ongoing"


@dataclass(frozen=True)
class ChargeParameterDiscoveryReq(Message):
    """The EV's needs: energy to add, its maximum current, and when it leaves (s from now)."""

    energy_request_kwh: float = 0.0
    max_current_a: float = 0.0
    departure_time_s: float = 0.0
    energy_mode: EnergyMode = "AC_three_phase_core"


@dataclass(frozen=True)
class ChargeParameterDiscoveryRes(Message):
    """The charge point's answer: its maximum current now and a schedule (the profile)."""

    response_code: str = OK
    evse_processing: Processing = "Finished"
    evse_max_current_a: float = 0.0
    schedule_id: int = 1
    schedule: tuple[ScheduleEntry, ...] = ()


@dataclass(frozen=True)
class PowerDeliveryReq(Message):
    charge_progress: Progress = "Start"
    schedule_id: int = 1


@dataclass(frozen=True)
class PowerDeliveryRes(Message):
    response_code: str = OK
    evse_notification: Notification = "None"


@dataclass(frozen=True)
class ChargingStatusReq(Message):
    pass


@dataclass(frozen=True)
class ChargingStatusRes(Message):
    """Sent in the charging loop: the current allowed now, the meter, and what the EV must do next."""

    response_code: str = OK
    evse_max_current_a: float = 0.0
    meter_kwh: float = 0.0
    evse_notification: Notification = "None"
    notification_max_delay_s: float = 0.0


@dataclass(frozen=True)
class SessionStopReq(Message):
    charging_session: Literal["Terminate", "Pause"] = "Terminate"


@dataclass(frozen=True)
class SessionStopRes(Message):
    response_code: str = OK


_HINTS: dict[type, dict[str, Any]] = {}


def _hints(cls: type[Message]) -> dict[str, Any]:
    if cls not in _HINTS:
        _HINTS[cls] = typing.get_type_hints(cls)
    return _HINTS[cls]


def _field_value(name: str, tp: Any, value: Any, where: str) -> Any:
    origin = typing.get_origin(tp)
    if origin is Literal:
        if not isinstance(value, str) or value not in typing.get_args(tp):
            raise MessageError(f"{where}.{name}: got {_show.repr(value)}, expected one of {typing.get_args(tp)}")
        return value
    if origin is tuple:
        if not isinstance(value, list | tuple):
            raise MessageError(f"{where}.{name}: got {_show.repr(value)}, expected a list")
        if len(value) > MAX_ITEMS:
            raise MessageError(f"{where}.{name}: {len(value)} items, at most {MAX_ITEMS}")
        item_tp = typing.get_args(tp)[0]
        if item_tp is ScheduleEntry:
            items = []
            for i, item in enumerate(value):
                if not isinstance(item, dict) or set(item) != {"start_s", "max_current_a"}:
                    raise MessageError(f"{where}.{name}[{i}]: got {_show.repr(item)}, "
                                       f"expected {{start_s, max_current_a}}")
                items.append(ScheduleEntry(_number(item["start_s"], f"{where}.{name}[{i}].start_s"),
                                           _number(item["max_current_a"], f"{where}.{name}[{i}].max_current_a")))
            return tuple(items)
        return tuple(_field_value(f"{name}[{i}]", item_tp, v, where) for i, v in enumerate(value))
    if tp is float:
        return _number(value, f"{where}.{name}")
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int) or not -MAX_INTEGER <= value <= MAX_INTEGER:
            raise MessageError(f"{where}.{name}: got {_show.repr(value)}, expected an integer "
                               f"of at most {MAX_INTEGER} in size")
        return value
    if tp is str:
        if not isinstance(value, str) or len(value) > MAX_STRING:
            raise MessageError(f"{where}.{name}: got {_show.repr(value)}, expected a string "
                               f"of at most {MAX_STRING} characters")
        return value
    raise MessageError(f"{where}.{name}: no rule to decode a {tp!r}")  # a new field type needs one here


def _number(value: Any, where: str) -> float:
    """A finite number within +-MAX_NUMBER; big integers are compared before `float` could overflow."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not -MAX_NUMBER <= value <= MAX_NUMBER \
            or (isinstance(value, float) and not math.isfinite(value)):
        raise MessageError(f"{where}: got {_show.repr(value)}, expected a number within +-{MAX_NUMBER:g}")
    return float(value)


def decode(data: Any) -> Message:
    """The message a dict from the cable holds; `MessageError` if it is not one."""
    if not isinstance(data, dict):
        raise MessageError(f"message: got {type(data).__name__}, expected a dict with a 'type'")
    name = data.get("type")
    cls = Message.TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise MessageError(f"message: unknown type {_show.repr(name)}")
    hints = _hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - known - {"type"}
    if unknown:
        raise MessageError(f"{name}: unknown field(s) {_show.repr(sorted(map(str, unknown)))}")
    kwargs = {k: _field_value(k, hints[k], v, name) for k, v in data.items() if k != "type"}
    return cls(**kwargs)


def response_to(request: Message) -> type[Message]:
    """The response type that answers `request` (SessionSetupReq -> SessionSetupRes)."""
    return Message.TYPES[type(request).__name__[:-3] + "Res"]


__all__ = [
    "AuthorizationReq", "AuthorizationRes", "ChargeParameterDiscoveryReq", "ChargeParameterDiscoveryRes",
    "ChargingStatusReq", "ChargingStatusRes", "Message", "MessageError", "PaymentServiceSelectionReq",
    "PaymentServiceSelectionRes", "PowerDeliveryReq", "PowerDeliveryRes", "ScheduleEntry", "ServiceDiscoveryReq",
    "ServiceDiscoveryRes", "SessionSetupReq", "SessionSetupRes", "SessionStopReq", "SessionStopRes", "decode",
    "response_to",
]
