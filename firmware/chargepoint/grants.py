"""This charge point's lease and grant as the bridge keeps them (docs/site.md, "The rule of the fuse").

- The lease is counted on the engine's clock from the moment the renewal was *sent* (`Pending.sent`),
  for the `lease_ms` its result names; a result that comes after that moment is ignored. The site
  counts the same lease from the renewal's stamp, later, and stretched for drift, so ours ends first.
- The grant is the one with the highest `grant_seq` heard, from a renewal's result, any other
  result carrying a grant view, or the replica's view. The engine is given it only while the lease
  holds (`Grant(amps, until=lease end)`); after that the engine's own lease falls to the fallback.
  Using a grant learned outside a renewal until our lease end is within the rule: the site counts
  every grant it holds until *its* lease end, which is later.
- A lowered grant is acknowledged (`ack_grant` with its seq) once the meter shows the EV follows
  it: drawn <= grant + tolerance on the second reading after the engine was given it (the first
  may have been taken before the engine applied it), and either the EV was seen above the new
  grant since it was given (it came down: it follows the new duty) or its reaction time (5 s,
  IEC 61851-1) has passed. An EV that drew little all along proves nothing: it may still be taking
  up an earlier, higher duty (a raise followed by a lowering within its reaction time), and the
  site would hand its old grant to others while it is still owed (found by the site simulation,
  firmware/chargepoint/sim). An EV that does not follow is the engine's over-current check's
  business (firmware/engine/checks.py).
"""

from __future__ import annotations

from typing import Any

from evnet.logs import EventLogger
from firmware.chargepoint.outputs import Grant
from firmware.chargepoint.settings import BridgeSettings
from firmware.site import GrantView


class LeaseKeeper:
    def __init__(self, settings: BridgeSettings, log: EventLogger) -> None:
        self.settings = settings
        self.log = log
        self.lease = settings.on_engine_clock(settings.lease_s)
        self.until: float | None = None      # our lease's end (engine clock); None: never held
        self.grant: GrantView | None = None  # the latest grant heard
        self.applied: Grant | None = None    # what the engine was last given
        self.next_renewal = 0.0
        self.owed_ack = False                # lowered since the last acknowledgement
        self._high_a = 0.0                   # the highest grant since the last acknowledgement
        self._readings = 0                   # meter readings since the engine was given `applied`
        self._applied_at = 0.0               # when the engine was given `applied` (engine clock)
        self._seen_above = False             # a reading above `applied` since then: the EV had to come down
        self.reaction = settings.on_engine_clock(settings.reaction_s)
        self.ack_in_flight: int | None = None
        self.late = 0                        # renewal results that came after their lease had ended

    def held(self, now: float) -> bool:
        return self.until is not None and now < self.until

    # -- renewals -------------------------------------------------------------------------

    def renewal_due(self, now: float) -> bool:
        return now >= self.next_renewal

    def renewal_sent(self, now: float) -> None:
        self.next_renewal = now + self.lease / 2

    def renewed(self, sent: float, result: dict[str, Any], now: float) -> list[Grant]:
        """A renewal sent at `sent` was committed with `result` (a grant view)."""
        view = self.parse(result, "renew")
        if view is None:
            return []
        lease = self.settings.on_engine_clock(view.lease_ms / 1000)
        until = sent + lease
        if now >= until:  # its lease is over: what it granted no longer holds
            self.late += 1
            self.log.warning("bridge.renewal_too_late", sent=round(sent, 3), now=round(now, 3), lease=lease)
            return []
        self.lease = lease
        self.until = until if self.until is None else max(self.until, until)
        self.learn(view)
        return self.apply(now)

    # -- grants ---------------------------------------------------------------------------

    def learned(self, view: GrantView | None, now: float) -> list[Grant]:
        """A grant view from another result than a renewal's, or from the replica's view: the grant, not a lease."""
        if view is None:
            return []
        self.learn(view)
        return self.apply(now)

    def learn(self, view: GrantView) -> None:
        if self.grant is not None and view.grant_seq <= self.grant.grant_seq:
            return
        if self.grant is not None:
            self._high_a = max(self._high_a, self.grant.grant_a)
        self.grant = view
        if view.grant_a < self._high_a:
            self.owed_ack = True
        self.log.info("bridge.grant", amps=view.grant_a, seq=view.grant_seq, reason=view.limit_reason,
                      owed_ack=self.owed_ack or None)

    def apply(self, now: float) -> list[Grant]:
        """The grant for the engine, if it changed and our lease holds (else the engine is at its fallback)."""
        if self.grant is None or not self.held(now):
            return []
        assert self.until is not None
        grant = Grant(self.grant.grant_a, self.until, self.grant.limit_reason)
        if grant == self.applied:
            return []
        if self.applied is None or self.applied.amps != grant.amps:
            self._readings = 0
            self._applied_at = now
            self._seen_above = False
        self.applied = grant
        return [grant]

    # -- acknowledging a lower grant --------------------------------------------------------

    def ack_due(self, drawn_a: float, now: float) -> int | None:
        """After a meter reading: the seq to acknowledge, if the EV follows the lowered grant now."""
        self._readings += 1
        g = self.grant
        if self.applied is not None and drawn_a > self.applied.amps + self.settings.ack_tolerance_a:
            self._seen_above = True
        if not self.owed_ack or g is None or self.applied is None or self.ack_in_flight == g.grant_seq:
            return None
        if self.applied.amps != g.grant_a or self._readings < 2:
            return None
        if drawn_a > g.grant_a + self.settings.ack_tolerance_a:
            return None
        if not self._seen_above and now < self._applied_at + self.reaction:
            return None  # no sign yet that it follows this duty rather than an earlier one
        self.ack_in_flight = g.grant_seq
        return g.grant_seq

    def acked(self, seq: int, result: dict[str, Any], now: float) -> list[Grant]:
        """The result of `ack_grant` for `seq`: `stale_grant` means a newer grant exists (it comes by itself)."""
        if self.ack_in_flight == seq:
            self.ack_in_flight = None
        if "error" in result:
            self.log.info("bridge.ack_refused", seq=seq, error=result.get("error"), current=result.get("seq"))
            return []
        if self.grant is not None and self.grant.grant_seq == seq:
            self.owed_ack = False
            self._high_a = self.grant.grant_a
        self.log.info("bridge.ack", seq=seq, released=result.get("released"))
        return self.learned(self.parse(result, "ack_grant"), now)

    def ack_lost(self, seq: int) -> None:
        if self.ack_in_flight == seq:
            self.ack_in_flight = None

    def parse(self, result: dict[str, Any], what: str) -> GrantView | None:
        """The grant view in a command's result; None (logged) if it has none."""
        try:
            return GrantView.of(result)
        except ValueError as exc:
            self.log.warning("bridge.bad_grant_view", what=what, error=str(exc)[:120])
            return None
