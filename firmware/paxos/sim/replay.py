"""Someone on the broker without the site key: records every frame between replicas, and the Last
Wills the broker publishes, and publishes old ones again, all along (issue 9, A4).

Every `every` seconds (the world picks a quarter of `election_min`) it replays the newest
Heartbeat to each peer of whoever sent a heartbeat last (the leader, or the one that just died
or stopped: as in the attack that froze failover) and the newest HeartbeatReply each peer sent
it, and a few frames picked at random from everything recorded; every `will_every`-th time also
a Will picked at random. The frames are authentic (MACs are not modelled: these are the real messages), so only
what the protocol makes of them protects it: liveness must not be fooled (checks.py's liveness
check fails when an election is held off past the run's end) and safety must hold as always.

The bug switch `stale_liveness` (`StaleLiveness`) brings back the trust of before: any heartbeat
or reply proves its sender alive on arrival, and every Will is taken.
"""

from __future__ import annotations

import random

from firmware.paxos.core import messages as m
from firmware.paxos.core.replica import Replica


class Replayer:
    def __init__(self, rng: random.Random, every: float, picks: int = 3, keep: int = 2000, will_every: int = 5) -> None:
        self.rng = rng
        self.every = every
        self.will_every = will_every
        self.rounds = 0
        self.picks = picks
        self.keep = keep
        self.leader = ""  # who sent the newest heartbeat
        self.heartbeats: dict[tuple[str, str], m.Message] = {}  # (from, to) -> the newest Heartbeat
        self.replies: dict[tuple[str, str], m.Message] = {}  # (from, to) -> the newest HeartbeatReply
        self.frames: list[tuple[str, m.Message]] = []  # (to, frame), a sample of everything, at most `keep`
        self.seen = 0
        self.wills: list[tuple[str, int]] = []
        self.replayed = 0

    def record(self, src: str, dst: str, msg: m.Message) -> None:
        if isinstance(msg, m.Heartbeat):
            self.leader = src
            self.heartbeats[(src, dst)] = msg
        elif isinstance(msg, m.HeartbeatReply):
            self.replies[(src, dst)] = msg
        self.seen += 1  # reservoir sampling: every frame ever sent is equally likely to be kept
        if len(self.frames) < self.keep:
            self.frames.append((dst, msg))
        else:
            i = self.rng.randrange(self.seen)
            if i < self.keep:
                self.frames[i] = (dst, msg)

    def record_will(self, node: str, epoch: int) -> None:
        self.wills.append((node, epoch))

    def frames_now(self) -> list[tuple[str, m.Message]]:
        """What to publish again now: (to, frame)."""
        out = [(dst, msg) for (src, dst), msg in self.heartbeats.items() if src == self.leader]
        out += [(dst, msg) for (_, dst), msg in self.replies.items() if dst == self.leader]
        if self.frames:
            out += [self.rng.choice(self.frames) for _ in range(self.picks)]
        self.replayed += len(out)
        return out

    def will_now(self) -> tuple[str, int] | None:
        self.rounds += 1
        return self.rng.choice(self.wills) if self.wills and self.rounds % self.will_every == 0 else None


class StaleLiveness(Replica):
    """The bug switch `stale_liveness`: a heartbeat or reply proves its sender alive when it arrives
    (whatever it echoes), and a Will is taken whatever connection it names."""

    def _proof(self, epoch: int, seq: int) -> float | None:
        return self.now

    def leader_gone(self, node: str, epoch: int, now: float) -> bool:
        self.gone_epoch.pop(node, None)
        self.peer_stamp.pop(node, None)
        return super().leader_gone(node, epoch, now)


__all__ = ["Replayer", "StaleLiveness"]
