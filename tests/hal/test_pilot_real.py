"""The real pilot backend (gpiozero PWMOutputDevice + MCP3008) on the mock pin factory and mock SPI."""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator

import pytest
from gpiozero import MCP3008
from gpiozero.pins.mock import MockFactory

from evnet.config.schema import HalConfig, PilotConfig, PinConfig
from hal.pilot import EvseEnd, GpioPilot, PilotState, PilotValueError, TcpEvseEnd, VirtualCable, open_pilot
from hal.pilot.base import PilotError
from hal.pilot.mock_adc import MockMCP3008, MockPilotLine
from hal.pilot.physics import EvLoad
from hal.pilot.real import PILOT_MIN_V, PILOT_SPAN_V, adc_to_pilot_volts, pilot_to_adc_volts

PWM = 18


@pytest.fixture
def line(mock_factory: MockFactory) -> Iterator[MockPilotLine]:
    ev = MockPilotLine(mock_factory, PWM)
    yield ev
    ev.close()


@pytest.fixture
def pilot(mock_factory: MockFactory, line: MockPilotLine) -> Iterator[GpioPilot]:
    p = GpioPilot(PinConfig(PWM), PilotConfig(backend="real"), pin_factory=mock_factory, cp="cp1")
    yield p
    p.close()


def test_front_end_scaling_round_trips() -> None:
    assert adc_to_pilot_volts(0.0) == PILOT_MIN_V and adc_to_pilot_volts(1.0) == PILOT_MIN_V + PILOT_SPAN_V
    for volts in (-12.0, 0.0, 3.0, 6.0, 9.0, 12.0):
        assert adc_to_pilot_volts(pilot_to_adc_volts(volts) / 3.3) == pytest.approx(volts)
    assert pilot_to_adc_volts(-40) == 0.0 and pilot_to_adc_volts(40) == 3.3  # clipped like the ADC input


def test_mock_mcp3008_speaks_the_chip_protocol(mock_factory: MockFactory) -> None:
    inputs = {0: 1.1, 3: 3.3, 5: 0.0}
    chip = MockMCP3008(mock_factory, lambda ch: inputs.get(ch, 0.0))
    adcs = {ch: MCP3008(channel=ch, pin_factory=mock_factory) for ch in inputs}
    try:
        assert adcs[0].value == pytest.approx(1.1 / 3.3, abs=1 / 1023)
        assert adcs[3].value == 1.0
        assert adcs[5].raw_value == 0
        assert chip.conversions == 3
    finally:  # gpiozero caches the SPI bus by pin names: an open ADC would leak into the next test
        for adc in adcs.values():
            adc.close()
        chip.close()


def test_starts_off_and_drives_the_pwm_pin(mock_factory: MockFactory, pilot: GpioPilot) -> None:
    pin = mock_factory.pin(PWM)
    assert pin.frequency == 1000 and pin.state == 0  # off: -12 V
    assert pilot.read().state is PilotState.F
    pilot.set_current(32)
    assert pin.state == pytest.approx(32 / 0.6 / 100)
    pilot.set_current(80)
    assert pin.state == pytest.approx(0.96)
    pilot.set_hlc()
    assert pin.state == pytest.approx(0.05)
    pilot.set_steady()
    assert pin.state == 1.0
    with pytest.raises(PilotValueError):
        pilot.set_current(5)
    assert pin.state == 1.0


def test_active_low_pwm(mock_factory: MockFactory, line: MockPilotLine) -> None:
    line._active_high = False
    p = GpioPilot(PinConfig(PWM, active_high=False), PilotConfig(backend="real"), pin_factory=mock_factory)
    try:
        p.set_current(16)
        assert mock_factory.pin(PWM).state == pytest.approx(1 - 16 / 0.6 / 100)
        assert line.duty() == pytest.approx(16 / 0.6)
    finally:
        p.close()


@pytest.mark.parametrize(("load", "state"), [
    (EvLoad.NOT_CONNECTED, PilotState.A), (EvLoad.B, PilotState.B), (EvLoad.C, PilotState.C),
    (EvLoad.D, PilotState.D), (EvLoad.SHORT, PilotState.E),
])
def test_reads_every_state_through_the_adc(pilot: GpioPilot, line: MockPilotLine, load: EvLoad,
                                           state: PilotState) -> None:
    line.load = load
    pilot.set_steady()
    assert pilot.read().state is state
    pilot.set_current(16)
    reading = pilot.read()
    assert reading.state is state
    assert reading.low_v == pytest.approx(0.0 if load is EvLoad.SHORT else -12.0, abs=0.05)
    assert not reading.diode_fault


