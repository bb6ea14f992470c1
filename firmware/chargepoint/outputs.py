"""What the bridge asks of the rest of `evnet cp`: one type per thing to do, dispatched with `match`.

To the site (the Paxos plumbing): `Propose`. Its result comes back as `Bridge.site_result(tag, ...)`.
To the engine: its own commands (`firmware/engine/commands.py`: `Authorize`, `Grant`, `ConfirmStart`,
`RefuseStart`, `StopSession`, `SetAvailable`; `Evse.command` or `apply_command`), and `TicketSettled`
(its journal may forget a ticket). Times are on the engine's clock (its `monotonic()`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from firmware.engine.commands import (
    Authorize,
    ConfirmStart,
    EngineCommand,
    Grant,
    RefuseStart,
    SetAvailable,
    StopSession,
)


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


Output = Propose | EngineCommand | TicketSettled

__all__ = ["BILLED", "NOT_AT_SITE", "SITE_TICKET", "Authorize", "ConfirmStart", "EngineCommand", "Grant", "Output",
           "Propose", "RefuseStart", "SetAvailable", "StopSession", "Tag", "TicketSettled"]
