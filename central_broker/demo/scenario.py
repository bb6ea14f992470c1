"""The reference scenario (DESIGN.md), as data: what happens at which domain minute.

Minute 1 EV1 connects, 2 EV2, 4 EV3, 8 EV1 stops, 9 EV2 and EV3 stop. `--chaos` adds a kill -9 of
the leader's `evnet cp` at minute 5, a hung engine (SIGSTOP) for its monitor to catch at 6 and a
broker restart at 7. Each EV belongs to its driver (EV1 to D1, ...), who asks for a charge at its
charge point as it plugs in and stops it from the app.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Act(Enum):
    ARRIVE = "arrive"          # the driver asks at `cp`, the EV plugs in and wants 32 A
    STOP = "stop"              # the driver stops the charge from the app, then unplugs
    KILL_LEADER = "kill_leader"  # kill -9 of the leader's evnet cp; the supervisor starts it again
    HANG_ENGINE = "hang_engine"  # SIGSTOP of a follower's evnet cp: its monitor must catch it
    RESTART_BROKER = "restart_broker"


@dataclass(frozen=True)
class Step:
    minute: float
    act: Act
    who: int = 0               # 1..3: EV/driver/charge point number (ARRIVE, STOP)

    def __str__(self) -> str:
        return f"minute {self.minute:g}: {self.act.value}{f' {self.who}' if self.who else ''}"


REFERENCE = (
    Step(1, Act.ARRIVE, 1), Step(2, Act.ARRIVE, 2), Step(4, Act.ARRIVE, 3),
    Step(8, Act.STOP, 1), Step(9, Act.STOP, 2), Step(9, Act.STOP, 3),
)
CHAOS = (Step(5, Act.KILL_LEADER), Step(6, Act.HANG_ENGINE), Step(7, Act.RESTART_BROKER))
END_MINUTE = 10.0


def timeline(chaos: bool) -> list[Step]:
    """The steps in the order they happen (a stable sort: the reference's order within a minute)."""
    return sorted(REFERENCE + (CHAOS if chaos else ()), key=lambda s: s.minute)


def real_seconds(minute: float, speed: float) -> float:
    """Domain minutes as real seconds at `speed` (60: a minute a second)."""
    return minute * 60.0 / speed
