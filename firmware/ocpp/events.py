"""What the OCPP core takes and returns: typed values, one vocabulary for OCPP 1.6J and 2.0.1.

Inputs come from the link (frames, decoded by rpc.py; the link going up or down) and from the charge point
(its connector's status, sessions, meter readings, the site's answers). Outputs are what to send to the
CSMS, what to propose to the site, and when to start again. Times: `now` is wall-clock unix seconds for the
protocol's timers; a reading or a session carries its own timestamp (the engine's domain time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from firmware.ocpp.rpc import CallIn, ErrorIn, ResultIn

# -- from the link ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class LinkUp:
    pass


@dataclass(frozen=True)
class LinkDown:
    pass


# -- from the charge point ------------------------------------------------------------------------------

# The connector's status in OCPP 1.6's words (2.0.1's are derived from them).
STATUSES = ("Available", "Preparing", "Charging", "SuspendedEV", "SuspendedEVSE", "Finishing", "Reserved",
            "Unavailable", "Faulted")


@dataclass(frozen=True)
class Connector:
    status: str                  # one of STATUSES
    fault: str | None = None     # the engine's fault code when Faulted


# The measurands this charge point measures, with their units (OCPP's names in both versions).
MEASURANDS = {"Energy.Active.Import.Register": "Wh", "Power.Active.Import": "W", "Current.Import": "A",
              "Voltage": "V"}


@dataclass(frozen=True)
class Sample:
    """A meter reading (what MeterValues and transactions report)."""

    at: float                    # unix seconds (domain time)
    energy_wh: float             # the import register
    power_w: float
    current_a: float             # the highest phase
    voltage_v: float

    def value(self, measurand: str) -> float:
        """The reading of one of MEASURANDS (KeyError for another)."""
        match measurand:
            case "Energy.Active.Import.Register":
                return self.energy_wh
            case "Power.Active.Import":
                return self.power_w
            case "Current.Import":
                return self.current_a
            case "Voltage":
                return self.voltage_v
        raise KeyError(measurand)


@dataclass(frozen=True)
class TxStarted:
    session: str                 # the charge point's session id
    token: str                   # the driver or id token it is billed to
    sample: Sample               # the first reading


@dataclass(frozen=True)
class TxEnded:
    session: str
    sample: Sample               # the last reading
    reason: str                  # the site's stop reason (firmware/site/commands.py STOP_REASONS)


@dataclass(frozen=True)
class TokenPresented:
    """An id token presented at the point (a card reader, the console's button): the CSMS authorizes it."""

    token: str


@dataclass(frozen=True)
class SiteAnswer:
    """The site's result of a proposal (`result` None: no answer in time, the site cannot be reached)."""

    ref: int
    result: dict[str, Any] | None


Event = LinkUp | LinkDown | CallIn | ResultIn | ErrorIn | Connector | Sample | TxStarted | TxEnded | TokenPresented \
    | SiteAnswer

# -- outputs ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Send:
    """A frame for the CSMS (text, already validated)."""

    frame: str


@dataclass(frozen=True)
class Propose:
    """A site command for this charge point (`op`, `args` as docs/site.md); its answer comes back as
    `SiteAnswer(ref)`."""

    ref: int
    op: str
    args: dict[str, Any]


@dataclass(frozen=True)
class LocalStart:
    """The CSMS cannot be reached: let the site's drivers and the local list decide on this token."""

    token: str


@dataclass(frozen=True)
class Restart:
    """A Reset: the process ends (its sessions journaled) and its service manager starts it again."""

    reason: str


Output = Send | Propose | LocalStart | Restart
