"""`open_meter` builds what the configuration says, behind the one Meter interface."""

import threading

import pytest

from evnet.clock import ManualClock
from evnet.config.schema import MeterConfig
from hal.meter import MeterError, ModbusMeter, SimulatedMeter, open_meter


@pytest.mark.parametrize("transport", ["tcp", "rtu"])
def test_simulated_backend_is_a_driver_over_real_modbus(transport):
    clock = ManualClock()
    threads = set(threading.enumerate())
    meter = open_meter(MeterConfig(backend="simulated", transport=transport), clock=clock, cp_id="cp1",
                       load=lambda: 16.0)
    try:
        assert isinstance(meter, ModbusMeter) and isinstance(meter.simulator, SimulatedMeter)
        assert meter.simulator.transport == transport
        assert meter.read().current_a == (16.0, 16.0, 16.0)
        clock.advance(3600)
        assert meter.read().import_kwh == pytest.approx(11.04, abs=1e-4)
    finally:
        meter.close()
    assert not set(threading.enumerate()) - threads  # close() stopped the simulator too


def test_simulated_backend_uses_config_model_and_device_id():
    cfg = MeterConfig(backend="simulated", model="SDM120", device_id=12, retries=0, fail_after=1)
    with open_meter(cfg, clock=ManualClock(), load=8.0) as meter:
        assert meter.where.startswith("SDM120 tcp 127.0.0.1:") and meter.where.endswith("device 12")
        assert meter.read().current_a == (8.0, 0.0, 0.0)
        assert (meter.retries, meter.fail_after) == (0, 1)


def test_real_backend_is_just_the_driver():
    clock = ManualClock()
    with SimulatedMeter(clock=clock, load=6.0, device_id=3) as sim:
        sim.start_tcp()
        cfg = MeterConfig(backend="real", transport="tcp", address=sim.address, device_id=3)
        with open_meter(cfg, clock=clock, cp_id="cp1", load=99.0) as meter:  # load ignored: a real meter measures
            assert meter.simulator is None
            assert meter.read().current_a == (6.0, 6.0, 6.0)


def test_real_backend_with_nothing_there_fails_on_read_not_on_open():
    cfg = MeterConfig(backend="real", transport="rtu", address="/dev/no-such-meter", retries=0)
    with open_meter(cfg, clock=ManualClock(), sleep=lambda s: None) as meter, pytest.raises(MeterError):
        meter.read()
