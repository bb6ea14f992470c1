"""The site's API end to end: three replicas running a SiteMachine on a real Mosquitto, open and keyed clients."""

from __future__ import annotations

import json
import threading

import pytest

from evnet.config import load_config
from evnet.config.site_key import site_key
from firmware.paxos.client import KvClient
from firmware.paxos.process import write_site_configs
from firmware.paxos.runner import ReplicaRunner
from firmware.site import SiteMachine, SiteSetup, member_command, public_key_b64, signed_request
from firmware.site.client import SiteClient, SiteRefused

from ..paxos.conftest import wait_for
from .conftest import key_of

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


@pytest.fixture
def replicas(tmp_path, mosquitto):
    r = Replicas(tmp_path, mosquitto)
    yield r
    r.stop()


def client(replicas: Replicas, who: str, **kw) -> SiteClient:
    return SiteClient(replicas.mqtt, "demo", principal=who, key=key_of(who), **kw).start()


def online(replicas: Replicas, cp: str) -> None:
    assert replicas.submit(cp, 1, "register", cp=cp, price_eur_kwh=0.3, max_current_a=32)["ok"]
    assert replicas.submit(cp, 2, "renew", cp=cp)["ok"]


def test_a_driver_added_by_an_operator_asks_for_a_charge_with_its_own_key(replicas):
    online(replicas, "cp2")
    with SiteClient(replicas.mqtt, "demo", site_key=replicas.key, client_id="tool") as tool:
        assert not tool.open
        assert tool.add_principal("op1", "operator", public_key_b64(key_of("op1")))["role"] == "operator"
    with client(replicas, "op1") as op, client(replicas, "D01") as driver:
        assert op.open and driver.open
        assert op.add_principal("D01", "driver", public_key_b64(key_of("D01")))["id"] == "D01"
        answer = driver.request_charge(at="cp2")
        assert answer["cp"] == "cp2" and answer["expires_in_ms"] > 0
        assert driver.whoami()["role"] == "driver"
        assert op.whoami() == {"id": "op1", "role": "operator", "seq": op.seq}
    wait_for(lambda: len({r.replica.learner.chosen_upto for r in replicas.runners.values()}) == 1,
             what="replicas to agree")
    assert all(m.state.authorizations["cp2"].driver == "D01" for m in replicas.machines.values())


def test_forged_replayed_and_wrong_role_requests_are_refused_with_a_reason_and_take_no_slot(replicas):
    with SiteClient(replicas.mqtt, "demo", site_key=replicas.key, client_id="tool") as tool:
        tool.add_principal("op1", "operator", public_key_b64(key_of("op1")))
    with client(replicas, "op1") as op:
        op.add_principal("D01", "driver", public_key_b64(key_of("D01")))
        leader = replicas.leader()
        wait_for(lambda: len({r.replica.learner.chosen_upto for r in replicas.runners.values()}) == 1,
                 what="replicas to agree")
        slots, state = leader.replica.learner.chosen_upto, replicas.machines[leader.id].snapshot()
        with SiteClient(replicas.mqtt, "demo", principal="D01", key=key_of("mallory")) as forger:
            with pytest.raises(SiteRefused) as e:
                forger.request_charge(at="cp2")
            assert e.value.code == "bad_signature" and "D01" in e.value.reason
        with client(replicas, "D01") as driver:
            with pytest.raises(SiteRefused) as e:
                driver.set_limit(40)
            assert (e.value.code, e.value.extra["role"]) == ("wrong_role", "driver")
            with pytest.raises(SiteRefused) as e:
                driver.call("expire")  # a member's command, signed by a driver
            assert e.value.code == "wrong_role"
        with KvClient(replicas.mqtt, "demo", "anon", None) as anon:  # a member's command, open and unsigned
            assert anon.call(member_command("expire"), "expire")["error"] == "unauthenticated"
        old = signed_request(key_of("op1"), site="demo", by="op1", seq=op.seq, op="set_limit", args={"limit_a": 40})
        replay = op.kv.call(old, "a replay")  # the operator's own last request again, under a new req id
        assert replay["error"] == "replayed" and replay["highest"] == op.seq
        assert leader.replica.learner.chosen_upto == slots  # not one slot for any of them
        assert replicas.machines[leader.id].snapshot() == state
        assert leader.replica.refused == 5
        assert op.set_limit(40)["limit_a"] == 40  # the site goes on
