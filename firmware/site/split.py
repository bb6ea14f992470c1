"""The policy: how the site's current is shared. Pure functions of their inputs; what they need to
remember (the draw hysteresis, whose turn it is) is passed in and handed back, and kept in the state.

All currents are per phase and every charge point counts on every phase, whatever its phases:
safe for a 1-phase EV on a 3-phase site, and the same sum on each phase.

- Equal share: every charging EV gets the same level x, capped by its charge point's maximum, its
  EV's own maximum and, when it draws less, what it draws (below); no EV is offered less than 6 A
  (IEC 61851-1), so an EV either gets >= 6 A or is paused at 0 A.
- The fallback is reserved (budget.py), so a charge point never costs less than it: an EV whose
  fallback is >= 6 A always charges (at least at its fallback, which costs the others nothing);
  the others share what is left, 6 A each at least.
- Short: when the rest does not give every waiting EV 6 A, EVs are admitted by priority and, among
  equals, take turns every `rotate_ms`: an EV that started its turn less than `rotate_ms` ago keeps
  it, so a newcomer waits instead of lowering anyone below 6 A, nobody flaps, nobody starves, and
  while the limit allows one EV 6 A, at least one charges.
- Draws less: an EV drawing less than its grant by more than `give_back_margin` for
  `give_back_after` gets a grant of what it draws + that margin; the rest goes to the others. When
  it draws within `take_back_margin` of that grant it wants more: its share is back at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from firmware.site.params import MIN_CHARGE_DA, SiteParams

# Why a charge point has the grant it has (`limit_reason`).
REASONS = {
    "site_share": "its equal share of the site's current",
    "cp_max": "the charge point's own maximum",
    "operator_cap": "an operator's cap on the charge point (set_cp_max)",
    "csms_profile": "a charging profile of the charge point's back office (OCPP; below 6 A: paused)",
    "ev_max": "the EV's own maximum (below 6 A: it cannot charge)",
    "ev_draws_less": "the EV draws less than its share; the rest went to the others",
    "paused_short": "current is short: paused, waiting its turn (priority, then rotation)",
    "waiting_for_others": "its share waits until the charge points lowered for it have followed",
    "operator": "an operator stopped the charge point (OUT_OF_ORDER)",
    "fault": "the charge point reported a fault",
    "no_lease": "its lease ran out: it is at its fallback current until it renews",
    "no_ev": "no session in progress",
    "stopping": "its session is being stopped",
    "not_registered": "the charge point has not registered",
}


@dataclass(frozen=True)
class Want:
    """One charge point, as the split sees it."""

    cp: str
    idle: str | None        # why it wants no current; None: it has an EV that wants current
    cap_da: int
    cap_reason: str
    fallback_da: int
    priority: int
    active: bool            # it had a share in the last split
    turn_since: int | None  # when it last started or lost its share


@dataclass(frozen=True)
class Share:
    target_da: int
    reason: str
    active: bool
    turn_since: int | None


def cap_of(max_da: int, operator_cap_da: int | None, ev_max_da: int | None,
           usage_cap_da: int | None, csms_cap_da: int | None = None) -> tuple[int, str]:
    """The most an EV may get, and which limit it is."""
    cap, reason = max_da, "cp_max"
    if operator_cap_da is not None and operator_cap_da < cap:
        cap, reason = operator_cap_da, "operator_cap"
    if csms_cap_da is not None and csms_cap_da < cap:
        cap, reason = csms_cap_da, "csms_profile"
    if ev_max_da is not None and ev_max_da < cap:
        cap, reason = ev_max_da, "ev_max"
    if usage_cap_da is not None and usage_cap_da < cap:
        cap, reason = usage_cap_da, "ev_draws_less"
    return cap, reason


def split(wants: Sequence[Want], limit_da: int, now: int, rotate_ms: int) -> dict[str, Share]:
    """Each charge point's target grant and why, for this limit (one Want for every charge point)."""
    shares = {w.cp: Share(0, w.idle, False, None) for w in wants if w.idle is not None}
    candidates = [w for w in wants if w.idle is None]
    free = [w for w in candidates if w.fallback_da >= MIN_CHARGE_DA]
    taking_turns = [w for w in candidates if w.fallback_da < MIN_CHARGE_DA]
    spare = limit_da - sum(w.fallback_da for w in wants)
    room = min(len(taking_turns), max(0, spare) // MIN_CHARGE_DA)
    ranked = sorted(taking_turns, key=lambda w: _turn_order(w, now, rotate_ms))
    charging = free + ranked[:room]
    for w in ranked[room:]:
        shares[w.cp] = Share(0, "paused_short", False, _turn(w, False, now))
    charging_ids = {w.cp for w in charging}
    reserved = sum(w.fallback_da for w in wants if w.cp not in charging_ids)  # what the others may always draw
    level = _level(charging, limit_da - reserved)
    for w in charging:
        target = min(w.cap_da, max(level, w.fallback_da))
        reason = w.cap_reason if target == w.cap_da and w.cap_da <= level else "site_share"
        shares[w.cp] = Share(target, reason, True, _turn(w, True, now))
    return shares


def _turn_order(w: Want, now: int, rotate_ms: int) -> tuple[int, int, int, str]:
    """Priority first; among equals: a turn still running, then the longest waiting, then turns over."""
    since = now if w.turn_since is None else w.turn_since
    if not w.active:
        return -w.priority, 1, since, w.cp
    if now - since < rotate_ms:
        return -w.priority, 0, since, w.cp
    return -w.priority, 2, -since, w.cp


def _turn(w: Want, active: bool, now: int) -> int:
    return now if w.active != active or w.turn_since is None else w.turn_since


def _level(charging: Sequence[Want], budget_da: int) -> int:
    """The highest equal level x with sum(max(min(cap, x), fallback)) within the budget (>= 6 A by admission)."""
    def cost(x: int) -> int:
        return sum(max(min(w.cap_da, x), w.fallback_da) for w in charging)

    lo, hi = MIN_CHARGE_DA, max((w.cap_da for w in charging), default=MIN_CHARGE_DA)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if cost(mid) <= budget_da:
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass(frozen=True)
class Usage:
    """The draw hysteresis of one EV."""

    cap_da: int | None = None    # its grant is at most this while it draws less
    low_since: int | None = None  # since when it draws less than its grant by more than the margin


def follow_usage(usage: Usage, grant_da: int, drawn_da: int, now: int, params: SiteParams) -> Usage:
    """The hysteresis after a report of what the EV draws: give back slowly, take back at once."""
    if usage.cap_da is not None and drawn_da >= usage.cap_da - params.take_back_margin_da:
        return Usage()
    if grant_da > 0 and drawn_da <= grant_da - params.give_back_margin_da:
        since = now if usage.low_since is None else usage.low_since
        if now - since >= params.give_back_after_ms:
            cap = max(MIN_CHARGE_DA, drawn_da + params.give_back_margin_da)
            if usage.cap_da is None or cap < usage.cap_da:
                return Usage(cap, since)
        return Usage(usage.cap_da, since)
    return Usage(usage.cap_da, None)
