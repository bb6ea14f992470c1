"""Relays and buttons on gpiozero's MockFactory: safe state, polarity, callbacks, the emergency stop."""

from __future__ import annotations

import threading

import pytest
from gpiozero import GPIOPinInUse
from gpiozero.pins.mock import MockFactory, MockPWMPin

from evnet.config.schema import HalConfig, PinConfig
from hal.gpio import EmergencyStop, GpioBoard, GpioError, PushButton, Relay, make_pin_factory


@pytest.mark.parametrize("active_high", [True, False])
def test_relay_starts_open_closes_and_reads_back(mock_factory: MockFactory, active_high: bool) -> None:
    pin = mock_factory.pin(17)
    relay = Relay("contactor", PinConfig(17, active_high), pin_factory=mock_factory)
    energized = 1 if active_high else 0
    assert relay.contacts_closed is False
    assert pin.state == 1 - energized  # the line holds the contacts open
    assert relay.close_contacts() is True
    assert relay.contacts_closed is True and pin.state == energized
    relay.open_contacts()
    relay.open_contacts()  # again: harmless
    assert relay.contacts_closed is False and pin.state == 1 - energized
    relay.close_contacts()
    before = len(pin.states)
    relay.close()  # opens before releasing the line (after that, the line floats)
    assert pin.states[before].state == 1 - energized
    relay.open_contacts()  # after close: a no-op, never an error


def test_a_pin_used_twice_is_refused(mock_factory: MockFactory) -> None:
    with Relay("contactor", PinConfig(17), pin_factory=mock_factory), pytest.raises(GPIOPinInUse):
        Relay("safety", PinConfig(17), pin_factory=mock_factory)


@pytest.mark.parametrize("active_high", [False, True])
def test_button_callbacks_follow_the_polarity(mock_factory: MockFactory, active_high: bool) -> None:
    presses: list[str] = []
    button = PushButton("start", PinConfig(19, active_high), pin_factory=mock_factory)
    button.on_press(lambda: presses.append("press"))
    button.on_release(lambda: presses.append("release"))
    pin = mock_factory.pin(19)
    assert not button.is_pressed  # the pull holds it released
    press, release = (pin.drive_high, pin.drive_low) if active_high else (pin.drive_low, pin.drive_high)
    press()
    assert button.is_pressed and presses == ["press"]
    release()
    assert not button.is_pressed and presses == ["press", "release"]
    button.close()


def test_a_failing_callback_does_not_stop_the_next(mock_factory: MockFactory) -> None:
    got: list[int] = []
    button = PushButton("start", PinConfig(19, False), pin_factory=mock_factory)
    button.on_press(lambda: 1 / 0)
    button.on_press(lambda: got.append(1))
    mock_factory.pin(19).drive_low()
    assert got == [1]
    button.close()


def test_emergency_stop_opens_the_contactor_before_anyone_is_told(mock_factory: MockFactory) -> None:
    contactor = Relay("contactor", PinConfig(17), pin_factory=mock_factory)
    estop = EmergencyStop(PinConfig(26, False), [contactor], pin_factory=mock_factory)
    seen_by_listener: list[bool] = []
    estop.on_press(lambda: seen_by_listener.append(contactor.contacts_closed))
    contactor.close_contacts()
    mock_factory.pin(26).drive_low()
    # Callbacks run synchronously on mock pins: the contactor is open when drive_low returns.
    assert contactor.contacts_closed is False
    assert seen_by_listener == [False]
    # While pressed, the contactor refuses to close, whatever the engine asks.
    assert contactor.close_contacts() is False and not contactor.contacts_closed
    mock_factory.pin(26).drive_high()
    assert contactor.close_contacts() is True
    estop.close()
    contactor.close()


def test_emergency_stop_from_another_thread(mock_factory: MockFactory) -> None:
    # As on a Pi, where gpiozero calls back on its own thread while the engine runs elsewhere.
    contactor = Relay("contactor", PinConfig(17), pin_factory=mock_factory)
    estop = EmergencyStop(PinConfig(26, False), [contactor], pin_factory=mock_factory)
    told = threading.Event()
    estop.on_press(told.set)
    contactor.close_contacts()
    threading.Thread(target=mock_factory.pin(26).drive_low).start()
    assert told.wait(10)
    assert not contactor.contacts_closed
    mock_factory.pin(26).drive_high()
    estop.close()
    contactor.close()


class HeldDownPin(MockPWMPin):
    """A button line held low by a pressed button: the pull-up cannot raise it."""

    def _set_pull(self, value: str) -> None:
        self._pull = value
        self.drive_low()


def test_emergency_stop_pressed_at_start_keeps_the_contactor_open(mock_factory: MockFactory) -> None:
    contactor = Relay("contactor", PinConfig(17), pin_factory=mock_factory)
    contactor.close_contacts()
    mock_factory.pin(26, pin_class=HeldDownPin)  # pressed before the button device exists
    estop = EmergencyStop(PinConfig(26, False), [contactor], pin_factory=mock_factory)
    assert estop.is_pressed and not contactor.contacts_closed
    assert contactor.close_contacts() is False
    estop.close()
    contactor.close()


def test_board_builds_everything_from_the_pin_map_and_closes_safe(mock_factory: MockFactory) -> None:
    hal = HalConfig()
    board = GpioBoard(hal, pin_factory=mock_factory, safety=True, cp="cp1")
    assert board.contactor and board.safety and board.led and board.start_button and board.estop
    board.contactor.close_contacts()
    board.safety.close_contacts()
    board.led.show("CHARGING")
    board.close()
    for pin in (hal.pins.contactor.pin, hal.pins.safety.pin):
        assert [s.state for s in mock_factory.pin(pin).states][-2:] == [True, False]  # closed, then opened
    # Every line is released: a new board can take them again.
    GpioBoard(hal, pin_factory=mock_factory, safety=True).close()


def test_monitor_side_board_holds_only_the_safety_line(mock_factory: MockFactory) -> None:
    hal = HalConfig()
    with GpioBoard(hal, pin_factory=mock_factory, engine=False, safety=True) as monitor, \
            GpioBoard(hal, pin_factory=mock_factory) as engine:
        assert monitor.contactor is None and monitor.safety is not None
        assert engine.safety is None and engine.contactor is not None


def test_board_releases_what_it_built_when_a_pin_is_taken(mock_factory: MockFactory) -> None:
    hal = HalConfig()
    with Relay("squatter", hal.pins.led_red, pin_factory=mock_factory), pytest.raises(GPIOPinInUse):
        GpioBoard(hal, pin_factory=mock_factory)
    GpioBoard(hal, pin_factory=mock_factory).close()  # nothing was left reserved


def test_pin_factory_by_name() -> None:
    factory = make_pin_factory("mock")
    assert isinstance(factory, MockFactory)
    factory.close()
    with pytest.raises(GpioError, match="unknown pin factory 'gpio'"):
        make_pin_factory("gpio")


@pytest.mark.parametrize("name", ["lgpio", "rpigpio", "pigpio"])
def test_a_pi_factory_off_a_pi_is_a_clear_error(name: str) -> None:
    try:
        factory = make_pin_factory(name)
    except GpioError as exc:
        assert name in str(exc) and "mock" in str(exc)
    else:  # on a real Pi it works
        factory.close()
