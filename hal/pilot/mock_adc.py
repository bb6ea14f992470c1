"""A simulated MCP3008 on gpiozero's mock SPI, so the real pilot backend runs on a laptop.

gpiozero's MockFactory bit-bangs SPI over mock pins and lets a `MockSPIDevice` answer on the
other side; this one answers like an MCP3008 (10 bits, single-ended or differential), reading each
channel's input voltage from `volts(channel)` at the moment of the conversion. It is mock
*hardware*: the driver under test is gpiozero's own `MCP3008` class.

The SPI pins are made as PWM-capable mock pins so that they coexist with a
`MockFactory(pin_class=MockPWMPin)`, which the rest of the HAL needs for the pilot's PWM and the LED.
"""

from __future__ import annotations

from collections.abc import Callable

from gpiozero.pins.mock import MockFactory, MockPin, MockPWMPin, MockSPIDevice

from hal.pilot.physics import EvLoad, pilot_levels
from hal.pilot.real import pilot_to_adc_volts

VREF = 3.3
BITS = 10


class _BitPin(MockPWMPin):
    """Digital levels (True/False) as the SPI bus expects, yet accepted by a PWM mock factory."""

    def _set_state(self, value: float) -> None:
        MockPin._set_state(self, value)


class _ClockPin(_BitPin):
    def __init__(self, factory: MockFactory, info: object) -> None:
        super().__init__(factory, info)
        self.spi_devices: list[MockSPIDevice] = []

    def _set_state(self, value: float) -> None:
        super()._set_state(value)
        for device in self.spi_devices:
            device.on_clock()


class _SelectPin(_BitPin):
    def __init__(self, factory: MockFactory, info: object) -> None:
        super().__init__(factory, info)
        self.spi_device: MockSPIDevice | None = None

    def _set_state(self, value: float) -> None:
        super()._set_state(value)
        if self.spi_device is not None:
            self.spi_device.on_select()


class MockMCP3008(MockSPIDevice):
    """The chip on SPI0 (clock 11, MOSI 10, MISO 9) behind chip-select `select_pin` (8 = CE0, 7 = CE1).

    Build it before gpiozero's `MCP3008`, on the same factory; `close()` detaches it.
    """

    def __init__(self, factory: MockFactory, volts: Callable[[int], float], *, select_pin: int = 8,
                 clock_pin: int = 11, mosi_pin: int = 10, miso_pin: int = 9) -> None:
        # MockSPIDevice.__init__ would make non-PWM pins, which a PWM mock factory refuses later.
        self.clock_pin = factory.pin(clock_pin, pin_class=_ClockPin)
        self.mosi_pin = factory.pin(mosi_pin, pin_class=_BitPin)
        self.miso_pin = factory.pin(miso_pin, pin_class=_BitPin)
        self.select_pin = factory.pin(select_pin, pin_class=_SelectPin)
        self.clock_polarity = self.clock_phase = self.lsb_first = self.select_high = False
        self.bits_per_word = 8
        self.rx_bit, self.rx_buf, self.tx_buf = 0, [], []
        self.clock_pin.spi_devices.append(self)
        self.select_pin.spi_device = self
        self.volts = volts
        self.conversions = 0
        self._phase = "idle"

    def on_start(self) -> None:
        super().on_start()
        self._phase = "idle"

    def on_bit(self) -> None:
        if self._phase == "idle":  # wait for the start bit
            if self.rx_buf[-1]:
                self._phase, self.rx_buf = "mode", []
        elif self._phase == "mode":  # 1 = single-ended, 0 = differential
            self._phase, self.rx_buf = ("single" if self.rx_buf[-1] else "diff"), []
        elif self._phase in ("single", "diff"):
            if len(self.rx_buf) == 3:
                self._convert(self.rx_word(), self._phase == "diff")
                self._phase = "result"
        elif self._phase == "result" and not self.tx_buf:
            self._phase, self.rx_buf = "idle", []

    def _convert(self, channel: int, differential: bool) -> None:
        volts = self.volts(channel) - (self.volts(channel ^ 1) if differential else 0.0)
        code = round(min(max(volts, 0.0), VREF) / VREF * (2 ** BITS - 1))
        self.conversions += 1
        self.tx_word(code, BITS + 2)  # a null bit's worth of padding, then the 10 result bits


class MockPilotLine:
    """The EV side of a *real* pilot backend on mock pins: it watches the PWM pin's duty, applies the
    pilot circuit (`hal.pilot.physics`) for the EV's `load` and `diode`, and feeds the resulting
    voltage through the assumed front end to a `MockMCP3008`. While PWM runs, successive conversions
    alternate between the positive and the negative level, as unsynchronised sampling would see them.
    """

    def __init__(self, factory: MockFactory, pwm_pin: int, *, channel: int = 0, select_pin: int = 8,
                 active_high: bool = True, load: EvLoad = EvLoad.NOT_CONNECTED, diode: bool = True) -> None:
        self.load = load
        self.diode = diode
        self.offset_v = 0.0  # add noise or a fault: shifts every level
        self._factory = factory
        self._pwm_pin = pwm_pin
        self._channel = channel
        self._active_high = active_high
        self._negative = False
        self.chip = MockMCP3008(factory, self._volts, select_pin=select_pin)

    def duty(self) -> float:
        """The duty (%) on the PWM pin now."""
        level = float(self._factory.pin(self._pwm_pin).state)
        return round((level if self._active_high else 1.0 - level) * 100.0, 6)

    def _volts(self, channel: int) -> float:
        if channel != self._channel:
            return 0.0
        high, low = pilot_levels(self.duty(), self.load, self.diode)
        self._negative = not self._negative and low is not None
        return pilot_to_adc_volts((low if self._negative and low is not None else high) + self.offset_v)

    def close(self) -> None:
        self.chip.close()
