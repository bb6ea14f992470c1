"""What a site (through `evnet cp`'s bridge) asks of the engine: one type per thing, one dispatch.

The bridge emits these as outputs; `Evse.command` queues one for its control loop, the site simulation
and the bridge's tests hand one to an `EngineCore` with the time. Either way `apply_command` is where a
command becomes the core's call. Times are on the engine's clock (its `monotonic()`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from firmware.engine.actions import Action
    from firmware.engine.core import EngineCore


@dataclass(frozen=True)
class Authorize:
    """A session for this driver may open (its start still waits for the site)."""

    driver: str


@dataclass(frozen=True)
class Grant:
    """Offer up to `amps` until `until` (engine clock), then the fallback; `reason` is the site's `limit_reason`
    (why this much), for the charge point's telemetry."""

    amps: float
    until: float
    reason: str = ""


@dataclass(frozen=True)
class ConfirmStart:
    """The site committed this session's start (or the local list allowed it): its contactor may close."""

    session_id: str


@dataclass(frozen=True)
class RefuseStart:
    """The start was refused: the session ends without energy and without a ticket."""

    session_id: str
    why: str


@dataclass(frozen=True)
class StopSession:
    """The site decided this session ends (operator, driver, ...); a stop for another session changes nothing."""

    session_id: str | None
    reason: str


@dataclass(frozen=True)
class SetAvailable:
    """OUT_OF_ORDER by the site's operator (False), or back in service."""

    available: bool


EngineCommand = Authorize | Grant | ConfirmStart | RefuseStart | StopSession | SetAvailable


def apply_command(core: EngineCore, command: EngineCommand, now: float) -> list[Action]:
    """The core's call for `command` at `now`: what to do (the core's actions)."""
    match command:
        case Authorize(driver):
            return core.authorize(driver, now)
        case Grant(amps, until, reason):
            return core.set_limit(amps, until, now, reason)
        case ConfirmStart(session_id):
            return core.confirm_start(session_id, now)
        case RefuseStart(session_id, why):
            return core.refuse_start(session_id, why, now)
        case StopSession(session_id, reason):
            return core.stop(reason, now, session_id)
        case SetAvailable(available):
            return core.set_available(available, now)
    raise TypeError(f"not an engine command: {command!r}")
