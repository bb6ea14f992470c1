"""A site to drive in tests: a real SiteMachine, real Ed25519 keys, commands as their senders send them."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from firmware.site import Context, SiteMachine, SiteParams, SiteSetup, member_command, public_key_b64, signed_request

_KEYS: dict[str, Ed25519PrivateKey] = {}


def key_of(name: str) -> Ed25519PrivateKey:
    """One key per name for the whole run (key generation is the slow part of a test)."""
    if name not in _KEYS:
        _KEYS[name] = Ed25519PrivateKey.generate()
    return _KEYS[name]


class Site:
    """A SiteMachine with a clock, a leader and senders; every call returns the decoded result."""

    def __init__(self, cps: dict[str, float], limit_a: float = 63, **params: Any) -> None:
        self.setup = SiteSetup("s1", round(limit_a * 10), {cp: round(f * 10) for cp, f in cps.items()},
                               SiteParams(**params))
        self.m = SiteMachine(self.setup)
        self.clock = 1_000_000     # the current leader's monotonic clock
        self.office = (1, "cp1")
        self.seqs: dict[str, int] = {}
        self.results: list[dict[str, Any]] = []
        self.log: list[tuple[bytes, Context]] = []  # every command applied, with its context

    @staticmethod
    def key(name: str) -> Ed25519PrivateKey:
        return key_of(name)

    # -- time and leaders -------------------------------------------------------------------

    def tick(self, ms: int) -> None:
        self.clock += ms

    def new_leader(self, node: str, clock: int) -> None:
        self.office = (self.office[0] + 1, node)
        self.clock = clock

    def ctx(self, client: str, member: bool) -> Context:
        return Context(client, member, self.office, self.clock)

    # -- senders ----------------------------------------------------------------------------

    def raw(self, command: bytes, client: str = "x", member: bool = False) -> dict[str, Any]:
        ctx = self.ctx(client, member)
        self.log.append((command, ctx))
        result = json.loads(self.m.apply(command, ctx))
        self.results.append(result)
        return result

    def member(self, client: str, op: str, **args: Any) -> dict[str, Any]:
        """A member's command; a charge point's Paxos client id is its id."""
        return self.raw(member_command(op, args), client=client, member=True)

    def signed(self, by: str, op: str, *, seq: int | None = None, signer: str | None = None, site: str = "s1",
               client: str | None = None, **args: Any) -> dict[str, Any]:
        if seq is None:
            seq = self.seqs.get(by, 0) + 1
        self.seqs[by] = max(self.seqs.get(by, 0), seq)
        command = signed_request(key_of(signer or by), site=site, by=by, seq=seq, op=op, args=args)
        return self.raw(command, client=client or f"app-{by}")

    # -- set-ups ----------------------------------------------------------------------------

    def add_operator(self, op: str = "op1") -> None:
        assert self.raw(member_command("add_principal", {"id": op, "role": "operator",
                                                         "key": public_key_b64(key_of(op))}),
                        client="cli", member=True)["ok"]

    def add_driver(self, driver: str, by: str = "op1") -> None:
        if by not in self.m.state.principals:
            self.add_operator(by)
        assert self.signed(by, "add_principal", id=driver, role="driver", key=public_key_b64(key_of(driver)))["ok"]

    def register(self, cp: str, max_a: float = 32, price: float = 0.30, **more: Any) -> dict[str, Any]:
        result = self.member(cp, "register", cp=cp, location=f"Bay {cp}", price_eur_kwh=price, max_current_a=max_a,
                             **more)
        assert result["ok"], result
        return result

    def online(self, *cps: str, max_a: float = 32) -> None:
        """Registered and holding a lease."""
        for cp in cps:
            self.register(cp, max_a=max_a)
            assert self.member(cp, "renew", cp=cp)["ok"]

    def charging(self, cp: str, driver: str, meter_wh: int = 0, session: str | None = None,
                 drawn_a: float = 0, ev_max_a: float | None = None) -> str:
        """A driver's request at `cp`, its EV plugged in and its session started; returns the session id."""
        if driver not in self.m.state.principals:
            self.add_driver(driver)
        assert self.signed(driver, "request_charge", at=cp)["cp"] == cp
        session = session or f"{cp}-{driver}-{len(self.results)}"
        assert self.member(cp, "start_session", cp=cp, session=session, meter_wh=meter_wh)["ok"]
        assert self.member(cp, "report", cp=cp, plugged=True, drawn_a=drawn_a, ev_max_a=ev_max_a)["ok"]
        return session

    def renew_all(self) -> None:
        for cp, rec in self.m.state.cps.items():
            if rec.registered:
                assert self.member(cp, "renew", cp=cp)["ok"]

    # -- views ------------------------------------------------------------------------------

    def grant(self, cp: str) -> float:
        return self.m.state.budget.allowances[cp].grant_da / 10

    def seq(self, cp: str) -> int:
        return self.m.state.budget.allowances[cp].seq

    def reason(self, cp: str) -> str:
        return self.m.state.cps[cp].limit_reason

    def drawing(self) -> float:
        return self.m.state.budget.drawing(self.m.state.now) / 10

    def cp_view(self, cp: str) -> dict[str, Any]:
        return self.m.summary()["charge_points"][cp]


@pytest.fixture
def make_site() -> Callable[..., Site]:
    return Site


@pytest.fixture
def site() -> Site:
    """Three charge points of 32 A behind 63 A, fallbacks 0 A."""
    return Site({"cp1": 0, "cp2": 0, "cp3": 0}, limit_a=63)


@pytest.fixture
def replicas(tmp_path, mosquitto):
    """Three replicas running a SiteMachine each on a real Mosquitto (replicas.py)."""
    from .replicas import Replicas

    r = Replicas(tmp_path, mosquitto)
    yield r
    r.stop()
