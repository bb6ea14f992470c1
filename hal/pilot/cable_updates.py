"""What one end of the virtual cable tells the other, as checked data (sans I/O).

An update is a kind and a body: `duty` {"duty": 16.7}, `load` {"load": "C", "diode": true},
`current` {"a": 16.0}, `msg` {"m": {...}} (a high-level message), `ping` {}. In one process the
bodies are handed over as dicts; between processes each update is one line of JSON with its kind
under "k" (`encode_line`, `decode_line`).

Everything here distrusts its input: a line is size-capped before it is parsed, numbers are
range-checked before they are converted (a 400-digit integer would overflow `float`), and every
parser raises `UpdateError`, and nothing else, for anything that is not a valid update, so a
reader can drop the update, count it and keep reading.
"""

from __future__ import annotations

import json
import math
import reprlib
from typing import Any

from hal.pilot.conversions import PilotValueError, check_duty
from hal.pilot.physics import EvLoad

MAX_MESSAGE_BYTES = 64 * 1024  # a high-level message, as compact JSON
MAX_LINE = MAX_MESSAGE_BYTES + 256  # one update on the TCP cable, without its newline
MAX_EV_CURRENT_A = 1000.0
KINDS = frozenset({"duty", "load", "current", "msg", "ping"})
_LOADS = frozenset(load.value for load in EvLoad)

_show = reprlib.Repr()
_show.maxstring = _show.maxother = 60


class UpdateError(ValueError):
    """Not a valid cable update: says what was wrong with it."""


def encode_line(kind: str, body: dict[str, Any]) -> bytes:
    """One update as a line of compact JSON (with its newline)."""
    return (json.dumps({"k": kind, **body}, separators=(",", ":"), allow_nan=False) + "\n").encode()


def decode_line(line: bytes) -> tuple[str, dict[str, Any]]:
    """(kind, body) of one line (without its newline); `UpdateError` for anything else."""
    if len(line) > MAX_LINE:
        raise UpdateError(f"a line of {len(line)} bytes, at most {MAX_LINE}")
    try:
        update = json.loads(line)
    except (ValueError, RecursionError) as exc:  # bad UTF-8 or JSON; nesting deeper than the parser goes
        raise UpdateError(f"not JSON: {type(exc).__name__}: {_show.repr(str(exc))} in {_show.repr(line)}") from None
    if not isinstance(update, dict):
        raise UpdateError(f"not a JSON object: {_show.repr(line)}")
    kind = update.pop("k", None)
    if not isinstance(kind, str) or kind not in KINDS:
        raise UpdateError(f"unknown kind {_show.repr(kind)} (expected one of {', '.join(sorted(KINDS))})")
    return kind, update


def _number(body: dict[str, Any], key: str, low: float, high: float) -> float:
    """body[key] as a float in [low, high]; big integers are compared before they are converted."""
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high \
            or (isinstance(value, float) and not math.isfinite(value)):
        raise UpdateError(f"{key!r} must be a number from {low:g} to {high:g}, got {_show.repr(value)}")
    return float(value)


def parse_duty(body: dict[str, Any]) -> float:
    """The EVSE's PWM duty (%) an EV end is told: one an EVSE may send (0, 5, 10-96 or 100)."""
    try:
        return check_duty(_number(body, "duty", 0.0, 100.0))
    except PilotValueError as exc:
        raise UpdateError(str(exc)) from None


def parse_load(body: dict[str, Any]) -> tuple[EvLoad, bool]:
    """What the EV puts on the pilot, and whether its diode is there."""
    load, diode = body.get("load"), body.get("diode")
    if not isinstance(load, str) or load not in _LOADS:
        raise UpdateError(f"'load' must be one of {', '.join(v.value for v in EvLoad)}, got {_show.repr(load)}")
    if not isinstance(diode, bool):
        raise UpdateError(f"'diode' must be true or false, got {_show.repr(diode)}")
    return EvLoad(load), diode


def parse_current(body: dict[str, Any]) -> float:
    """The current the EV draws (A per phase), 0 to `MAX_EV_CURRENT_A`."""
    return _number(body, "a", 0.0, MAX_EV_CURRENT_A)


def parse_message(body: dict[str, Any]) -> dict[str, Any]:
    """The high-level message an update carries (a dict; its fields are the protocol's to check)."""
    message = body.get("m")
    if not isinstance(message, dict):
        raise UpdateError(f"'m' must be a JSON object, got {_show.repr(message)}")
    return message
