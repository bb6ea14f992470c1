"""The real pilot backend: a gpiozero `PWMOutputDevice` drives the pilot, an `MCP3008` reads it back.

Assumed analog front end (documented here because the code depends on it):
- PWM out: the GPIO line drives an op-amp stage that swings the pilot between -12 V (line low) and
  +12 V (line high) through the 1 kOhm source resistor. Duty 0 = steady -12 V, 100 = steady +12 V.
- Voltage in: a divider and offset map the pilot's -15..+15 V linearly onto the ADC's 0..3.3 V
  (`PILOT_MIN_V`, `PILOT_SPAN_V`), leaving room to see an over-range pilot as INVALID.
- Sampling: the ADC is not synchronised with the PWM, so `read()` takes `samples` conversions
  spread over at least one PWM period and keeps the highest (positive level) and, while PWM runs,
  the lowest (negative level, for the diode check). Hardware that samples on the PWM edges would
  be better; this is what gpiozero alone can do.

A failing ADC (an SPI error) never ends the watch thread and never leaves the last good state
standing: `read()` tries `READ_ATTEMPTS` times; when all fail it returns an INVALID reading (a pilot
fault to the engine) and raises `fault_code` "pilot_read_fault" until a read succeeds again. The
watch thread keeps polling meanwhile, so the pilot recovers on its own.
"""

from __future__ import annotations

import math
import threading
import time

from gpiozero import MCP3008, Device, Factory, PWMOutputDevice
from gpiozero.pins.mock import MockFactory

from evnet.config.schema import PilotConfig, PinConfig
from evnet.logs import FoldedLog, event_logger
from hal.pilot.base import ControlPilot, Listener, PilotError
from hal.pilot.conversions import DUTY_OFF, DUTY_STEADY, PilotState
from hal.pilot.physics import PilotReading, classify

ADC_VREF = 3.3
PILOT_MIN_V = -15.0
PILOT_SPAN_V = 30.0
READ_ATTEMPTS = 3  # a read that fails this often in a row is a fault, not a glitch
READ_FAULT = "pilot_read_fault"


def adc_to_pilot_volts(fraction: float) -> float:
    """The pilot voltage for an ADC reading of `fraction` (0..1 of the reference)."""
    return PILOT_MIN_V + fraction * PILOT_SPAN_V


def pilot_to_adc_volts(volts: float) -> float:
    """The voltage the front end puts on the ADC input for a pilot at `volts` (clipped to 0..VREF)."""
    return min(max((volts - PILOT_MIN_V) / PILOT_SPAN_V * ADC_VREF, 0.0), ADC_VREF)


class GpioPilot(ControlPilot):
    """The pilot on a Raspberry Pi: PWM on `pin`, read back through an MCP3008 on SPI0."""

    def __init__(self, pin: PinConfig, config: PilotConfig, *, pin_factory: Factory | None = None,
                 samples: int = 24, watch_interval_s: float = 0.01, cp: str | None = None) -> None:
        super().__init__(event_logger("pilot", cp=cp, backend="real"))
        if samples < 2:
            raise ValueError(f"samples must be >= 2, got {samples}")
        self._samples = samples
        self._period_s = 1.0 / config.pwm_frequency_hz
        self._watch_interval_s = watch_interval_s
        if isinstance(pin_factory, MockFactory) and Device.pin_factory is None:
            # gpiozero's software SPI bus asks for a default factory even when given one.
            Device.pin_factory = pin_factory
        self._pwm: PWMOutputDevice | None = None
        self._adc: MCP3008 | None = None
        try:
            self._pwm = PWMOutputDevice(pin.pin, active_high=pin.active_high, initial_value=0.0,
                                        frequency=config.pwm_frequency_hz, pin_factory=pin_factory)
            self._adc = MCP3008(channel=config.adc_channel, port=0, device=config.spi_device,
                                max_voltage=ADC_VREF, pin_factory=pin_factory)
        except Exception as exc:
            self._release()
            raise PilotError(f"cannot open the pilot (PWM on GPIO{pin.pin}, MCP3008 channel "
                             f"{config.adc_channel} on SPI0 CE{config.spi_device}): {exc}") from exc
        self._watch_stop = threading.Event()
        self._watcher: threading.Thread | None = None
        self._fold = FoldedLog(self._log)
        self.read_failures = 0  # reads whose every attempt failed, since the pilot was opened
        self._log.info("pilot.ready", pwm_pin=pin.pin, adc_channel=config.adc_channel, spi_device=config.spi_device)

    def _output(self, duty: float) -> None:
        if self._pwm is None:
            raise PilotError("the pilot is closed")
        self._pwm.value = duty / 100.0

    def read(self) -> PilotReading:
        """Measure the pilot; while the ADC fails, an INVALID reading and `fault_code` "pilot_read_fault"."""
        adc = self._adc
        if adc is None:
            raise PilotError("the pilot is closed")
        error: Exception | None = None
        for _ in range(READ_ATTEMPTS):
            try:
                reading = self._measure(adc)
            except Exception as exc:  # SPI errors (OSError on a Pi), a closed device, a value no ADC gives
                error = exc
                continue
            if self._fault_code == READ_FAULT:
                self._set_fault(None, failed_reads=self._fold.reset("pilot.read_failed"))
            return reading
        self.read_failures += 1
        self._fold.error("pilot.read_failed", attempts=READ_ATTEMPTS, error=repr(error))
        self._set_fault(READ_FAULT, error=repr(error))
        return PilotReading(PilotState.INVALID, math.nan)

    def _measure(self, adc: MCP3008) -> PilotReading:
        duty = self._duty
        values: list[float] = []
        deadline = time.monotonic() + self._period_s * 1.2
        while len(values) < self._samples or time.monotonic() < deadline:
            values.append(adc_to_pilot_volts(adc.value))
        pwm_running = duty not in (DUTY_OFF, DUTY_STEADY)
        if pwm_running:
            return classify(max(values), min(values))
        values.sort()
        return classify(values[len(values) // 2], None)

    def on_change(self, callback: Listener) -> None:
        """As `ControlPilot.on_change`; the real pilot polls the ADC on a thread every `watch_interval_s`."""
        super().on_change(callback)
        if self._watcher is None:
            first = self.read()
            self._watcher = threading.Thread(target=self._watch, args=((first.state, first.diode_fault),),
                                             name="pilot-watch", daemon=True)
            self._watcher.start()

    def _watch(self, last: tuple[object, bool]) -> None:
        """Poll until closed; nothing it meets ends it (a failing read is a fault, see `read`)."""
        while not self._watch_stop.wait(self._watch_interval_s):
            try:
                reading = self.read()
                key = (reading.state, reading.diode_fault)
                if key != last:
                    self._listeners.notify("pilot")
                last = key
            except Exception as exc:  # closed under us (then we stop), or a bug: fault and keep watching
                if self._watch_stop.is_set():
                    return
                self._fold.error("pilot.watch_failed", error=repr(exc))
                self._set_fault(READ_FAULT, error=repr(exc))

    def _release(self) -> None:
        if hasattr(self, "_watch_stop"):
            self._watch_stop.set()
            if self._watcher is not None and self._watcher is not threading.current_thread():
                self._watcher.join(timeout=2.0)
        for device in (self._adc, self._pwm):
            if device is not None:
                device.close()
        self._adc = self._pwm = None
