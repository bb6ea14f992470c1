"""A driver's requests: charge (here or anywhere, with a redirect), reserve, cancel, stop; and their expiry.

A request leaves an authorization at the charge point, waiting `authorization_ms` for the EV (the
charge point's process starts the session when its EV is there). A chosen point that cannot take
the driver redirects to the first free one (ids in order) and says why.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from firmware.site.chargepoints import known_cp
from firmware.site.commands import CancelReservation, Expire, RequestCharge, Reserve, StopCharge
from firmware.site.errors import SiteError
from firmware.site.state import Authorization, Reservation, SiteState

WHY = {"not_registered": "has not registered", "faulted": "is faulted", "out_of_order": "is out of order",
       "not_heard": "is not heard from (no lease)", "busy": "is in use", "reserved": "is reserved"}


def unavailable(st: SiteState, cp: str, driver: str, *, empty: bool = False) -> str | None:
    """Why `cp` cannot take `driver` now (a key of WHY), or None. `empty`: an EV plugged in also counts."""
    rec = st.cps[cp]
    auth, reservation = st.live_authorization(cp), st.live_reservation(cp)
    if (why := rec.out_of_service()) is not None:
        return why
    if not st.budget.lease_held(cp, st.now):
        return "not_heard"
    if st.session_at(cp) is not None or (auth is not None and auth.driver != driver):
        return "busy"
    if empty and rec.plugged and not (auth is not None and auth.driver == driver):
        return "busy"
    if reservation is not None and reservation.driver != driver:
        return "reserved"
    return None


def _first_free(st: SiteState, driver: str) -> str | None:
    return next((cp for cp in sorted(st.cps) if unavailable(st, cp, driver, empty=True) is None), None)


def _not_charging(st: SiteState, driver: str) -> None:
    if (s := st.session_of(driver)) is not None:
        raise SiteError("already_charging", f"{driver} is charging at {s.cp}", session=s.id)


def request_charge(st: SiteState, cmd: RequestCharge, driver: str) -> dict[str, Any]:
    _not_charging(st, driver)
    redirect: dict[str, Any] = {}
    if cmd.at is None:
        reservation = st.reservation_of(driver)
        if reservation is not None and unavailable(st, reservation.cp, driver) is None:
            cp: str | None = reservation.cp
        else:
            cp = _first_free(st, driver)
        if cp is None:
            raise SiteError("no_free_charge_point", "no charge point is free")
    else:
        known_cp(st, cmd.at, registered=False)
        why = unavailable(st, cmd.at, driver)
        cp = cmd.at
        if why is not None and st.cps[cmd.at].plugged and st.session_at(cmd.at) is None:
            # an EV waits there with no session: most likely the driver's own, which cannot go elsewhere (and
            # an authorization sent elsewhere would wait for whichever EV plugs in there next)
            raise SiteError("no_free_charge_point", f"{cmd.at} {WHY[why]} and an EV waits there", why=why)
        if why is not None:
            cp = _first_free(st, driver)
            if cp is None:
                raise SiteError("no_free_charge_point", f"{cmd.at} {WHY[why]} and no other charge point is free",
                                why=why)
            redirect = {"redirected_from": cmd.at, "redirect_reason": why}
    if (old := st.authorization_of(driver)) is not None:
        del st.authorizations[old.cp]
    st.authorizations[cp] = Authorization(cp, driver, st.now + st.params.authorization_ms, bool(redirect))
    return {"cp": cp, "expires_in_ms": st.params.authorization_ms, **redirect}


def reserve(st: SiteState, cmd: Reserve, driver: str, max_ms: int | None = None) -> dict[str, Any]:
    """`max_ms`: the longest reservation allowed (None: the site's `max_reservation_ms`, for drivers)."""
    _not_charging(st, driver)
    if (held := st.reservation_of(driver)) is not None:
        raise SiteError("already_reserved", f"{driver} holds a reservation at {held.cp}", cp=held.cp)
    known_cp(st, cmd.at, registered=False)
    why = unavailable(st, cmd.at, driver, empty=True)
    if why == "busy":
        raise SiteError("cp_busy", f"{cmd.at} is in use")
    if why == "reserved":
        raise SiteError("cp_reserved", f"{cmd.at} is reserved for another driver")
    if why is not None:
        raise SiteError("cp_unavailable", f"{cmd.at} {WHY[why]}", why=why)
    duration = st.params.reservation_ms if cmd.duration_ms is None else cmd.duration_ms
    longest = st.params.max_reservation_ms if max_ms is None else max_ms
    if duration > longest:
        raise SiteError("bad_field", f"duration_s: at most {longest // 1000} s",
                        field="duration_s")
    st.reservations[cmd.at] = Reservation(cmd.at, driver, st.now + duration)
    return {"cp": cmd.at, "expires_in_ms": duration}


def cancel_reservation(st: SiteState, cmd: CancelReservation, driver: str) -> dict[str, Any]:
    reservation = st.reservation_of(driver)
    if reservation is None:
        raise SiteError("no_reservation", f"{driver} holds no reservation")
    del st.reservations[reservation.cp]
    return {"cp": reservation.cp}


def stop_charge(st: SiteState, cmd: StopCharge, driver: str) -> dict[str, Any]:
    """The site records the stop; the charge point carries it out and sends the ticket."""
    s = st.session_of(driver)
    if s is not None:
        if s.stop_requested is None:
            st.sessions[s.id] = replace(s, stop_requested="driver")
        return {"session": s.id, "cp": s.cp}
    auth = st.authorization_of(driver)
    if auth is not None:
        del st.authorizations[auth.cp]
        return {"withdrawn": auth.cp}
    raise SiteError("no_session", f"{driver} has no session in progress and no request waiting")


def expire(st: SiteState, cmd: Expire) -> dict[str, Any]:
    """Drop reservations and authorizations whose time has passed (the state stays small)."""
    gone = {}
    for name, table in (("reservations", st.reservations), ("authorizations", st.authorizations)):
        over = sorted(cp for cp, r in table.items() if r.expires <= st.now)
        for cp in over:
            del table[cp]
        gone[name] = over
    return gone
