"""The rule of the fuse, and the only code that changes a grant or a lease (etcd raft's tracker is the model).

The rule: at every instant, the sum over charge points of what each *may draw* is at most the
site limit. In the site's view a charge point may draw, at site time t (all per phase):

    may_draw(t) = max(fallback,
                      grant  while t < lease_until + reaction,
                      prior  while t < prior_until)

- `grant` while its lease holds: the charge point uses the latest grant it knows only while its
  own lease runs (which ends before `lease_until`, params.py's drift margin);
- at its lease end it falls back; its EV takes up to `reaction` to follow, hence the grant until
  `lease_until + reaction`;
- `prior`: a grant it was lowered from. It may not know of the lowering before its lease (granted
  with the old value) ends, so the old grant counts until `lease_until + reaction` *as it was at the
  lowering*, unless it acknowledges the lower grant (its meter shows the EV followed);
- `fallback` always: a charge point that cannot hear the site may start or go on charging at its
  fallback, so that much is reserved for it whatever else happens. The genesis and `set_limit`
  refuse fallbacks that add up to more than the limit.

Every term of the max is non-increasing in t, so between two commands the sum only falls: the
sum at the current site time is the highest until the next command. A command may raise a
charge point's allowance only if the sum stays within the limit; lowering is always allowed. A
lower limit (`set_limit`) cannot make EVs follow at once: until the sum has come down, the limit
in force is the sum (`in_force`), which then only falls.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

from firmware.site.errors import SiteError
from firmware.site.params import SiteParams


@dataclass(frozen=True)
class Allowance:
    """One charge point's grant and lease in the site's view (times are site time, ms)."""

    fallback_da: int
    grant_da: int = 0
    seq: int = 0                    # counts this charge point's grant changes; acks name it
    lease_until: int | None = None  # None: never renewed
    prior_da: int = 0
    prior_until: int = 0

    def may_draw(self, now: int, reaction_ms: int) -> int:
        drawn = self.fallback_da
        if self.lease_until is not None and now < self.lease_until + reaction_ms:
            drawn = max(drawn, self.grant_da)
        if now < self.prior_until:
            drawn = max(drawn, self.prior_da)
        return drawn

    def lease_held(self, now: int) -> bool:
        return self.lease_until is not None and now < self.lease_until


class Budget:
    """The grants and leases of every charge point, and the site limit they must fit in."""

    def __init__(self, params: SiteParams, limit_da: int, fallbacks_da: dict[str, int]) -> None:
        self.lease_ms = params.site_lease_ms
        self.reaction_ms = params.site_reaction_ms
        self.limit_da = limit_da
        self.allowances = {cp: Allowance(f) for cp, f in sorted(fallbacks_da.items())}

    def copy(self) -> Budget:
        """For a command to work on: the records are immutable, so a new table of them is a full copy."""
        other = copy.copy(self)
        other.allowances = dict(self.allowances)
        return other

    # -- the rule ---------------------------------------------------------------------------

    def may_draw(self, cp: str, now: int) -> int:
        return self.allowances[cp].may_draw(now, self.reaction_ms)

    def drawing(self, now: int) -> int:
        """The sum of what every charge point may draw now: the most it can be until the next command."""
        return sum(a.may_draw(now, self.reaction_ms) for a in self.allowances.values())

    def in_force(self, now: int) -> int:
        """The limit the rule holds against: the site limit, or while a lower limit drains, the sum."""
        return max(self.limit_da, self.drawing(now))

    def until(self, cp: str, now: int) -> int | None:
        """When this charge point's allowance next falls (None: not before the next command)."""
        a = self.allowances[cp]
        moments = [m for m in (a.prior_until, None if a.lease_until is None else a.lease_until + self.reaction_ms)
                   if m is not None and m > now]
        return min(moments) if moments else None

    def fallbacks_da(self) -> int:
        return sum(a.fallback_da for a in self.allowances.values())

    def lease_held(self, cp: str, now: int) -> bool:
        return self.allowances[cp].lease_held(now)

    # -- changes ----------------------------------------------------------------------------

    def renew(self, cp: str, now: int) -> None:
        """The lease runs from this renewal's stamp; a lease that had lapsed starts again at grant 0."""
        a = self.allowances[cp]
        if not a.lease_held(now) and a.grant_da:
            a = self._lowered(a, 0, now)
        self.allowances[cp] = replace(a, lease_until=now + self.lease_ms)

    def set_grant(self, cp: str, target_da: int, now: int) -> bool:
        """Lower at once; raise only if the sum stays within the limit. True if the grant is now `target_da`."""
        a = self.allowances[cp]
        if target_da == a.grant_da:
            return True
        if target_da < a.grant_da:
            self.allowances[cp] = self._lowered(a, target_da, now)
            return True
        raised = replace(a, grant_da=target_da, seq=a.seq + 1)
        if raised.may_draw(now, self.reaction_ms) > self.room_for(cp, now):
            return False
        self.allowances[cp] = raised
        return True

    def room_for(self, cp: str, now: int) -> int:
        """What this charge point's allowance could grow to now: the limit less what the others may draw."""
        return self.limit_da - (self.drawing(now) - self.may_draw(cp, now))

    def _lowered(self, a: Allowance, grant_da: int, now: int) -> Allowance:
        prior_da, prior_until = (a.prior_da, a.prior_until) if now < a.prior_until else (0, 0)
        if a.lease_until is not None and now < a.lease_until + self.reaction_ms:
            prior_da, prior_until = max(prior_da, a.grant_da), max(prior_until, a.lease_until + self.reaction_ms)
        return replace(a, grant_da=grant_da, seq=a.seq + 1, prior_da=prior_da, prior_until=prior_until)

    def ack(self, cp: str, seq: int) -> bool:
        """The charge point's EV follows grant `seq`: what it was lowered from no longer counts. True if it did."""
        a = self.allowances[cp]
        if seq != a.seq:
            raise SiteError("stale_grant", f"{cp}'s current grant is seq {a.seq}, not {seq}", seq=a.seq)
        if not a.prior_until:
            return False
        self.allowances[cp] = replace(a, prior_da=0, prior_until=0)
        return True

    def set_limit(self, limit_da: int) -> None:
        if limit_da < self.fallbacks_da():
            raise SiteError("below_fallbacks", f"the fallback currents add up to {self.fallbacks_da() / 10} A, "
                                               f"above {limit_da / 10} A", fallbacks_a=self.fallbacks_da() / 10)
        self.limit_da = limit_da

    def new_term(self, now: int) -> None:
        """A new leader took office at `now`: it cannot know when its predecessor saw a grant chosen,
        so every lease, reaction window and prior still running is counted again in full from now."""
        for cp, a in self.allowances.items():
            if a.lease_until is not None:
                if now < a.lease_until:
                    a = replace(a, lease_until=now + self.lease_ms)
                elif now < a.lease_until + self.reaction_ms:
                    a = replace(a, lease_until=now)
                else:
                    a = replace(a, lease_until=None)
            if now < a.prior_until:
                a = replace(a, prior_until=now + self.lease_ms + self.reaction_ms)
            elif a.prior_until:
                a = replace(a, prior_da=0, prior_until=0)
            self.allowances[cp] = a

    # -- snapshots --------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        return {"limit_da": self.limit_da,
                "allowances": {cp: vars(a) for cp, a in self.allowances.items()}}

    @classmethod
    def from_json(cls, params: SiteParams, obj: dict[str, Any]) -> Budget:
        budget = cls(params, obj["limit_da"], {})
        budget.allowances = {cp: Allowance(**a) for cp, a in obj["allowances"].items()}
        return budget
