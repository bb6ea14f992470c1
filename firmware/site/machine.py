"""The site state machine that the Paxos layer replicates: pure and deterministic.

No clock, no randomness, no I/O: the same commands in the same order give every replica the
same state and the same results. `apply` decodes the bytes into a typed command once, checks
its sender against the committed state, then runs it on a copy (state.py): the copy becomes
the state only if the command succeeded, so a refused command, or one that trips a bug
(`internal`), changes nothing. Nothing raises out of `apply`.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from firmware.paxos.core.canonical import dumps
from firmware.paxos.core.context import Context
from firmware.site import admission, backoffice, chargepoints, drivers, principals, sessions
from firmware.site import snapshot as snapshots
from firmware.site.commands import (
    AckGrant,
    AckTickets,
    AddPrincipal,
    CancelReservation,
    ChargingLimits,
    Checkpoint,
    ClearFault,
    CloseLost,
    Command,
    Expire,
    ForgetQuiet,
    Register,
    RemoteCancelReservation,
    RemoteReserve,
    RemoteStart,
    RemoteStop,
    RemovePrincipal,
    Renew,
    Report,
    RequestCharge,
    Reserve,
    ResumeCp,
    SetCpMax,
    SetLimit,
    SetPriority,
    StartSession,
    StopCharge,
    StopCp,
    StopSession,
    WhoAmI,
)
from firmware.site.decode import decode
from firmware.site.errors import SiteError
from firmware.site.params import SiteSetup, amps
from firmware.site.rebalance import rebalance
from firmware.site.state import SiteState
from firmware.site.summary import summary
from firmware.site.terms import advance
from firmware.site.view import CpView, view


class SiteMachine:
    """One replica's copy of the site; `apply` is the only way it changes (besides `restore`)."""

    def __init__(self, setup: SiteSetup) -> None:
        self.setup = setup
        self.state = SiteState.genesis(setup)
        self._forgotten: tuple[str, ...] = ()

    def apply(self, command: bytes, ctx: Context) -> bytes:
        """The command's result as canonical JSON: `{"ok": true, ...}` or `{"error": code, "reason": ...}`."""
        self._forgotten = ()
        try:
            return dumps({"ok": True, **self._apply(command, ctx)})
        except SiteError as exc:
            return dumps(exc.result())
        except Exception as exc:  # noqa: BLE001 - a bug must not stall the log: answer, change nothing
            return dumps({"error": "internal", "reason": f"the site machine failed ({type(exc).__name__}); "
                                                         "the command changed nothing"})

    def _apply(self, command: bytes, ctx: Context) -> dict[str, Any]:
        decoded = decode(command)
        role, principal = principals.authenticate(self.state, decoded, ctx)
        st = self.state.copy()
        advance(st, ctx)
        principals.track_client(st, ctx)
        if principal is not None and decoded.signed is not None:
            principals.use_seq(st, principal, decoded.signed.seq)
        by = "" if principal is None else principal.id
        result = _dispatch(st, decoded.command, role, by)
        if ctx.member and ctx.client in st.cps:
            st.cps[ctx.client] = replace(st.cps[ctx.client], heard=st.now)
        rebalance(st)
        result.update(_after(st, decoded.command))
        self.state = st
        if isinstance(decoded.command, ForgetQuiet):
            self._forgotten = tuple(result["clients"])
        return result

    def admit(self, client: str, command: bytes) -> str | None:
        """The admission check of an open request over the committed state (admission.py), for the runner."""
        return admission.admit(self.state, client, command)

    def forgotten(self) -> tuple[str, ...]:
        """The Paxos clients the last command forgot (`forget_quiet`): the Paxos layer drops their
        de-duplication entries too."""
        return self._forgotten

    def snapshot(self) -> bytes:
        return snapshots.encode(self.state)

    def restore(self, blob: bytes) -> None:
        """The state of `blob` (b"": the genesis); SnapshotVersionError for a format this build does not read."""
        self.state = snapshots.decode(blob) if blob else SiteState.genesis(self.setup)

    def summary(self) -> dict[str, Any]:
        return summary(self.state)

    def view(self, cp: str) -> CpView:
        """What charge point `cp`'s bridge must know of the committed state (view.py); KeyError for another id."""
        return view(self.state, cp)


def _dispatch(st: SiteState, cmd: Command, role: str, by: str) -> dict[str, Any]:
    match cmd:
        case Register():
            return chargepoints.register(st, cmd)
        case Report():
            return chargepoints.report(st, cmd)
        case ClearFault():
            return chargepoints.clear_fault(st, cmd)
        case Renew():
            return chargepoints.renew(st, cmd)
        case AckGrant():
            return chargepoints.ack_grant(st, cmd)
        case StartSession():
            return sessions.start(st, cmd)
        case Checkpoint():
            return sessions.checkpoint(st, cmd)
        case StopSession():
            return sessions.stop(st, cmd)
        case CloseLost():
            return sessions.close_lost(st, cmd)
        case Expire():
            return drivers.expire(st, cmd)
        case ForgetQuiet():
            return principals.forget_quiet(st, cmd)
        case RemoteStart():
            return backoffice.remote_start(st, cmd)
        case RemoteStop():
            return backoffice.remote_stop(st, cmd)
        case RemoteReserve():
            return backoffice.remote_reserve(st, cmd)
        case RemoteCancelReservation():
            return backoffice.remote_cancel_reservation(st, cmd)
        case ChargingLimits():
            return backoffice.charging_limits(st, cmd)
        case RequestCharge():
            return drivers.request_charge(st, cmd, by)
        case Reserve():
            return drivers.reserve(st, cmd, by)
        case CancelReservation():
            return drivers.cancel_reservation(st, cmd, by)
        case StopCharge():
            return drivers.stop_charge(st, cmd, by)
        case StopCp():
            return chargepoints.stop_cps(st, cmd)
        case ResumeCp():
            return chargepoints.resume_cps(st, cmd)
        case SetLimit():
            st.budget.set_limit(cmd.limit_da)
            return {"limit_a": amps(cmd.limit_da)}
        case SetPriority():
            return chargepoints.set_priority(st, cmd)
        case SetCpMax():
            return chargepoints.set_cp_max(st, cmd)
        case AddPrincipal():
            return principals.add(st, cmd, role)
        case RemovePrincipal():
            return principals.remove(st, cmd, role)
        case AckTickets():
            return sessions.ack_tickets(st, cmd)
        case WhoAmI():
            return principals.whoami(st, by)
    raise AssertionError(f"no handler for {type(cmd).__name__}")


def _after(st: SiteState, cmd: Command) -> dict[str, Any]:
    """Result fields that depend on the split made after the command."""
    match cmd:
        case Register() | Report() | Renew() | AckGrant() | ChargingLimits():
            return chargepoints.grant_view(st, cmd.cp)
        case SetLimit():
            return {"in_force_a": amps(st.budget.in_force(st.now))}
    return {}
