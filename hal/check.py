"""`evnet hal-check`: what a person runs on a freshly wired Pi, before anything else.

It shows each status colour on the LED, clicks each relay after asking, reads the meter ten
times, reads the pilot, and ends with a summary. `--mock` runs the same checks on a laptop:
gpiozero's mock pins, the simulated meter (a real Modbus server) and a virtual pilot cable.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TextIO

from evnet.clock import RealClock
from evnet.config import Config, load_config, parse_config
from evnet.logs import setup_logging
from hal.gpio import LOOKS, GpioBoard, GpioError, Relay
from hal.meter import MeterError, open_meter
from hal.pilot import EV_PRESENT, PilotState, open_pilot

MOCK_TEST_LOAD_A = 10.0  # what the simulated meter measures during the check, so numbers move
METER_READS = 10

Ask = Callable[[str], bool | None]  # yes, no, or None: nobody could be asked (not a terminal)


@dataclass
class Outcome:
    name: str
    result: str  # "pass", "FAIL" or "skipped"
    detail: str


def mock_config(base: Config | None) -> Config:
    """`base` (or a bare charge point) with mock pins, the simulated meter and an in-process pilot cable."""
    if base is None:
        base = parse_config({"charge_point": {"id": "check", "site": "check", "price_eur_kwh": 0.0,
                                              "max_current_a": 32},
                             "site": {"members": ["check"], "limit_a": 32, "key_file": "unused"}}, "<hal-check>")
    hal = dataclasses.replace(base.hal, pin_factory="mock",
                              pilot=dataclasses.replace(base.hal.pilot, backend="simulated", cable="inproc"))
    meter = dataclasses.replace(base.meter, backend="simulated", poll_interval_s=0.1,
                                address="127.0.0.1:0" if base.meter.transport == "tcp" else base.meter.address)
    return dataclasses.replace(base, hal=hal, meter=meter)


class HalCheck:
    """The checks, in the order a person wiring a Pi wants them; each adds one `Outcome`."""

    def __init__(self, cfg: Config, *, mock: bool, ask: Ask, out: TextIO, pause_s: float) -> None:
        self.cfg, self.mock, self.ask, self.out, self.pause_s = cfg, mock, ask, out, pause_s
        self.outcomes: list[Outcome] = []

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def record(self, name: str, result: str, detail: str) -> None:
        self.outcomes.append(Outcome(name, result, detail))
        self.say(f"  -> {result}: {detail}")

    def run(self) -> int:
        where = "mock pins, simulated meter and pilot" if self.mock else f"pin factory {self.cfg.hal.pin_factory}"
        self.say(f"evnet hal-check: charge point {self.cfg.cp_id} ({where})")
        board = GpioBoard(self.cfg.hal, safety=True, cp=self.cfg.cp_id)
        try:
            self.check_led(board)
            for relay in (board.contactor, board.safety):
                assert relay is not None
                self.check_relay(relay)
            self.check_meter()
            self.check_pilot(board)
        finally:
            board.close()
        return self.summary()

    def check_led(self, board: GpioBoard) -> None:
        assert board.led is not None
        self.say("\nStatus LED: each status in turn")
        wrong = []
        for status, look in LOOKS.items():
            board.led.show(status)
            self.say(f"  {status:<13} {look.effect:<6} rgb{look.color}")
            if board.led.status != status or (look.effect == "steady" and board.led.color != look.color):
                wrong.append(status)
            time.sleep(self.pause_s)
        board.led.off()
        if wrong:
            self.record("LED", "FAIL", f"the LED did not take the look of {', '.join(wrong)}")
            return
        seen = True if self.mock else self.ask("Did the LED show green, green blinking, green breathing, orange, "
                                               "red blinking and dim white?")
        if seen is None:
            self.record("LED", "skipped", "not confirmed: nobody could be asked (run it in a terminal)")
        elif seen:
            self.record("LED", "pass", f"{len(LOOKS)} statuses shown")
        else:
            self.record("LED", "FAIL", "not seen as expected: check the wiring and the pins' polarity")

    def check_relay(self, relay: Relay) -> None:
        pin = getattr(self.cfg.hal.pins, relay.name).pin
        name = f"{relay.name} relay (GPIO{pin})"
        self.say(f"\n{name[0].upper()}{name[1:]}")
        if not self.mock and not self.ask(f"Click the {name}? Nothing may be powered through it."):
            self.record(name, "skipped", "not confirmed")  # no, or nobody to ask: never click unasked
            return
        closed = relay.close_contacts() and relay.contacts_closed
        time.sleep(self.pause_s)
        relay.open_contacts()
        if closed and not relay.contacts_closed:
            self.record(name, "pass", "closed, then opened again")
        else:
            self.record(name, "FAIL", "did not close" if not closed else "did not open again")

    def check_meter(self) -> None:
        m = self.cfg.meter
        self.say(f"\nEnergy meter: {m.model} over Modbus {m.transport.upper()}, {METER_READS} reads")
        load = MOCK_TEST_LOAD_A if self.mock else 0.0
        try:
            meter = open_meter(m, clock=RealClock(), cp_id=self.cfg.cp_id, load=load)
        except (OSError, ValueError, MeterError) as exc:
            self.record("meter", "FAIL", f"cannot open {m.model} at {m.address}: {exc}")
            return
        good, errors = 0, []
        try:
            for i in range(1, METER_READS + 1):
                try:
                    r = meter.read()
                except MeterError as exc:
                    errors.append(str(exc))
                    self.say(f"  #{i:<2} error: {exc}")
                else:
                    good += 1
                    volts = "/".join(f"{v:.1f}" for v in r.voltage_v)
                    amps = "/".join(f"{a:.1f}" for a in r.current_a)
                    self.say(f"  #{i:<2} {volts} V  {amps} A  {r.power_w / 1000:.2f} kW  {r.import_kwh:.4f} kWh")
                time.sleep(m.poll_interval_s)
        finally:
            meter.close()
        if good == METER_READS:
            self.record("meter", "pass", f"{good} of {METER_READS} reads good")
        else:
            self.record("meter", "FAIL", f"{good} of {METER_READS} reads good; last error: {errors[-1]}")

    def check_pilot(self, board: GpioBoard) -> None:
        self.say("\nControl pilot: +12 V out, state read back")
        try:
            pilot = open_pilot(self.cfg.hal, pin_factory=board.pin_factory, cp=self.cfg.cp_id)
        except Exception as exc:  # noqa: BLE001 - any failure to open the pilot is what this check reports
            self.record("pilot", "FAIL", f"cannot open the pilot: {exc}")
            return
        try:
            pilot.set_steady()
            reading = pilot.read()
        finally:
            pilot.close()
        low = "none (no PWM)" if reading.low_v is None else f"{reading.low_v:+.1f} V"
        self.say(f"  state {reading.state}, high {reading.high_v:+.1f} V, low {low}")
        if reading.state == PilotState.A or (reading.state in EV_PRESENT and not reading.fault):
            self.record("pilot", "pass", f"state {reading.state}" + (" (no EV)" if reading.state == "A" else ""))
        else:
            self.record("pilot", "FAIL", f"state {reading.state}: expected A with no EV plugged in")

    def summary(self) -> int:
        self.say("\nSummary")
        for o in self.outcomes:
            self.say(f"  {o.result:<8} {o.name}: {o.detail}")
        counts = {r: sum(o.result == r for o in self.outcomes) for r in ("pass", "FAIL", "skipped")}
        self.say(f"{counts['pass']} passed, {counts['FAIL']} failed, {counts['skipped']} skipped")
        return 1 if counts["FAIL"] else 0


def terminal_ask(yes: bool) -> Ask:
    def ask(question: str) -> bool | None:
        if yes:
            return True
        if not sys.stdin.isatty():
            print(f"  {question} [not asked: not a terminal; --yes to confirm]", flush=True)
            return None
        return input(f"  {question} [y/N] ").strip().lower() in ("y", "yes")

    return ask


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="evnet hal-check", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", help="the charge point's TOML file")
    parser.add_argument("--mock", action="store_true", help="mock GPIO, the simulated meter and a virtual pilot")
    parser.add_argument("--yes", action="store_true", help="click the relays without asking")
    parser.add_argument("--pause", type=float, default=None, help="seconds each LED look and relay click lasts")
    args = parser.parse_args(argv)
    setup_logging("WARNING")
    if not args.config and not args.mock:
        parser.error("give --config FILE for this charge point, or --mock to try it on a laptop")
    cfg = load_config(args.config) if args.config else None
    if args.mock:
        cfg = mock_config(cfg)
    assert cfg is not None
    pause = args.pause if args.pause is not None else (0.2 if args.mock else 1.0)
    try:
        return HalCheck(cfg, mock=args.mock, ask=terminal_ask(args.yes), out=sys.stdout, pause_s=pause).run()
    except GpioError as exc:  # no GPIO here, or not usable: one line, not a traceback
        print(f"evnet hal-check: {exc}", file=sys.stderr)
        return 2
