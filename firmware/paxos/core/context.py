"""What the Paxos layer tells a state machine with every command it applies.

The machine must be deterministic, so it reads no clock: time enters as the stamp the proposing
leader put on the slot's value (its ballot and its monotonic clock when it proposed the batch),
the same bytes at every replica. A value a later leader recovers and proposes again keeps its
first stamp.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Context:
    """Given by the Paxos layer with every command."""

    client: str               # the Paxos client id the command came from
    member: bool              # proposed by a site member (its own replica; the site key vouches for it)
    office: tuple[int, str]   # the proposing leader's ballot (round, node): orders leaders' terms
    now_ms: int               # the proposing leader's monotonic clock (ms) when it proposed the command
