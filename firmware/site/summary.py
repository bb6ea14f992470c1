"""The committed state as the site shows it (`evnet/{site}/state`): statuses, grants and why, no secrets.

No keys, no signatures and no sequence numbers of principals; drivers appear only by id where
they charge, reserve or wait (as Central shows them). Times are site time (ms).
"""

from __future__ import annotations

from typing import Any

from firmware.site.params import MAX_LIST, amps
from firmware.site.sessions import ticket_json
from firmware.site.state import ChargePoint, SiteState

OUT_OF_SERVICE = {"not_registered": "DISCONNECTED", "faulted": "FAULTED", "out_of_order": "OUT_OF_ORDER"}


def status_of(st: SiteState, rec: ChargePoint) -> str:
    """The charge point states (docs/architecture.md) as far as the site knows them (DISCONNECTED: unregistered)."""
    why = rec.out_of_service()
    if why is not None:
        return OUT_OF_SERVICE[why]
    if st.session_at(rec.id) is not None:
        return "CHARGING"
    if st.live_reservation(rec.id) is not None:
        return "RESERVED"
    return "AVAILABLE"


def _cp(st: SiteState, rec: ChargePoint) -> dict[str, Any]:
    a = st.budget.allowances[rec.id]
    session = st.session_at(rec.id)
    return {"status": status_of(st, rec), "location": rec.location, "price_eur_kwh": rec.price_ueur_kwh / 1e6,
            "max_current_a": amps(rec.max_da), "cap_a": None if rec.cap_da is None else amps(rec.cap_da),
            "phases": rec.phases, "priority": rec.priority,
            "health": rec.health, "fault": rec.fault, "plugged": rec.plugged, "drawn_a": amps(rec.drawn_da),
            "ev_max_a": None if rec.ev_max_da is None else amps(rec.ev_max_da),
            "grant_a": amps(a.grant_da), "grant_seq": a.seq, "target_a": amps(rec.target_da),
            "limit_reason": rec.limit_reason, "fallback_a": amps(a.fallback_da),
            "may_draw_a": amps(st.budget.may_draw(rec.id, st.now)), "until_ms": st.budget.until(rec.id, st.now),
            "lease": "held" if a.lease_held(st.now) else "none",
            "session": None if session is None else session.id,
            "driver": None if session is None else session.driver}


def summary(st: SiteState) -> dict[str, Any]:
    return {
        "site": st.site, "now_ms": st.now,
        "limit_a": amps(st.budget.limit_da), "in_force_a": amps(st.budget.in_force(st.now)),
        "drawing_a": amps(st.budget.drawing(st.now)),
        "charge_points": {cp: _cp(st, rec) for cp, rec in st.cps.items()},
        "reservations": [{"cp": r.cp, "driver": r.driver, "expires_ms": r.expires}
                         for r in st.reservations.values() if r.expires > st.now],
        "waiting": [{"cp": a.cp, "driver": a.driver, "expires_ms": a.expires}
                    for a in st.authorizations.values() if a.expires > st.now],
        "sessions": [{"session": s.id, "cp": s.cp, "driver": s.driver, "start_ms": s.start,
                      "energy_wh": s.last_wh - s.first_wh, "stop_requested": s.stop_requested}
                     for s in st.sessions.values()],
        "tickets_waiting": len(st.tickets),
        # the oldest waiting tickets, as many as one `ack_tickets` takes: Central copies them, then acknowledges
        "tickets": [ticket_json(t) for t in list(st.tickets.values())[:MAX_LIST]],
        "totals": {"tickets": st.totals.tickets, "energy_wh": st.totals.energy_wh,
                   "cost_cents": st.totals.cost_cents},
        "principals": {"drivers": sum(p.role == "driver" for p in st.principals.values()),
                       "operators": sum(p.role == "operator" for p in st.principals.values())},
    }
