"""What the leader's charge point proposes to keep the site's state true and small.

The site machine never reads a clock, so nothing in it expires by itself: a member proposes
`expire` (reservations and drivers' requests whose time passed), `close_lost` (the session of a
charge point silent for `cp_lost_ms`: its ticket from the last checkpoint) and `forget_quiet`
(Paxos clients gone quiet, and their de-duplication entries). Only the leader does it, so the log
does not fill with the same command from every member; each is safe to propose twice (the second
answers `not_silent`, `no_session` or drops nothing).

Pure: given the committed state (site time inside it) and the real time, what to propose now.
"""

from __future__ import annotations

from firmware.site import member_command
from firmware.site.sessions import silent_ms
from firmware.site.state import SiteState

QUIET_MS = 3_600_000  # a client not heard from for an hour is forgotten (its retries are long over)


class Housekeeping:
    """Paces the leader's housekeeping proposals: at most one round every `every_s` real seconds."""

    def __init__(self, every_s: float = 5.0) -> None:
        self.every_s = every_s
        self._next = 0.0

    def due(self, st: SiteState, leader: bool, now: float) -> list[bytes]:
        """The member commands to propose now (`now`: real seconds, monotonic)."""
        if not leader or now < self._next:
            return []
        self._next = now + self.every_s
        out = []
        if any(r.expires <= st.now for table in (st.reservations, st.authorizations) for r in table.values()):
            out.append(member_command("expire", {}))
        for s in st.sessions.values():
            if silent_ms(st, s) >= st.params.cp_lost_ms:  # the machine's own measure of it (close_lost)
                out.append(member_command("close_lost", {"cp": s.cp}))
        if any(st.now - last >= QUIET_MS for last in st.clients.values()):
            out.append(member_command("forget_quiet", {"quiet_ms": QUIET_MS}))
        return out
