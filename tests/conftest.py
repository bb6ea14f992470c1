"""Fixtures shared by the tests under tests/ (the root conftest.py has the brokers)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from firmware.chargepoint.process import ChargePoint

from .sites import start_site, stop_site


@pytest.fixture
def site(tmp_path: Path, mosquitto) -> Iterator[dict[str, ChargePoint]]:
    """Three charge points of site `s1` (tests/sites.py) in this process, on this test's own Mosquitto."""
    cps = start_site(tmp_path, mosquitto.url)
    try:
        yield cps
    finally:
        stop_site(cps)