def test_sees_a_missing_diode_and_an_out_of_band_voltage(pilot: GpioPilot, line: MockPilotLine) -> None:
    pilot.set_current(16)
    line.load, line.diode = EvLoad.C, False
    assert pilot.read().diode_fault
    line.diode = True
    line.offset_v = 1.5  # C at 7.5 V: between bands
    reading = pilot.read()
    assert reading.state is PilotState.INVALID and reading.fault


def test_on_change_reports_c_to_b_from_the_watch_thread(pilot: GpioPilot, line: MockPilotLine) -> None:
    pilot.set_current(16)
    line.load = EvLoad.C
    changed = threading.Event()
    pilot.on_change(lambda what: changed.set())
    assert not changed.is_set()
    line.load = EvLoad.B
    assert changed.wait(10)
    assert pilot.read().state is PilotState.B


def test_closed_pilot_is_off_and_refuses_use(mock_factory: MockFactory, pilot: GpioPilot) -> None:
    pilot.set_current(16)
    pilot.close()
    assert mock_factory.pin(PWM).state == 0
    with pytest.raises(PilotError, match="closed"):
        pilot.read()


def test_open_pilot_chooses_the_backend(mock_factory: MockFactory, line: MockPilotLine) -> None:
    real = open_pilot(HalConfig(pilot=PilotConfig(backend="real")), pin_factory=mock_factory)
    assert isinstance(real, GpioPilot)
    real.close()
    cable = VirtualCable()
    inproc = open_pilot(HalConfig(), cable=cable)
    assert inproc is cable.evse and isinstance(inproc, EvseEnd)
    cable.close()
    tcp = open_pilot(HalConfig(pilot=PilotConfig(cable="tcp://127.0.0.1:0")))
    assert isinstance(tcp, TcpEvseEnd) and tcp.port > 0
    tcp.close()


class FailingAdc:
    """Mock hardware: the MCP3008 behind an SPI bus that fails `failures` reads (None: until healed)."""

    def __init__(self, adc: MCP3008, failures: int | None) -> None:
        self._adc = adc
        self.failures = failures
        self.lock = threading.Lock()

    def heal(self) -> None:
        with self.lock:
            self.failures = 0

    @property
    def value(self) -> float:
        with self.lock:
            failing = self.failures is None or self.failures > 0
            if self.failures:
                self.failures -= 1
        if failing:
            raise OSError(errno.EIO, "SPI transfer failed")
        return self._adc.value

    def close(self) -> None:
        self._adc.close()


def break_adc(pilot: GpioPilot, failures: int | None) -> FailingAdc:
    adc = FailingAdc(pilot._adc, failures)
    pilot._adc = adc  # type: ignore[assignment]
    return adc


def test_one_adc_error_is_retried_and_the_watch_thread_lives_on(pilot: GpioPilot, line: MockPilotLine) -> None:
    pilot.set_current(16)
    line.load = EvLoad.C
    heard: list[str] = []
    changed = threading.Event()
    pilot.on_change(lambda what: (heard.append(what), changed.set()))
    break_adc(pilot, failures=1)
    assert pilot.read().state is PilotState.C  # the failed conversion was retried
    assert pilot.fault_code is None and pilot.read_failures == 0
    line.load = EvLoad.B  # C -> B after the error: the watch thread still reports it
    assert changed.wait(10)
    assert pilot.read().state is PilotState.B and "fault" not in heard


def test_an_adc_that_keeps_failing_reads_as_a_fault_until_it_heals(pilot: GpioPilot, line: MockPilotLine) -> None:
    pilot.set_current(16)
    line.load = EvLoad.C
    heard: list[str] = []
    fault_changed = threading.Condition()

    def listener(what: str) -> None:
        with fault_changed:
            heard.append(what)
            fault_changed.notify_all()

    pilot.on_change(listener)
    adc = break_adc(pilot, failures=None)
    with fault_changed:
        assert fault_changed.wait_for(lambda: pilot.fault_code == "pilot_read_fault", 10)
    reading = pilot.read()
    assert reading.state is PilotState.INVALID and reading.fault  # never the last good state (C)
    adc.heal()
    with fault_changed:
        assert fault_changed.wait_for(lambda: pilot.fault_code is None, 10)  # the watch thread recovered it
    assert pilot.read().state is PilotState.C and heard.count("fault") == 2
