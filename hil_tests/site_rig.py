"""The real-process site of the tests: `central_broker/demo/site.py`'s three charge points (each `evnet cp`
with its monitor, its meter box on the cable and its cuttable network) as site "hil", plus what a test
needs to steer it from outside: a keyed `KvClient` (the site key makes it a member-role tool, which adds an
operator; the operator's signed requests add the drivers), the demo's `Sampler` reading every meter with an
ordinary pymodbus client every 100 ms, and its `SiteWatch` hearing every message of the site. Used by
hil_tests/test_site.py, bench/site.py and Central's tests.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from central_broker.demo.site import CP_MAX_A, FALLBACK_A, LEASE_S, LIMIT_A, MEMBERS, Point, SiteProcesses
from central_broker.demo.watch import Sampler, SiteWatch, wait_for
from evnet.config import MqttConfig
from evnet.config.site_key import site_key
from firmware.paxos.io.client import KvClient
from firmware.site import new_private_key, public_key_b64, signed_request

__all__ = ["CP_MAX_A", "FALLBACK_A", "LEASE_S", "LIMIT_A", "MEMBERS", "SITE", "Point", "Sampler", "SiteRig",
           "wait_for"]

SITE = "hil"
SPEED = 20.0  # domain time per real second: the EVs' reactions and the meters' energy run 20x faster
EV_PLAN = "capacity 500; soc 5; max 32; plug; charge 32; wait full"


@dataclass
class SiteRig(SiteProcesses):
    """Three charge points of site "hil" sharing 63 A; `start()`, then `close()`."""

    speed: float = SPEED
    site: str = SITE
    sampler: Sampler | None = None
    watch: SiteWatch | None = None
    tool: KvClient | None = None
    _seq: dict[str, int] = field(default_factory=dict)
    _keys: dict[str, Any] = field(default_factory=dict)

    def start(self) -> SiteRig:
        self.watch = SiteWatch(MqttConfig(url=self.broker_url, version=self.mqtt_version), SITE).start()
        super().start()
        self.sampler = Sampler({cp: p.meter for cp, p in self.points.items()}).start()
        self.tool = KvClient(self.points["cp1"].cfg.mqtt, SITE, "hil-tool", site_key(self.points["cp1"].cfg),
                             timeout=10.0).start()
        return self

    def plug_ev(self, cp: str, plan: str = EV_PLAN) -> None:
        super().plug_ev(cp, plan)

    def close(self) -> None:
        for stoppable in (self.sampler, self.watch):
            if stoppable is not None:
                stoppable.stop()
        if self.tool is not None:
            self.tool.close()
        super().close()

    # ------------------------------------------------------------------ the site, through the broker

    def request(self, op: str, args: dict[str, Any], timeout: float = 20.0) -> dict[str, Any]:
        assert self.tool is not None, "start() the rig first"
        return self.tool.request(op, args, timeout=timeout)

    def signed(self, by: str, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """A principal's signed request as `KvClient.request` args; each principal's seq grows by one."""
        self._seq[by] = self._seq.get(by, 0) + 1
        body = json.loads(signed_request(self._keys[by], site=SITE, by=by, seq=self._seq[by], op=op, args=args))
        return {k: v for k, v in body.items() if k != "op"}

    def add_people(self, drivers: int = 3) -> None:
        """Operator "op1" (added by the keyed tool, as a member may), then drivers D1..Dn by the operator."""
        self._keys["op1"] = new_private_key()
        added: dict[str, Any] = {}

        def operator_added() -> bool:  # the site may still be electing its first leader
            nonlocal added
            added = self.request("add_principal", {"args": {"id": "op1", "role": "operator",
                                                            "key": public_key_b64(self._keys["op1"])}})
            return bool(added.get("ok")) or added.get("error") == "principal_exists"  # a retry of one applied
        wait_for(operator_added, 30, "the site to add the operator")
        for n in range(1, drivers + 1):
            self._keys[f"D{n}"] = new_private_key()
            added = self.request("add_principal", self.signed("op1", "add_principal", {
                "id": f"D{n}", "role": "driver", "key": public_key_b64(self._keys[f"D{n}"])}))
            assert added.get("ok"), added

    def request_charge(self, driver: str, cp: str) -> dict[str, Any]:
        """`driver` asks to charge at `cp`, asked again while `cp` has not registered or renewed its lease yet
        (the site then authorizes the driver at another free point, or nowhere; the next request moves it)."""
        asked: dict[str, Any] = {}

        def granted() -> bool:
            nonlocal asked
            asked = self.request("request_charge", self.signed(driver, "request_charge", {"at": cp}))
            return asked.get("cp") == cp and "redirected_from" not in asked
        wait_for(granted, 30, f"{driver} authorized at {cp} (its registration and lease at the site)")
        return asked

    def operator(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        return self.request(op, self.signed("op1", op, args))

    def leader(self) -> str:
        """The replica that answered the tool's last request: the site's leader (its id is its charge point's)."""
        assert self.tool is not None and self.tool.leader is not None, "no request answered yet"
        return self.tool.leader
