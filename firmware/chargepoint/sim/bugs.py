"""The deliberate bugs of the site simulation (faults.py's BUGS), switched on per run, never used outside it.

- `raise_before_lower`: the site raises a newcomer's grant as if the others had already followed their
  lowered grants (their old grants, still owed for the EV's reaction time or their lease, are not counted);
- `lease_from_receipt`: the bridge counts its lease from when the renewal's result came back instead of
  from when it sent the renewal, so it outlives the lease the site counts.
"""

from __future__ import annotations

from typing import Any

from firmware.chargepoint import Bridge, BridgeSettings
from firmware.chargepoint.grants import LeaseKeeper
from firmware.chargepoint.outputs import Grant
from firmware.site import SiteMachine, SiteSetup
from firmware.site.budget import Budget


class EagerBudget(Budget):
    def room_for(self, cp: str, now: int) -> int:
        others = sum(max(a.fallback_da, a.grant_da) for c, a in self.allowances.items() if c != cp)
        return self.limit_da - others


class EagerSiteMachine(SiteMachine):
    def __init__(self, setup: SiteSetup) -> None:
        super().__init__(setup)
        self.state.budget.__class__ = EagerBudget

    def restore(self, blob: bytes) -> None:
        super().restore(blob)
        self.state.budget.__class__ = EagerBudget


class LeaseFromReceipt(LeaseKeeper):
    def renewed(self, sent: float, result: dict[str, Any], now: float) -> list[Grant]:
        return super().renewed(now, result, now)


def machine_for(bugs: frozenset[str], setup: SiteSetup) -> SiteMachine:
    return EagerSiteMachine(setup) if "raise_before_lower" in bugs else SiteMachine(setup)


def bridge_for(bugs: frozenset[str], settings: BridgeSettings) -> Bridge:
    bridge = Bridge(settings)
    if "lease_from_receipt" in bugs:
        bridge.lease.__class__ = LeaseFromReceipt
    return bridge
