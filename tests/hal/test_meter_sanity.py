"""Garbage detection: what no working meter reports is refused, with the value and where."""

import math

import pytest

from hal.meter.sanity import find_garbage

V3, I3 = (230.0, 231.0, 229.5), (16.0, 16.0, 15.5)


def test_plausible_values_pass():
    assert find_garbage(V3, I3, 11_000.0, 1234.5, 1234.0) is None
    assert find_garbage(V3, I3, -3000.0, 0.0, None) is None  # exporting, new meter
    assert find_garbage((0.0, 0.0, 0.0), (0.0, 0.0, 0.0), 0.0, 5.0, 5.0) is None  # phases missing, energy unchanged


@pytest.mark.parametrize(("v", "i", "p", "kwh", "last", "index", "words"), [
    ((math.nan, 230.0, 230.0), I3, 0.0, 1.0, None, 0, "voltage nan V on L1"),
    ((230.0, 9999.0, 230.0), I3, 0.0, 1.0, None, 1, "voltage 9999.0 V on L2"),
    ((230.0, 230.0, -5.0), I3, 0.0, 1.0, None, 2, "voltage -5.0 V on L3"),
    (V3, (16.0, math.inf, 0.0), 0.0, 1.0, None, 4, "current inf A on L2"),
    (V3, I3, math.inf, 1.0, None, 6, "power inf W"),
    (V3, I3, math.nan, 1.0, None, 6, "power nan W"),
    (V3, I3, 0.0, math.nan, None, 7, "import energy is nan"),
    (V3, I3, 0.0, -math.inf, None, 7, "import energy is -inf"),
    (V3, I3, 0.0, -1.0, None, 7, "negative import energy -1.0 kWh"),
    (V3, I3, 0.0, 99.0, 100.0, 7, "went backwards (100.0 -> 99.0 kWh)"),
])
def test_garbage_is_named_with_its_position(v, i, p, kwh, last, index, words):
    what, at = find_garbage(v, i, p, kwh, last)
    assert at == index
    assert words in what


def test_single_phase_positions():
    assert find_garbage((230.0,), (10.0,), 2300.0, math.nan, None)[1] == 3
    assert find_garbage((230.0,), (10.0,), math.inf, 1.0, None)[1] == 2
