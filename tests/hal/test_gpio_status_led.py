"""The status LED's look for every status, read from the mock pins' PWM values."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from gpiozero.pins.mock import MockFactory, MockPWMPin

from evnet.config.schema import PinConfig
from hal.gpio.status_led import DIM_WHITE, GREEN, LOOKS, OFF, ORANGE, StatusLed

R, G, B = 5, 6, 13
CHANGED = threading.Condition()


class WatchedPin(MockPWMPin):
    """A mock PWM pin that wakes waiting tests whenever its level changes."""

    def _change_state(self, value: float) -> bool:
        with CHANGED:
            changed = super()._change_state(value)
            CHANGED.notify_all()
            return changed


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    with CHANGED:
        return CHANGED.wait_for(predicate, timeout)


def make_led(factory: MockFactory, active_high: bool = True, time_scale: float = 0.02) -> StatusLed:
    for pin in (R, G, B):
        factory.pin(pin, pin_class=WatchedPin)
    pins = [PinConfig(p, active_high) for p in (R, G, B)]
    return StatusLed(*pins, pin_factory=factory, time_scale=time_scale, cp="cp1")


def levels(factory: MockFactory, active_high: bool = True) -> tuple[float, ...]:
    """What each colour's pin lights, undoing the polarity."""
    return tuple(round(s if active_high else 1 - s, 3) for s in (factory.pin(p).state for p in (R, G, B)))


def seen_levels(factory: MockFactory, pin: int) -> set[float]:
    return {round(float(s.state), 3) for s in factory.pin(pin).states}


def test_every_status_has_a_look() -> None:
    assert set(LOOKS) == {"AVAILABLE", "RESERVED", "CHARGING", "OUT_OF_ORDER", "FAULTED", "DISCONNECTED"}


@pytest.mark.parametrize("active_high", [True, False])
@pytest.mark.parametrize(("status", "color"), [
    ("AVAILABLE", GREEN), ("OUT_OF_ORDER", ORANGE), ("DISCONNECTED", DIM_WHITE),
])
def test_steady_colours(mock_factory: MockFactory, status: str, color: tuple[float, ...],
                        active_high: bool) -> None:
    led = make_led(mock_factory, active_high)
    assert levels(mock_factory, active_high) == OFF  # dark until told
    led.show(status)
    assert levels(mock_factory, active_high) == color
    assert led.status == status and led.color == pytest.approx(color)
    led.close()


def test_orange_and_grey_are_not_green_nor_red() -> None:
    assert ORANGE[0] == 1 and 0 < ORANGE[1] < 1 and ORANGE[2] == 0
    assert len(set(DIM_WHITE)) == 1 and 0 < DIM_WHITE[0] < 0.5


def test_faulted_blinks_red_only(mock_factory: MockFactory) -> None:
    led = make_led(mock_factory)
    led.show("AVAILABLE")
    for pin in (R, G, B):
        mock_factory.pin(pin).clear_states()
    led.show("FAULTED")
    assert wait_for(lambda: sum(1 for s in mock_factory.pin(R).states if s.state == 1) >= 2)
    assert seen_levels(mock_factory, R) >= {0.0, 1.0}  # on and off: blinking
    assert levels(mock_factory)[1:] == (0, 0)
    assert seen_levels(mock_factory, G) == {1.0, 0.0} and mock_factory.pin(G).state == 0  # green went out
    led.close()


def test_reserved_blinks_green_and_charging_breathes_green(mock_factory: MockFactory) -> None:
    led = make_led(mock_factory, time_scale=0.1)  # breathing at 25 frames/s: 0.15 s fades have a few steps
    led.show("RESERVED")
    assert wait_for(lambda: sum(1 for s in mock_factory.pin(G).states if s.state == 1) >= 2)
    assert seen_levels(mock_factory, G) == {0.0, 1.0}  # a blink: fully on, fully off
    assert seen_levels(mock_factory, R) == {0.0} and seen_levels(mock_factory, B) == {0.0}
    mock_factory.pin(G).clear_states()
    led.show("CHARGING")
    assert wait_for(lambda: len({s.state for s in mock_factory.pin(G).states if 0 < s.state < 1}) >= 2)
    assert seen_levels(mock_factory, R) == {0.0} and seen_levels(mock_factory, B) == {0.0}
    led.close()


def test_a_new_status_stops_the_animation(mock_factory: MockFactory) -> None:
    led = make_led(mock_factory)
    led.show("FAULTED")
    assert wait_for(lambda: len(mock_factory.pin(R).states) >= 3)
    led.show("AVAILABLE")
    assert led._led._blink_thread is None  # gpiozero joined its blink thread
    assert levels(mock_factory) == GREEN
    led.off()
    assert levels(mock_factory) == OFF and led.status is None
    led.close()


def test_unknown_status_is_refused_and_changes_nothing(mock_factory: MockFactory) -> None:
    led = make_led(mock_factory)
    led.show("AVAILABLE")
    with pytest.raises(ValueError, match="no LED look for status 'BROKEN'"):
        led.show("BROKEN")
    assert levels(mock_factory) == GREEN and led.status == "AVAILABLE"
    led.close()


def test_mixed_polarity_is_refused(mock_factory: MockFactory) -> None:
    with pytest.raises(ValueError, match="one polarity"):
        StatusLed(PinConfig(R), PinConfig(G, False), PinConfig(B), pin_factory=mock_factory)
