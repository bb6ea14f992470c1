"""What the bridge asks of the rest of `evnet cp`: one type per thing to do, dispatched with `match`.

To the site (the Paxos plumbing): `Propose`. Its result comes back as `Bridge.site_result(tag, ...)`.
To the engine (`Evse`'s thread-safe inputs): `Authorize`, `Grant`, `ConfirmStart`, `RefuseStart`,
`StopSession`, `SetAvailable`, `TicketSettled`. Times are on the engine's clock (its `monotonic()`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Tag:
    """Names one proposal of this bridge: the plumbing hands it back with the command's result."""

    op: str
    n: int

    def __str__(self) -> str:
        return f"{self.op}#{self.n}"


@dataclass(frozen=True)
class Propose:
    """Propose `command` (a member command, the site's own encoding) to the site as this charge point."""

    tag: Tag
    command: bytes


@dataclass(frozen=True)
class Authorize:
    """`Evse.authorize(driver)`: a session for this driver may open (its start still waits for the site)."""

    driver: str


@dataclass(frozen=True)
class Grant:
    """`Evse.set_limit(amps, until, reason)`: offer up to `amps` until `until` (engine clock), then the fallback;
    `reason` is the site's `limit_reason` (why this much), for the charge point's telemetry."""

    amps: float
    until: float
    reason: str = ""


@dataclass(frozen=True)
class ConfirmStart:
    """`Evse.confirm_start(session_id)`: the site committed its start (or the local list allowed it)."""

    session_id: str


@dataclass(frozen=True)
class RefuseStart:
    """`Evse.refuse_start(session_id, why)`: the start was refused; it ends without energy and without a ticket."""

    session_id: str
    why: str


@dataclass(frozen=True)
class StopSession:
    """`Evse.request_stop(reason, session_id)`: the site decided this session ends (operator, driver, ...)."""

    session_id: str
    reason: str


@dataclass(frozen=True)
class SetAvailable:
    """`Evse.set_available(available)`: OUT_OF_ORDER by the site's operator (False), or back in service."""

    available: bool


# How a ticket was settled with the site (`TicketSettled.outcome`).
BILLED = "billed"            # the site made its ticket from this charge point's stop (the same energy)
SITE_TICKET = "site_ticket"  # the site had closed the session itself (`close_lost`): its ticket is the one
NOT_AT_SITE = "not_at_site"  # the site never had this session (refused a late report): the local ticket only


@dataclass(frozen=True)
class TicketSettled:
    """`Evse.ticket_taken(session_id)`: the local ticket may leave the journal. `site_ticket` is the site's
    ticket (docs/site.md) when it has one; with SITE_TICKET it is the truth and the local one is dropped."""

    session_id: str
    outcome: str
    site_ticket: dict[str, Any] | None


Output = Propose | Authorize | Grant | ConfirmStart | RefuseStart | StopSession | SetAvailable | TicketSettled
