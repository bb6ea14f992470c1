"""What a charge point's back office (an OCPP CSMS) asks of the site, at that charge point only.

The CSMS talks to one charge point, which authenticated it (Basic auth, TLS); the member vouches for it and
proposes these commands for its own point, so a remote start, a reservation or a charging profile changes
the site the way a driver's or an operator's request does: every member sees it, the split obeys it. An id
token acts as a driver id (a ticket is billed to it). Unlike a driver's request, a remote start is never
redirected: the CSMS chose the connector.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from firmware.site.chargepoints import known_cp
from firmware.site.commands import (
    ChargingLimits,
    RemoteCancelReservation,
    RemoteReserve,
    RemoteStart,
    RemoteStop,
    RequestCharge,
    Reserve,
)
from firmware.site.drivers import WHY, request_charge, reserve, unavailable
from firmware.site.errors import SiteError
from firmware.site.params import amps
from firmware.site.state import SiteState

LONGEST_RESERVATION_MS = 86_400_000


def remote_start(st: SiteState, cmd: RemoteStart) -> dict[str, Any]:
    known_cp(st, cmd.cp)
    why = unavailable(st, cmd.cp, cmd.token)
    if why is not None:
        raise SiteError("cp_unavailable", f"{cmd.cp} {WHY[why]}", why=why)
    result = request_charge(st, RequestCharge(cmd.cp), cmd.token)
    if cmd.timeout_ms is not None:
        auth = st.authorizations[cmd.cp]
        st.authorizations[cmd.cp] = replace(auth, expires=st.now + cmd.timeout_ms)
        result["expires_in_ms"] = cmd.timeout_ms
    return result


def remote_stop(st: SiteState, cmd: RemoteStop) -> dict[str, Any]:
    """The site records the stop; the charge point carries it out and sends the ticket."""
    s = st.sessions.get(cmd.session)
    if s is None or s.cp != cmd.cp:
        raise SiteError("no_session", f"no session {cmd.session} in progress at {cmd.cp}")
    if s.stop_requested is None:
        st.sessions[s.id] = replace(s, stop_requested="remote")
    return {"session": s.id, "cp": s.cp, "driver": s.driver}


def remote_reserve(st: SiteState, cmd: RemoteReserve) -> dict[str, Any]:
    known_cp(st, cmd.cp)
    return reserve(st, Reserve(cmd.cp, cmd.duration_ms), cmd.token, LONGEST_RESERVATION_MS)


def remote_cancel_reservation(st: SiteState, cmd: RemoteCancelReservation) -> dict[str, Any]:
    r = st.reservations.pop(cmd.cp, None)
    if r is None:
        raise SiteError("no_reservation", f"{cmd.cp} holds no reservation")
    return {"cp": cmd.cp, "driver": r.driver}


def charging_limits(st: SiteState, cmd: ChargingLimits) -> dict[str, Any]:
    rec = known_cp(st, cmd.cp, registered=False)
    st.cps[cmd.cp] = replace(rec, csms_max_da=cmd.max_da, csms_default_da=cmd.default_da,
                             csms_session_da=cmd.session_da if st.session_at(cmd.cp) is not None else None)
    cap = st.cps[cmd.cp].csms_cap_da()
    return {"cp": cmd.cp, "csms_cap_a": None if cap is None else amps(cap)}
