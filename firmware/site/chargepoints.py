"""Commands about charge points: a member's own (register, report, faults, lease, acks) and an operator's.

Each handler checks everything, then changes the working copy of the state; a SiteError leaves
the committed state as it was (machine.py). Grants themselves change only in rebalance.py.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from firmware.site.commands import (
    AckGrant,
    ClearFault,
    Register,
    Renew,
    Report,
    ResumeCp,
    SetCpMax,
    SetPriority,
    StopCp,
)
from firmware.site.errors import SiteError
from firmware.site.params import amps
from firmware.site.split import Usage, follow_usage
from firmware.site.state import ChargePoint, SiteState


def known_cp(st: SiteState, cp: str, registered: bool = True) -> ChargePoint:
    rec = st.cps.get(cp)
    if rec is None:
        raise SiteError("unknown_charge_point", f"{cp} is not a charge point of site {st.site}", cp=cp)
    if registered and not rec.registered:
        raise SiteError("not_registered", f"{cp} has not registered with the site yet", cp=cp)
    return rec


def register(st: SiteState, cmd: Register) -> dict[str, Any]:
    rec = known_cp(st, cmd.cp, registered=False)
    fallback = st.budget.allowances[cmd.cp].fallback_da
    if cmd.max_da < fallback:
        raise SiteError("bad_field", f"max_current_a: {amps(cmd.max_da)} A is below the site's fallback "
                                     f"current for {cmd.cp}, {amps(fallback)} A", field="max_current_a")
    st.cps[cmd.cp] = replace(rec, registered=True, location=cmd.location, price_ueur_kwh=cmd.price_ueur_kwh,
                             max_da=cmd.max_da, phases=cmd.phases)
    return {"cp": cmd.cp}


def report(st: SiteState, cmd: Report) -> dict[str, Any]:
    rec = known_cp(st, cmd.cp)
    usage = Usage()
    if st.session_at(cmd.cp) is not None:
        grant = st.budget.allowances[cmd.cp].grant_da
        usage = follow_usage(Usage(rec.usage_cap_da, rec.low_since), grant, cmd.drawn_da, st.now, st.params)
    st.cps[cmd.cp] = replace(rec, plugged=cmd.plugged, drawn_da=cmd.drawn_da, ev_max_da=cmd.ev_max_da,
                             health=cmd.health, fault=cmd.fault or rec.fault,
                             usage_cap_da=usage.cap_da, low_since=usage.low_since)
    return {}


def clear_fault(st: SiteState, cmd: ClearFault) -> dict[str, Any]:
    rec = known_cp(st, cmd.cp)
    if rec.fault is None:
        raise SiteError("no_fault", f"{cmd.cp} has no fault to clear")
    st.cps[cmd.cp] = replace(rec, fault=None)
    return {"cleared": rec.fault}


def renew(st: SiteState, cmd: Renew) -> dict[str, Any]:
    known_cp(st, cmd.cp)
    st.budget.renew(cmd.cp, st.now)
    return {}


def ack_grant(st: SiteState, cmd: AckGrant) -> dict[str, Any]:
    known_cp(st, cmd.cp)
    return {"released": st.budget.ack(cmd.cp, cmd.seq)}


def grant_view(st: SiteState, cp: str) -> dict[str, Any]:
    """What a charge point needs to know after its commands: its grant, the lease and why."""
    a = st.budget.allowances[cp]
    rec = st.cps[cp]
    return {"grant_a": amps(a.grant_da), "grant_seq": a.seq, "lease_ms": st.params.lease_ms,
            "fallback_a": amps(a.fallback_da), "limit_reason": rec.limit_reason, "target_a": amps(rec.target_da)}


def _chosen(st: SiteState, cps: tuple[str, ...] | None) -> list[str]:
    if cps is None:
        return sorted(st.cps)
    return [known_cp(st, cp, registered=False).id for cp in cps]


def stop_cps(st: SiteState, cmd: StopCp) -> dict[str, Any]:
    """OUT_OF_ORDER: a session there is to be stopped by its charge point; its driver's waits end."""
    chosen = _chosen(st, cmd.cps)
    stopping, cancelled = [], []
    for cp in chosen:
        st.cps[cp] = replace(st.cps[cp], available=False)
        session = st.session_at(cp)
        if session is not None:
            if session.stop_requested is None:
                st.sessions[session.id] = replace(session, stop_requested="operator")
            stopping.append(session.id)
        for table in (st.reservations, st.authorizations):
            if cp in table:
                cancelled.append({"cp": cp, "driver": table.pop(cp).driver})
    return {"cps": chosen, "stopping": stopping, "cancelled": cancelled}


def resume_cps(st: SiteState, cmd: ResumeCp) -> dict[str, Any]:
    chosen = _chosen(st, cmd.cps)
    for cp in chosen:
        st.cps[cp] = replace(st.cps[cp], available=True)
    return {"cps": chosen}


def set_cp_max(st: SiteState, cmd: SetCpMax) -> dict[str, Any]:
    """An operator's cap: 6 A (and not below the point's fallback, which it may always draw) up to what it
    registered; None clears it. The split uses the lower of the cap and the registered maximum."""
    rec = known_cp(st, cmd.cp, registered=cmd.cap_da is not None)
    if cmd.cap_da is not None:
        fallback = st.budget.allowances[cmd.cp].fallback_da
        if cmd.cap_da > rec.max_da:
            raise SiteError("bad_field", f"max_current_a: {amps(cmd.cap_da)} A is above {cmd.cp}'s registered "
                                         f"maximum, {amps(rec.max_da)} A", field="max_current_a")
        if cmd.cap_da < fallback:
            raise SiteError("bad_field", f"max_current_a: {amps(cmd.cap_da)} A is below the site's fallback "
                                         f"current for {cmd.cp}, {amps(fallback)} A", field="max_current_a")
    st.cps[cmd.cp] = replace(rec, cap_da=cmd.cap_da)
    return {"cp": cmd.cp, "max_current_a": None if cmd.cap_da is None else amps(cmd.cap_da),
            "registered_max_a": amps(rec.max_da)}


def set_priority(st: SiteState, cmd: SetPriority) -> dict[str, Any]:
    st.cps[cmd.cp] = replace(known_cp(st, cmd.cp, registered=False), priority=cmd.priority)
    return {"cp": cmd.cp, "priority": cmd.priority}
