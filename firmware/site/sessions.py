"""Sessions and their tickets: start, checkpoint, stop, the site's close of a lost charge point, Central's ack.

Exactly one ticket per session: a session leaves the open table in the same command that makes its
ticket, and a later stop (or close) of it finds the ticket (or, once Central took it, the id among
the recently closed) and is refused with `ticket_exists`. A ticket is the metered energy (last
reading - first) times the price at the start, rounded to the cent (half up).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from firmware.site.chargepoints import known_cp
from firmware.site.commands import CP_LOST, DRIVER, AckTickets, Checkpoint, CloseLost, StartSession, StopSession
from firmware.site.errors import SiteError
from firmware.site.params import MAX_RECENT_CLOSED, MAX_TICKETS
from firmware.site.state import Session, SiteState, Ticket, Totals


def cost_cents(energy_wh: int, price_ueur_kwh: int) -> int:
    """Wh x micro-euros per kWh = nano-euros; to cents, half up."""
    return (energy_wh * price_ueur_kwh + 5_000_000) // 10_000_000


def ticket_json(t: Ticket) -> dict[str, Any]:
    return {"session": t.session, "cp": t.cp, "driver": t.driver, "start_ms": t.start, "end_ms": t.end,
            "energy_wh": t.energy_wh, "kwh": t.energy_wh / 1000, "cost_cents": t.cost_cents,
            "eur": t.cost_cents / 100, "reason": t.reason}


def start(st: SiteState, cmd: StartSession) -> dict[str, Any]:
    """A session starts on the charge point's authorization, or for a known driver (manual start, RFID)."""
    rec = known_cp(st, cmd.cp)
    if (why := rec.out_of_service()) is not None:
        raise SiteError("cp_unavailable", f"{cmd.cp} is {why.replace('_', ' ')}", why=why)
    if (busy := st.session_at(cmd.cp)) is not None:
        raise SiteError("cp_busy", f"{cmd.cp} has session {busy.id} in progress", session=busy.id)
    if cmd.session in st.sessions or cmd.session in st.tickets or cmd.session in st.closed:
        raise SiteError("session_exists", f"session {cmd.session} was already started")
    if len(st.tickets) >= MAX_TICKETS:
        raise SiteError("full", f"{len(st.tickets)} tickets wait for Central to take them", what="tickets")
    auth = st.live_authorization(cmd.cp)
    if auth is not None:
        if cmd.driver not in (None, auth.driver):
            raise SiteError("not_authorized", f"{cmd.cp} waits for another driver's EV")
        driver = auth.driver
    elif cmd.driver is not None:
        principal = st.principals.get(cmd.driver)
        if principal is None or principal.role != DRIVER:
            raise SiteError("not_authorized", f"{cmd.driver} is not a driver of this site")
        reservation = st.live_reservation(cmd.cp)
        if reservation is not None and reservation.driver != cmd.driver:
            raise SiteError("cp_reserved", f"{cmd.cp} is reserved for another driver")
        driver = cmd.driver
    else:
        raise SiteError("not_authorized", f"no driver asked to charge at {cmd.cp} and none was named")
    if (other := st.session_of(driver)) is not None:
        raise SiteError("already_charging", f"{driver} is charging at {other.cp}", session=other.id)
    st.authorizations.pop(cmd.cp, None)
    reservation = st.live_reservation(cmd.cp)
    if reservation is not None and reservation.driver == driver:
        del st.reservations[cmd.cp]
    st.sessions[cmd.session] = Session(cmd.session, cmd.cp, driver, st.now, cmd.meter_wh, cmd.meter_wh, st.now,
                                       rec.price_ueur_kwh)
    st.cps[cmd.cp] = replace(rec, plugged=True)
    return {"session": cmd.session, "driver": driver, "cp": cmd.cp}


