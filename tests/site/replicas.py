"""Three `ReplicaRunner`s running a SiteMachine each on a real Mosquitto, as `evnet cp` runs them."""

from __future__ import annotations

import json
import threading

from evnet.config import load_config
from evnet.config.site_key import site_key
from firmware.paxos.io.process import write_site_configs
from firmware.paxos.io.runner import ReplicaRunner
from firmware.site import SiteMachine, SiteSetup, member_command

from ..paxos.conftest import wait_for

MEMBERS = ["cp1", "cp2", "cp3"]


class Replicas:
    """Three `ReplicaRunner`s with a SiteMachine each, as `evnet cp` runs them (admission included)."""

    def __init__(self, tmp_path, mosquitto) -> None:
        paths = write_site_configs(str(tmp_path / "etc"), MEMBERS, mosquitto.url, site="demo")
        self.cfgs = {cp: load_config(p) for cp, p in paths.items()}
        cfg = self.cfgs["cp1"]
        self.setup = SiteSetup.of(cfg.site_id, cfg.site.limit_a, cfg.site.members, cfg.site.fallback_a,
                                  lease_s=60)
        self.machines = {cp: SiteMachine(self.setup) for cp in MEMBERS}
        self.applied: dict[str, list] = {cp: [] for cp in MEMBERS}
        self.changed = threading.Condition()
        self.runners = {cp: ReplicaRunner(self.cfgs[cp], str(tmp_path / "data" / cp), machine=self.machines[cp],
                                          admit=self.machines[cp].admit,
                                          on_applied=lambda a, cp=cp: self.applied[cp].extend(a)).start()
                        for cp in MEMBERS}
        self.key = site_key(cfg)
        self.mqtt = cfg.mqtt

    def submit(self, member: str, req: int, op: str, **args) -> dict:
        """A member's own command, as its bridge proposes it; its result from its own replica."""
        self.runners[member].submit(req, member_command(op, args))
        mine = self.applied[member]
        wait_for(lambda: any(a.client == member and a.req == req for a in mine), what=f"{member}'s {op}")
        return json.loads(next(a.result for a in mine if a.client == member and a.req == req))

    def leader(self) -> ReplicaRunner:
        wait_for(lambda: any(r.replica.is_leader for r in self.runners.values()), what="a leader")
        return next(r for r in self.runners.values() if r.replica.is_leader)

    def stop(self) -> None:
        for r in self.runners.values():
            r.stop()
