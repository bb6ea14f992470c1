"""The rule's bookkeeping (budget.py): what each charge point may draw, and until when."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from firmware.site.budget import Budget
from firmware.site.errors import SiteError
from firmware.site.params import SiteParams

P = SiteParams()
L, R = P.site_lease_ms, P.site_reaction_ms


def budget(limit: int = 630, **fallbacks: int) -> Budget:
    return Budget(P, limit, fallbacks or {"a": 0, "b": 0})


def test_without_a_lease_a_point_may_draw_its_fallback() -> None:
    b = budget(a=60, b=0)
    assert b.may_draw("a", 0) == 60 and b.drawing(0) == 60 and b.until("a", 0) is None


def test_a_grant_counts_through_the_lease_and_the_reaction_window_then_the_fallback() -> None:
    b = budget(a=60, b=0)
    b.renew("a", 1000)
    assert b.set_grant("a", 320, 1000)
    assert b.may_draw("a", 1000 + L - 1) == 320
    assert b.may_draw("a", 1000 + L + R - 1) == 320
    assert b.may_draw("a", 1000 + L + R) == 60
    assert b.until("a", 1000) == 1000 + L + R


def test_a_lowered_grant_keeps_counting_the_old_one_until_its_lease_and_reaction_end() -> None:
    b = budget()
    b.renew("a", 0)
    b.set_grant("a", 320, 0)
    b.set_grant("a", 100, 2000)
    b.renew("a", 3000)  # a renewal does not shorten it: the charge point may not have heard of the lowering
    assert b.may_draw("a", L + R - 1) == 320
    assert b.may_draw("a", L + R) == 100


def test_an_ack_of_the_current_grant_releases_the_old_one_and_a_stale_ack_is_refused() -> None:
    b = budget()
    b.renew("a", 0)
    b.set_grant("a", 320, 0)
    b.set_grant("a", 100, 10)
    stale = b.allowances["a"].seq - 1
    with pytest.raises(SiteError) as refused:
        b.ack("a", stale)
    assert refused.value.code == "stale_grant"
    assert b.ack("a", b.allowances["a"].seq) is True
    assert b.may_draw("a", 10) == 100


def test_a_raise_fits_within_the_limit_or_does_not_happen() -> None:
    b = budget(limit=630)
    for cp in "ab":
        b.renew(cp, 0)
    assert b.set_grant("a", 320, 0)
    assert not b.set_grant("b", 320, 0)
    assert b.room_for("b", 0) == 310 and b.set_grant("b", 310, 0)
    assert b.drawing(0) == 630


def test_a_raise_waits_for_the_old_grant_of_a_lowered_point() -> None:
    b = budget(limit=630)
    for cp in "ab":
        b.renew(cp, 0)
    b.set_grant("a", 630, 0)
    b.set_grant("a", 315, 100)
    assert b.room_for("b", 100) == 0
    b.renew("a", L - 1)
    assert b.room_for("b", L + R - 1) == 0
    assert b.room_for("b", L + R) == 315


def test_a_renewal_after_the_lease_ran_out_starts_again_at_zero() -> None:
    b = budget()
    b.renew("a", 0)
    b.set_grant("a", 320, 0)
    seq = b.allowances["a"].seq
    b.renew("a", L + R + 1)
    assert b.allowances["a"].grant_da == 0 and b.allowances["a"].seq == seq + 1


def test_a_new_term_counts_every_running_lease_and_old_grant_again_in_full() -> None:
    b = Budget(P, 1000, {"held": 0, "window": 0, "gone": 0, "lowered": 0})
    for cp in b.allowances:
        b.renew(cp, 0)
        b.set_grant(cp, 100, 0)
    b.renew("held", 5000)
    b.set_grant("lowered", 50, 5000)
    b.renew("lowered", 5000)
    now = L + 5000 - 1  # "held" and "lowered" have 1 ms left; "window" and "gone" ran out
    b.allowances["gone"] = b.allowances["gone"].__class__(0, 100, 1, now - L - R, 0, 0)
    b.new_term(now)
    assert b.allowances["held"].lease_until == now + L
    assert b.allowances["window"].lease_until == now and b.may_draw("window", now + R - 1) == 100
    assert b.allowances["gone"].lease_until is None and b.may_draw("gone", now) == 0
    assert b.allowances["lowered"].prior_until == now + L + R


def test_a_limit_below_the_fallbacks_is_refused_and_a_lower_limit_drains() -> None:
    b = budget(limit=630, a=60, b=60)
    with pytest.raises(SiteError) as refused:
        b.set_limit(119)
    assert refused.value.code == "below_fallbacks"
    b.renew("a", 0)
    b.set_grant("a", 500, 0)
    b.set_limit(300)
    assert b.in_force(0) == 560
    b.set_grant("a", 240, 0)
    assert b.in_force(0) == 560 and b.in_force(L + R) == 300


@given(lease_ms=st.integers(1000, 600_000), ppm=st.integers(0, 99_999))
def test_the_charge_points_lease_ends_before_the_sites_whatever_the_drift(lease_ms: int, ppm: int) -> None:
    """The slowest charge point clock against the fastest leader clock, in real time."""
    params = SiteParams(lease_ms=lease_ms, drift_ppm=ppm)
    rho = ppm / 1_000_000
    cp_lease_real = lease_ms / (1 - rho)
    site_lease_real = params.site_lease_ms / (1 + rho)
    assert site_lease_real > cp_lease_real