def open_session(st: SiteState, cp: str, session: str) -> Session:
    s = st.sessions.get(session)
    if s is None:
        if session in st.tickets:
            raise SiteError("ticket_exists", f"session {session} is closed", ticket=ticket_json(st.tickets[session]))
        if session in st.closed:
            raise SiteError("ticket_exists", f"session {session} is closed and Central took its ticket")
        raise SiteError("unknown_session", f"no session {session}")
    if s.cp != cp:
        raise SiteError("unknown_session", f"session {session} is not at {cp}")
    return s


def _reading(s: Session, meter_wh: int) -> None:
    if meter_wh < s.last_wh:
        raise SiteError("meter_backwards", f"{meter_wh} Wh is below session {s.id}'s last reading {s.last_wh} Wh",
                        last_wh=s.last_wh)


def checkpoint(st: SiteState, cmd: Checkpoint) -> dict[str, Any]:
    s = open_session(st, cmd.cp, cmd.session)
    _reading(s, cmd.meter_wh)
    st.sessions[s.id] = replace(s, last_wh=cmd.meter_wh, last=st.now)
    return {"session": s.id, "energy_wh": cmd.meter_wh - s.first_wh}


def stop(st: SiteState, cmd: StopSession) -> dict[str, Any]:
    s = open_session(st, cmd.cp, cmd.session)
    _reading(s, cmd.meter_wh)
    return {"ticket": ticket_json(close(st, s, cmd.meter_wh, st.now, cmd.reason))}


def close_lost(st: SiteState, cmd: CloseLost) -> dict[str, Any]:
    """A charge point silent for `cp_lost_ms` since its last checkpoint: its session ends there."""
    known_cp(st, cmd.cp, registered=False)  # unknown_charge_point
    s = st.session_at(cmd.cp)
    if s is None:
        raise SiteError("no_session", f"{cmd.cp} has no session in progress")
    silent = silent_ms(st, s)
    if silent < st.params.cp_lost_ms:
        raise SiteError("not_silent", f"{cmd.cp} was heard {silent} ms ago; its session may be closed after "
                                      f"{st.params.cp_lost_ms} ms", silent_ms=silent)
    return {"ticket": ticket_json(close(st, s, s.last_wh, s.last, CP_LOST))}


def silent_ms(st: SiteState, s: Session) -> int:
    """How long session `s`'s charge point has been silent: since the later of its last checkpoint and the last
    command from that charge point (`close_lost` may close it after `cp_lost_ms`)."""
    rec = st.cps.get(s.cp)
    return st.now - (s.last if rec is None or rec.heard is None else max(s.last, rec.heard))


def close(st: SiteState, s: Session, meter_wh: int, end: int, reason: str) -> Ticket:
    energy = meter_wh - s.first_wh
    ticket = Ticket(s.id, s.cp, s.driver, s.start, end, energy, cost_cents(energy, s.price_ueur_kwh), reason)
    del st.sessions[s.id]
    st.tickets[s.id] = ticket
    st.closed = (*st.closed, s.id)[-MAX_RECENT_CLOSED:]
    st.cps[s.cp] = replace(st.cps[s.cp], usage_cap_da=None, low_since=None, csms_session_da=None)  # TxProfile ends
    return ticket


def ack_tickets(st: SiteState, cmd: AckTickets) -> dict[str, Any]:
    """Central took these tickets: they leave the state; counts and totals remain."""
    for session in cmd.sessions:
        if session not in st.tickets:
            raise SiteError("unknown_ticket", f"no ticket waits for session {session}", session=session)
    totals = st.totals
    for session in cmd.sessions:
        t = st.tickets.pop(session)
        totals = Totals(totals.tickets + 1, totals.energy_wh + t.energy_wh, totals.cost_cents + t.cost_cents)
    st.totals = totals
    return {"acked": len(cmd.sessions), "waiting": len(st.tickets),
            "totals": {"tickets": totals.tickets, "energy_wh": totals.energy_wh, "cost_cents": totals.cost_cents}}
