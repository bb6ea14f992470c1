"""What a CSMS asks, in one vocabulary for both versions: each dialect (v16.py, v201.py) turns a request's
payload into one of these, the core decides, and the dialect words the answer (`Dialect.reply`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RemoteStart:
    token: str
    profile: dict[str, Any] | None   # a TxProfile for the session it starts (wire JSON), or None
    remote_id: int | None = None     # 2.0.1's remoteStartId
    connector_ok: bool = True        # it names our connector (or none)


@dataclass(frozen=True)
class RemoteStop:
    transaction_id: str              # as the CSMS knows it (1.6: its integer, as text)


@dataclass(frozen=True)
class ChangeAvailability:
    operative: bool
    connector_ok: bool = True


@dataclass(frozen=True)
class Reset:
    immediate: bool                  # 1.6 Hard / 2.0.1 Immediate; else after the session (Soft / OnIdle)


@dataclass(frozen=True)
class Unlock:
    connector_ok: bool = True


@dataclass(frozen=True)
class Reserve:
    reservation_id: int
    token: str
    expires: float                   # unix seconds
    connector_ok: bool = True


@dataclass(frozen=True)
class CancelReserve:
    reservation_id: int


@dataclass(frozen=True)
class SetProfile:
    profile: dict[str, Any]          # wire JSON of the version
    connector_ok: bool = True


@dataclass(frozen=True)
class ClearProfile:
    id: int | None
    purpose: str | None              # "cp_max", "tx_default", "tx"
    stack_level: int | None


@dataclass(frozen=True)
class Composite:
    duration_s: int
    unit: str | None                 # "A", "W" or None (ours: A)


@dataclass(frozen=True)
class Trigger:
    what: str                        # "boot", "heartbeat", "status", "meter", "transaction", or the name not known
    known: bool


@dataclass(frozen=True)
class GetConfig:
    payload: dict[str, Any]


@dataclass(frozen=True)
class SetConfig:
    payload: dict[str, Any]


@dataclass(frozen=True)
class Plain:
    """Answered at once with this payload (ClearCache, DataTransfer, ...)."""

    payload: dict[str, Any]


Request = (RemoteStart | RemoteStop | ChangeAvailability | Reset | Unlock | Reserve | CancelReserve | SetProfile
           | ClearProfile | Composite | Trigger | GetConfig | SetConfig | Plain)
