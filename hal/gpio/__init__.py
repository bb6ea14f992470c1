"""GPIO devices of a charge point, through gpiozero: relays, the RGB status LED, the buttons.

    board = GpioBoard(config.hal, cp=config.cp_id)     # pin factory from hal.pin_factory
    board.contactor.close_contacts()                   # energy can flow (False if the e-stop blocks)
    board.contactor.open_contacts()                    # the safe state
    board.led.show("CHARGING")
    board.start_button.on_press(callback)
    board.estop.on_press(callback)                     # the contactor is already open when it runs

The simulated backend is gpiozero's own MockFactory (`make_pin_factory("mock")`): real gpiozero
code over mock pins; tests drive buttons with `factory.pin(26).drive_low()`.
"""

from hal.gpio.board import GpioBoard
from hal.gpio.buttons import EmergencyStop, PushButton
from hal.gpio.factory import FACTORIES, GpioError, make_pin_factory
from hal.gpio.relay import Relay
from hal.gpio.status_led import LOOKS, LedLook, StatusLed

__all__ = ["FACTORIES", "LOOKS", "EmergencyStop", "GpioBoard", "GpioError", "LedLook", "PushButton", "Relay",
           "StatusLed", "make_pin_factory"]
