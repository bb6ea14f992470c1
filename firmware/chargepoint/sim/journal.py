"""What a charge point's engine journal keeps through kill -9 (firmware/engine/journal.py, modelled).

The real journal appends each record durably before the engine acts on it (`SessionOpened` before
the contactor may close, a ticket before it is sent), so after a kill -9 it holds exactly what was
appended: the session left open, if any, and the tickets the site has not taken.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from firmware.engine.metering import Ticket
from hal.meter.reading import MeterReading


@dataclass
class SimJournal:
    opened: dict[str, tuple[str, MeterReading]] = field(default_factory=dict)  # session -> (driver, first reading)
    untaken: dict[str, Ticket] = field(default_factory=dict)

    def open(self, session: str, driver: str, start: MeterReading) -> None:
        self.opened[session] = (driver, start)

    def closed(self, ticket: Ticket) -> None:
        self.opened.pop(ticket.session_id, None)
        self.untaken[ticket.session_id] = ticket

    def voided(self, session: str) -> None:
        self.opened.pop(session, None)

    def taken(self, session: str) -> None:
        self.untaken.pop(session, None)
