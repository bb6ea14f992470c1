"""The site's commands as typed values: what decode.py makes of the bytes and machine.py dispatches on.

Who may send what (`ALLOWED`): "member" is a charge point's own process (ctx.member: the Paxos
layer authenticated it with the site key); "driver" and "operator" are principals of the state
whose requests carry an Ed25519 signature (credentials.py).
"""

from __future__ import annotations

from dataclasses import dataclass

# -- a charge point's own commands (members) ---------------------------------------------------

@dataclass(frozen=True)
class Register:
    cp: str
    location: str
    price_ueur_kwh: int
    max_da: int
    phases: int


@dataclass(frozen=True)
class Report:
    cp: str
    plugged: bool
    drawn_da: int
    ev_max_da: int | None
    health: str
    fault: str | None


@dataclass(frozen=True)
class ClearFault:
    cp: str


@dataclass(frozen=True)
class Renew:
    cp: str


@dataclass(frozen=True)
class AckGrant:
    cp: str
    seq: int


@dataclass(frozen=True)
class StartSession:
    cp: str
    session: str
    meter_wh: int
    driver: str | None


@dataclass(frozen=True)
class Checkpoint:
    cp: str
    session: str
    meter_wh: int


@dataclass(frozen=True)
class StopSession:
    cp: str
    session: str
    meter_wh: int
    reason: str


# -- any member, about the site ----------------------------------------------------------------

@dataclass(frozen=True)
class CloseLost:
    cp: str                   # the silent charge point whose session the site closes


@dataclass(frozen=True)
class Expire:
    pass


@dataclass(frozen=True)
class ForgetQuiet:
    quiet_ms: int


# -- a charge point's back office (OCPP), at that charge point: the member vouches for the CSMS -----

@dataclass(frozen=True)
class RemoteStart:
    """RemoteStartTransaction / RequestStartTransaction: `token` waits here for an EV, never redirected."""

    cp: str
    token: str
    timeout_ms: int | None    # None: the site's authorization_ms (ConnectionTimeOut)


@dataclass(frozen=True)
class RemoteStop:
    """RemoteStopTransaction / RequestStopTransaction of the session at this charge point."""

    cp: str
    session: str


@dataclass(frozen=True)
class RemoteReserve:
    cp: str
    token: str
    duration_ms: int


@dataclass(frozen=True)
class RemoteCancelReservation:
    cp: str


@dataclass(frozen=True)
class ChargingLimits:
    """The charging profiles in force now: this point's maximum, the default cap of its sessions and the running
    session's own cap (None: no profile of that purpose)."""

    cp: str
    max_da: int | None
    default_da: int | None
    session_da: int | None


# -- drivers ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class RequestCharge:
    at: str | None            # None: anywhere


@dataclass(frozen=True)
class Reserve:
    at: str
    duration_ms: int | None


@dataclass(frozen=True)
class CancelReservation:
    pass


@dataclass(frozen=True)
class StopCharge:
    pass


# -- operators (and members, for operators only) ------------------------------------------------

@dataclass(frozen=True)
class StopCp:
    cps: tuple[str, ...] | None  # None: all


@dataclass(frozen=True)
class ResumeCp:
    cps: tuple[str, ...] | None


@dataclass(frozen=True)
class SetLimit:
    limit_da: int


@dataclass(frozen=True)
class SetPriority:
    cp: str
    priority: int


@dataclass(frozen=True)
class SetCpMax:
    """An operator's cap on one charge point's current, kept apart from what it registered (None: no cap)."""

    cp: str
    cap_da: int | None


@dataclass(frozen=True)
class AddPrincipal:
    id: str
    role: str
    key: str


@dataclass(frozen=True)
class RemovePrincipal:
    id: str


@dataclass(frozen=True)
class AckTickets:
    sessions: tuple[str, ...]


@dataclass(frozen=True)
class WhoAmI:
    pass


Command = (Register | Report | ClearFault | Renew | AckGrant | StartSession | Checkpoint | StopSession
           | CloseLost | Expire | ForgetQuiet | RequestCharge | Reserve | CancelReservation | StopCharge
           | RemoteStart | RemoteStop | RemoteReserve | RemoteCancelReservation | ChargingLimits
           | StopCp | ResumeCp | SetLimit | SetPriority | SetCpMax | AddPrincipal | RemovePrincipal | AckTickets
           | WhoAmI)

MEMBER, DRIVER, OPERATOR = "member", "driver", "operator"
ROLES = (DRIVER, OPERATOR)

ALLOWED: dict[type, frozenset[str]] = {
    **{c: frozenset({MEMBER}) for c in (Register, Report, ClearFault, Renew, AckGrant, StartSession,
                                        Checkpoint, StopSession, CloseLost, Expire, ForgetQuiet, RemoteStart,
                                        RemoteStop, RemoteReserve, RemoteCancelReservation, ChargingLimits)},
    **{c: frozenset({DRIVER}) for c in (RequestCharge, Reserve, CancelReservation, StopCharge)},
    **{c: frozenset({OPERATOR}) for c in (SetLimit, SetPriority, SetCpMax, AckTickets)},
    StopCp: frozenset({OPERATOR, MEMBER}),           # a member for its own charge point only (OCPP's
    ResumeCp: frozenset({OPERATOR, MEMBER}),         # ChangeAvailability)
    AddPrincipal: frozenset({OPERATOR, MEMBER}),     # a member adds operators only
    RemovePrincipal: frozenset({OPERATOR, MEMBER}),
    WhoAmI: frozenset({DRIVER, OPERATOR}),
}

# Commands a member sends about its own charge point: `cp` must be its Paxos client id.
OWN_CP = (Register, Report, ClearFault, Renew, AckGrant, StartSession, Checkpoint, StopSession, RemoteStart,
          RemoteStop, RemoteReserve, RemoteCancelReservation, ChargingLimits)

STOP_REASONS = ("ev", "unplugged", "driver", "operator", "remote", "fault", "local", "power_loss", "other")
CP_LOST = "cp_lost"  # the reason of a session the site closed itself
