"""Where the engine writes its sessions and tickets down, and hands the tickets over: the journal's adapter.

The core decides what to record (`SessionOpened`, `TicketClosed`); this writes it to the journal
first, then acts: a ticket is printed, published and given to `on_ticket` only once it is on disk,
and leaves the journal when it was taken (the broker acknowledged it; with no broker configured,
once it was printed; for a charge point of a site, once the site has it: `taken`). At start it
tells what a crash left: the session still open, and it sends again the tickets nobody took.
"""

from __future__ import annotations

from collections.abc import Callable

from evnet.logs import event_logger
from firmware.engine.core import SessionOpened, SessionVoided
from firmware.engine.journal import Closed, Journal, JournalError, Opened, Taken, Voided
from firmware.engine.metering import Ticket
from firmware.engine.publisher import Publisher


class Ledger:
    def __init__(self, journal: Journal, publisher: Publisher | None, *, boot_id: str, cp: str | None = None,
                 print_tickets: bool = True, on_ticket: Callable[[Ticket], None] | None = None,
                 site_takes: bool = False) -> None:
        self.journal = journal
        self.site_takes = site_takes  # a site's charge point: a ticket leaves the journal only once the site has it
        self.publisher = publisher
        self.boot_id = boot_id
        self.print_tickets = print_tickets
        self.on_ticket = on_ticket
        self.log = event_logger("ledger", cp=cp)

    @property
    def left_open(self) -> Opened | None:
        """The session a crash (kill -9, a power cut) left open, if any."""
        return self.journal.state.open

    @property
    def untaken(self) -> list[Ticket]:
        """The tickets nobody has taken yet (a charge point of a site reports them to the site again)."""
        return list(self.journal.state.tickets.values())

    def resend(self) -> None:
        """The tickets nobody took before the last stop: send them again."""
        for ticket in list(self.journal.state.tickets.values()):
            self.log.info("ledger.ticket_resent", session=ticket.session_id, kwh=ticket.kwh)
            if self.publisher is not None:
                self.publisher.ticket(ticket)
            else:
                if self.print_tickets:
                    print(ticket.line(), flush=True)
                self._deliver(ticket)

    def session_opened(self, opened: SessionOpened) -> None:
        """On disk before the contactor may close; `JournalError` if it could not be written."""
        start = opened.start
        self.journal.append(Opened(opened.session_id, opened.driver, start.import_kwh, start.taken_at, self.boot_id))

    def session_voided(self, voided: SessionVoided) -> None:
        """The open session ended without energy and without a ticket. If this cannot be written, a restart
        closes it from the meter as a session left open: a ticket of (about) nothing, not a loss."""
        try:
            self.journal.append(Voided(voided.session_id))
        except JournalError as exc:
            self.log.error("ledger.journal_failed", session=voided.session_id, error=str(exc))

    def ticket_closed(self, ticket: Ticket) -> None:
        try:
            self.journal.append(Closed(ticket))
        except JournalError as exc:  # still hand it over: printed and published is better than lost
            self.log.error("ledger.journal_failed", session=ticket.session_id, error=str(exc))
        if self.print_tickets:
            print(ticket.line(), flush=True)
        if self.publisher is not None:
            self.publisher.ticket(ticket)
        else:
            self._deliver(ticket)
        if self.on_ticket is not None:
            self.on_ticket(ticket)

    def collect(self) -> None:
        """Forget the tickets the broker acknowledged since the last call."""
        if self.publisher is not None:
            for session in self.publisher.taken():
                if not self.site_takes:  # a site's charge point: the broker's ack is not the site's
                    self.taken(session)

    def close(self) -> None:
        self.collect()
        self.journal.close()

    def _deliver(self, ticket: Ticket) -> None:
        """No broker: the console (and `on_ticket`) is who takes it, unless the site does."""
        if not self.site_takes:
            self.taken(ticket.session_id)

    def taken(self, session: str) -> None:
        """Someone has the ticket of `session` (the broker, the site): the journal may forget it."""
        try:
            self.journal.append(Taken(session))
        except JournalError as exc:  # it will be sent again at the next start: a duplicate, not a loss
            self.log.error("ledger.journal_failed", session=session, error=str(exc))
