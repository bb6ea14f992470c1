"""What the engine core asks its adapters to do, besides the pilot's own actions (pilot_sm.py): one type each.

`EngineCore` returns a list of these; `evse.py` carries them out, and a charge point of a site also
shows them to its bridge (firmware/chargepoint), which reports them to the site.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from firmware.engine import pilot_sm as p
from firmware.engine.metering import Reading, Ticket


@dataclass(frozen=True)
class SendMessage:
    """Send this dict on the cable's message channel."""

    data: dict[str, Any]


@dataclass(frozen=True)
class ReadMeter:
    """Read the meter now and give the reading back with `token` (`meter_reading(r, token=...)`)."""

    token: int


@dataclass(frozen=True)
class StatusChanged:
    """The charge point's status (the status table of docs/architecture.md): drive the LED, publish it."""

    status: str
    fault: str | None


@dataclass(frozen=True)
class SessionOpened:
    """A session's first reading was taken: journal it before carrying out what follows (its contactor may close)."""

    session_id: str
    driver: str
    start: Reading


@dataclass(frozen=True)
class TicketClosed:
    ticket: Ticket


@dataclass(frozen=True)
class SessionVoided:
    """An opened session ended before its start was confirmed: no energy flowed, no ticket. Journal it (the
    session is no longer open)."""

    session_id: str
    driver: str
    reason: str


@dataclass(frozen=True)
class PlugChanged:
    """An EV was plugged in (`present`) or unplugged, as far as sessions go."""

    present: bool


@dataclass(frozen=True)
class EvMaxChanged:
    """The EV's own maximum current (ISO 15118 ChargeParameterDiscovery), or None: not known (PWM, no session)."""

    max_current_a: float | None


Action = (p.Action | SendMessage | ReadMeter | StatusChanged | SessionOpened | TicketClosed | SessionVoided
          | PlugChanged | EvMaxChanged)
