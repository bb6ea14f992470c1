"""The site's API end to end: three replicas running a SiteMachine on a real Mosquitto, open and keyed clients."""

from __future__ import annotations

import pytest

from firmware.paxos.io.client import KvClient
from firmware.site import member_command, public_key_b64, signed_request
from firmware.site.client import SiteClient, SiteRefused

from ..paxos.conftest import wait_for
from .conftest import key_of
from .replicas import Replicas


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
