"""The simulated broker: decides, from the seeded rng, what happens to each message.

Loss, duplication, delay (with a tail long enough to reorder) and partitions: a partition is a
set of replicas cut off from the rest; clients reach every replica (they sit at the broker).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Network:
    rng: random.Random
    loss: float = 0.0
    duplicate: float = 0.0
    delay_min: float = 0.0002
    delay_max: float = 0.002
    slow: float = 0.05  # share of messages delayed by up to `slow_max` (reordering)
    slow_max: float = 0.040
    cut: frozenset[str] = field(default_factory=frozenset)  # replicas partitioned from the others
    replicas: frozenset[str] = field(default_factory=frozenset)
    sent: int = 0
    dropped: int = 0

    def partitioned(self, src: str, dst: str) -> bool:
        if src not in self.replicas or dst not in self.replicas:
            return False
        return (src in self.cut) != (dst in self.cut)

    def fate(self, src: str, dst: str) -> list[float]:
        """The delays after which copies of a message from src to dst arrive (empty: lost)."""
        self.sent += 1
        rng = self.rng
        if self.partitioned(src, dst) or (self.loss and rng.random() < self.loss):
            self.dropped += 1
            return []
        copies = 2 if self.duplicate and rng.random() < self.duplicate else 1
        out = []
        for _ in range(copies):
            d = rng.uniform(self.delay_min, self.delay_max)
            if rng.random() < self.slow:
                d += rng.uniform(0, self.slow_max)
            out.append(d)
        return out

    def heal(self) -> None:
        self.cut = frozenset()
        self.loss = 0.0
