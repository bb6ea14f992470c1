"""After every command: the policy's targets (split.py) carried out within the rule (budget.py).

Order of changes: every lowering first (at once), then raises, highest priority first, each as far
as the limit allows now. A newcomer's grant therefore waits until the charge points lowered for
it have acknowledged or their allowance has run out; time moves only through commands, so the
renewals every half lease are the heartbeat that lets a pending raise happen. A partial raise is
given only if it reaches 6 A (IEC 61851-1's minimum).
"""

from __future__ import annotations

from dataclasses import replace

from firmware.site.params import MIN_CHARGE_DA
from firmware.site.split import Want, cap_of, split
from firmware.site.state import ChargePoint, SiteState

IDLE_REASON = {"not_registered": "not_registered", "faulted": "fault", "out_of_order": "operator"}


def idle_reason(st: SiteState, rec: ChargePoint, cap_da: int, cap_reason: str) -> str | None:
    """Why this charge point wants no current (split.REASONS), or None if its EV wants current."""
    why = rec.out_of_service()
    if why is not None:
        return IDLE_REASON[why]
    session = st.session_at(rec.id)
    if session is None or not rec.plugged:
        return "no_ev"
    if session.stop_requested is not None:
        return "stopping"
    if not st.budget.lease_held(rec.id, st.now):
        return "no_lease"
    if cap_da < MIN_CHARGE_DA:
        return "csms_profile" if cap_reason == "csms_profile" else "ev_max"
    return None


def want_of(st: SiteState, rec: ChargePoint) -> Want:
    cap, cap_reason = cap_of(rec.max_da, rec.cap_da, rec.ev_max_da, rec.usage_cap_da, rec.csms_cap_da())
    return Want(rec.id, idle_reason(st, rec, cap, cap_reason), cap, cap_reason,
                st.budget.allowances[rec.id].fallback_da, rec.priority, rec.active, rec.turn_since)


def rebalance(st: SiteState) -> None:
    budget, now = st.budget, st.now
    shares = split([want_of(st, rec) for rec in st.cps.values()], budget.limit_da, now, st.params.rotate_ms)
    for cp, share in shares.items():
        if share.target_da < budget.allowances[cp].grant_da:
            budget.set_grant(cp, share.target_da, now)
    raises = sorted((cp for cp, share in shares.items() if share.target_da > budget.allowances[cp].grant_da),
                    key=lambda cp: (-st.cps[cp].priority, cp))
    for cp in raises:
        grant = min(shares[cp].target_da, budget.room_for(cp, now))
        if grant > budget.allowances[cp].grant_da and grant >= MIN_CHARGE_DA:
            budget.set_grant(cp, grant, now)
    for cp, share in shares.items():
        rec = st.cps[cp]
        reason = "waiting_for_others" if budget.allowances[cp].grant_da < share.target_da else share.reason
        if (rec.active, rec.turn_since, rec.target_da, rec.limit_reason) != (share.active, share.turn_since,
                                                                             share.target_da, reason):
            st.cps[cp] = replace(rec, active=share.active, turn_since=share.turn_since, target_da=share.target_da,
                                 limit_reason=reason)
