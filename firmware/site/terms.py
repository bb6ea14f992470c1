"""Site time: the only clock of the machine, made of the proposers' stamps.

Each command carries its leader's office (ballot) and that leader's monotonic clock. Clocks of
two leaders are not comparable, so the state keeps the office of the current term and an
offset: site time = the term's leader clock + offset, chosen when the term starts so that site
time goes on from where the last term left it (never backwards, never a jump). Within a term,
site time is the highest stamp seen. A command from an older office (a value a new leader
recovered and proposed again) happens at the current site time: its stamp means nothing here.

A new term restarts every lease still running, in full (budget.py, `new_term`): the new leader
cannot know when its predecessor saw a grant chosen, only that it was before its own first
command. The gap between the two leaders' last and first stamps counts as no time at all: safe
for leases (they only get longer), lenient for expiries (a reservation lasts that much longer).
"""

from __future__ import annotations

from firmware.paxos.core.context import Context
from firmware.site.errors import SiteError
from firmware.site.state import SiteState

MAX_CLOCK_MS = 2**62


def office_of(ctx: Context) -> tuple[int, str]:
    office = ctx.office
    if (not isinstance(office, tuple) or len(office) != 2 or not isinstance(office[0], int)
            or not isinstance(office[1], str) or not isinstance(ctx.now_ms, int)
            or not 0 <= ctx.now_ms <= MAX_CLOCK_MS):
        raise SiteError("internal", f"the Paxos layer gave a bad context: office {office!r}, now_ms {ctx.now_ms!r}")
    return office[0], office[1]


def advance(st: SiteState, ctx: Context) -> None:
    """Move `st` to the time of this command (and into a new term if its office is newer)."""
    office = office_of(ctx)
    if st.office is None or office > st.office:
        st.office = office
        st.offset = st.now - ctx.now_ms
        st.budget.new_term(st.now)
    elif office == st.office:
        st.now = max(st.now, ctx.now_ms + st.offset)
