"""One charge point's view of the committed state: what its bridge must know after every apply.

The bridge between a charge point's engine and its replica reads this after each command the
replica applied (`SiteMachine.view(cp)`): whether a driver's authorization waits for its EV and
for whom, its reservation, whether the operator put it out of order, its grant and lease, and its
open session as the site knows it (with a stop the site asked for). A pure query of the state; no
secrets, times in site time (ms), currents in amps, meter readings in Wh.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from firmware.site.chargepoints import grant_view
from firmware.site.state import SiteState
from firmware.site.summary import status_of


@dataclass(frozen=True)
class GrantView:
    """The fields of docs/site.md's "grant view" (the result of register, report, renew, ack_grant)."""

    grant_a: float
    grant_seq: int
    lease_ms: int
    fallback_a: float
    limit_reason: str
    target_a: float

    @classmethod
    def of(cls, result: dict[str, Any]) -> GrantView:
        """From a command's result; ValueError if a field is missing or of the wrong kind."""
        try:
            view = cls(float(result["grant_a"]), result["grant_seq"], result["lease_ms"], float(result["fallback_a"]),
                       str(result["limit_reason"]), float(result["target_a"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a grant view: {exc!r}") from None
        if (not isinstance(view.grant_seq, int) or isinstance(view.grant_seq, bool) or view.grant_seq < 0
                or not isinstance(view.lease_ms, int) or isinstance(view.lease_ms, bool) or view.lease_ms <= 0
                or not 0 <= view.grant_a <= 80):
            raise ValueError(f"not a grant view: {result!r}"[:200])
        return view


@dataclass(frozen=True)
class SessionView:
    """The open session at this charge point, as the site knows it."""

    id: str
    driver: str
    start_ms: int
    first_wh: int
    last_wh: int                   # the last checkpoint's reading
    stop_requested: str | None     # "driver" or "operator": the charge point must end it


@dataclass(frozen=True)
class CpView:
    cp: str
    now_ms: int                    # site time of the state this view was taken from
    status: str                    # the status of docs/architecture.md as the site knows it (summary.status_of)
    registered: bool
    available: bool                # False: OUT_OF_ORDER by an operator
    fault: str | None
    authorization: str | None      # the driver whose request waits for an EV here
    reservation: str | None        # the driver who holds a reservation here
    session: SessionView | None
    grant: GrantView
    lease_held: bool               # in the site's view (its lease is longer than the charge point's)
    redirected: bool = False       # the authorization was redirected here: for an EV that plugs in after it


def view(st: SiteState, cp: str) -> CpView:
    """`cp`'s view; KeyError if it is not a charge point of this site."""
    rec = st.cps[cp]
    auth, reservation, s = st.live_authorization(cp), st.live_reservation(cp), st.session_at(cp)
    session = None if s is None else SessionView(s.id, s.driver, s.start, s.first_wh, s.last_wh, s.stop_requested)
    return CpView(cp=cp, now_ms=st.now, status=status_of(st, rec), registered=rec.registered, available=rec.available,
                  fault=rec.fault, authorization=None if auth is None else auth.driver,
                  reservation=None if reservation is None else reservation.driver, session=session,
                  grant=GrantView.of(grant_view(st, cp)), lease_held=st.budget.lease_held(cp, st.now),
                  redirected=auth is not None and auth.redirected)
