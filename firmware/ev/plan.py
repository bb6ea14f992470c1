"""EV plans: short scripts that say what an emulated EV does, in the manner of EVerest's car simulator.

    plug; wait 60; charge 32; wait 420; stop; unplug

Commands are separated by `;` or new lines; `#` starts a comment. Times are seconds of
domain time unless they carry a unit (`90s`, `7m`, `1.5h`). The commands:

    plug                 connect the cable (pilot state B)
    unplug               disconnect the cable (pilot state A); draws nothing from then on
    wait T               do nothing for T (seconds, or with a unit s/m/h)
    wait full            wait until the charge ends: battery full, or stopped by the charge point
    charge [A]           ask for energy (state C), drawing at most A amps (default: the EV's maximum)
    stop                 stop charging (back to state B; with HLC: PowerDelivery stop, SessionStop)
    hlc on|off           use ISO 15118-2 high-level communication, or PWM only
    soc P                battery state of charge, 0-100 %
    capacity KWH         battery capacity, kWh (> 0)
    need KWH             energy asked for in ChargeParameterDiscovery (default: to full)
    max A                the EV's own maximum current, 1-80 A
    phases 1|3           phases the on-board charger uses
    departure T          when the EV leaves, from the start of the charge (ChargeParameterDiscovery)
    ignore_stop on|off   keep drawing when the charge point withdraws the PWM (a misbehaving EV)
    ventilation on|off   ask for energy in state D (needs ventilation) instead of C
    diode on|off         off: the EV's pilot diode is broken (the charge point must fault)

A mistake is a `PlanError` naming the line, the word and what was expected; so is an order that
cannot happen with a real cable: `charge`, `stop` or `wait full` before `plug` (or after `unplug`),
`plug` twice, `unplug` with nothing plugged in.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}
_TIME_RE = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)([smh]?)$")


class PlanError(ValueError):
    """A plan that cannot be run; the text says where (line, word) and what was expected."""


@dataclass(frozen=True)
class Step:
    """One command of a plan: its name, its argument (already checked), and where it was written."""

    command: str
    arg: float | bool | str | None = None
    line: int = 0
    word: int = 0

    def __str__(self) -> str:
        if self.arg is None:
            return self.command
        if isinstance(self.arg, bool):
            return f"{self.command} {'on' if self.arg else 'off'}"
        if isinstance(self.arg, float):
            return f"{self.command} {self.arg:g}"
        return f"{self.command} {self.arg}"


def _number(text: str, lo: float, hi: float, what: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"expected {what}, got {text!r}") from None
    if not math.isfinite(value) or not lo <= value <= hi:
        raise ValueError(f"expected {what}, got {text!r}")
    return value


def _time(text: str, what: str = "a time in seconds or with a unit (90, 90s, 7m, 1.5h)") -> float:
    m = _TIME_RE.match(text)
    if not m:
        raise ValueError(f"expected {what}, got {text!r}")
    return float(m.group(1)) * UNITS[m.group(2) or "s"]


def _switch(text: str) -> bool:
    if text not in ("on", "off"):
        raise ValueError(f"expected 'on' or 'off', got {text!r}")
    return text == "on"


def _wait(text: str) -> float | str:
    if text == "full":
        return "full"
    return _time(text, "a time (90, 90s, 7m, 1.5h) or 'full'")


# command -> (parser of its one argument or None for no argument, whether the argument is optional)
_COMMANDS = {
    "plug": (None, False),
    "unplug": (None, False),
    "stop": (None, False),
    "wait": (_wait, False),
    "charge": (lambda t: _number(t, 1, 80, "a current from 1 to 80 A"), True),
    "hlc": (_switch, False),
    "soc": (lambda t: _number(t, 0, 100, "a state of charge from 0 to 100 %"), False),
    "capacity": (lambda t: _number(t, 0.1, 1000, "a capacity from 0.1 to 1000 kWh"), False),
    "need": (lambda t: _number(t, 0, 1000, "an energy from 0 to 1000 kWh"), False),
    "max": (lambda t: _number(t, 1, 80, "a current from 1 to 80 A"), False),
    "phases": (lambda t: float(t) if t in ("1", "3") else _raise(f"expected 1 or 3, got {t!r}"), False),
    "departure": (_time, False),
    "ignore_stop": (_switch, False),
    "ventilation": (_switch, False),
    "diode": (_switch, False),
}
COMMANDS = tuple(_COMMANDS)
NEEDS_PLUGGED = ("charge", "stop", "unplug")  # and `wait full`: there is no charge to wait for unplugged


def _raise(message: str) -> float:
    raise ValueError(message)


def parse_plan(text: str) -> list[Step]:
    """The steps of `text`, or `PlanError` at the first mistake."""
    steps: list[Step] = []
    plugged = False
    for line_no, line in enumerate(text.splitlines() or [""], start=1):
        line = line.split("#", 1)[0]
        word_no = 0
        for part in line.split(";"):
            words = part.split()
            if not words:
                continue
            word_no += 1
            name, args = words[0].lower(), words[1:]
            where = f"plan line {line_no}, word {word_no} ({words[0]!r})"
            if name not in _COMMANDS:
                raise PlanError(f"{where}: unknown command; expected one of {', '.join(COMMANDS)}")
            parse, optional = _COMMANDS[name]
            if parse is None and args:
                raise PlanError(f"{where}: '{name}' takes no argument, got {' '.join(args)!r}")
            if parse is not None and len(args) > 1:
                raise PlanError(f"{where}: '{name}' takes one argument, got {' '.join(args)!r} "
                                f"(separate commands with ';')")
            if parse is not None and not args and not optional:
                raise PlanError(f"{where}: '{name}' needs an argument")
            arg = None
            if parse is not None and args:
                try:
                    arg = parse(args[0].lower())
                except ValueError as exc:
                    raise PlanError(f"{where}: {exc}") from None
            if name == "plug" and plugged:
                raise PlanError(f"{where}: the EV is already plugged in; 'unplug' first")
            if not plugged and (name in NEEDS_PLUGGED or (name == "wait" and arg == "full")):
                raise PlanError(f"{where}: the EV is not plugged in here; 'plug' must come before '{name}'")
            plugged = (plugged or name == "plug") and name != "unplug"
            steps.append(Step(name, arg, line_no, word_no))
            word_no += len(args)
    if not steps:
        raise PlanError("plan: empty; expected commands such as 'plug; charge 16; wait 60; stop; unplug'")
    return steps


def format_plan(steps: list[Step]) -> str:
    """The steps as one line, parseable again."""
    return "; ".join(str(s) for s in steps)
