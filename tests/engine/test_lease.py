"""The allowed-current lease: a grant holds until its moment, then the fallback; never above the maximum."""

import math

import pytest

from firmware.engine.lease import CurrentLease


def test_no_grant_means_the_fallback():
    lease = CurrentLease(max_current_a=32, fallback_a=6)
    assert lease.current(0) == 6 and lease.expired(0) and lease.expires_at is None


def test_a_grant_holds_until_its_moment_then_falls_back():
    lease = CurrentLease(32, 6)
    lease.grant(20, until=10.0)
    assert lease.current(9.999) == 20 and not lease.expired(9.999)
    assert lease.current(10.0) == 6 and lease.expired(10.0)
    assert lease.expires_at == 10.0


def test_set_limit_is_the_site_form_of_grant_and_is_capped_by_the_maximum():
    lease = CurrentLease(16, 0)
    lease.set_limit(40, lease_until=5)
    assert lease.current(1) == 16
    assert lease.current(5) == 0


def test_a_grant_for_ever_has_no_timer():
    lease = CurrentLease(32, 6)
    lease.grant(32, math.inf)
    assert lease.current(1e12) == 32 and lease.expires_at is None


@pytest.mark.parametrize("amps, until", [(-1, 5), (math.nan, 5), (math.inf, 5), (10, math.nan)])
def test_bad_grants_are_refused(amps, until):
    with pytest.raises(ValueError):
        CurrentLease(32, 6).grant(amps, until)


def test_fallback_above_the_maximum_is_refused():
    with pytest.raises(ValueError, match="fallback"):
        CurrentLease(10, 16)
