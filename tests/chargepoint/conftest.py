"""A charge point of a site in one test: a real `SiteMachine` (its replica), a real `EngineCore` (confirm_starts)
on a `ManualClock`, and the `Bridge` between them. The test plays the rest: the Paxos plumbing (a proposal is
applied with a `Context` stamped at its delivery, after `latency`; while the site is down it is lost), the
EV on the cable (PWM), its draw and the meter that integrates it, the drivers and the operator."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evnet.clock import ManualClock
from firmware.chargepoint import (
    Bridge,
    BridgeSettings,
    Output,
    Propose,
    TicketSettled,
)
from firmware.engine.commands import apply_command
from firmware.engine.core import EngineCore, ReadMeter, SessionOpened, TicketClosed
from firmware.engine.pilot_sm import SetContactor
from firmware.site import Context, SiteMachine, SiteSetup, member_command, public_key_b64, signed_request
from hal.meter.reading import MeterReading

KEYS: dict[str, Ed25519PrivateKey] = {}
CP = "cp1"
POLL_S = 1.0  # the meter poller's interval


def key_of(name: str) -> Ed25519PrivateKey:
    if name not in KEYS:
        KEYS[name] = Ed25519PrivateKey.generate()
    return KEYS[name]


@dataclass
class Rig:
    members: tuple[str, ...] = ("cp1", "cp2")
    limit_a: float = 63
    fallback_a: float = 6
    lease_s: float = 10
    max_a: float = 32
    local_drivers: tuple[str, ...] = ("owner",)
    standing_driver: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    site_params: dict[str, Any] = field(default_factory=dict)
    latency: float = 0.05            # s from a proposal to its application (and the replica's view)
    back: float = 0.0                # s more from its application to its result reaching the bridge
    site_up: bool = True             # False: proposals are lost (no quorum, broker gone)
    ev_wants_a: float = 32.0         # what the EV would draw if offered
    auto_draw: bool = True           # the EV follows the offer (False: the test sets `draw_a`) ...
    ev_lag: float = 0.0              # ... this long after it changed (an EV has 5 s to follow a lower duty)
    speed: float = 1.0               # engine clock seconds per real second (the site's clock is real time)

    def __post_init__(self) -> None:
        self.clock = ManualClock(1000.0)
        self.site = SiteMachine(SiteSetup.of("s1", self.limit_a, list(self.members), self.fallback_a,
                                             lease_s=self.lease_s, **self.site_params))
        self.engine = EngineCore(CP, price_eur_kwh=0.30, max_current_a=self.max_a, fallback_a=self.fallback_a,
                                 local_drivers=self.local_drivers, new_session_id=self._new_id, confirm_starts=True)
        self.bridge = Bridge(BridgeSettings(cp=CP, price_eur_kwh=0.30, max_current_a=self.max_a,
                                            fallback_a=self.fallback_a, lease_s=self.lease_s, location="Bay 1",
                                            local_drivers=self.local_drivers, standing_driver=self.standing_driver,
                                            speed=self.speed, **self.settings))
        self.kwh = 100.0
        self.draw_a = 0.0
        self.contactor = False
        self.outputs: list[Output] = []
        self.sent: list[tuple[float, Propose]] = []    # every proposal, with when it was made
        self.engine_actions: list[Any] = []
        self.wire: list[tuple[float, Propose]] = []   # in flight to the site: (delivered at, proposal)
        self.answers: list[tuple[float, Propose, dict[str, Any]]] = []  # results on their way back
        self.offers: list[tuple[float, float]] = [(self.now, 0.0)]     # the engine's offer, when it changed
        self.lost: list[Propose] = []
        self.applied: list[tuple[float, Propose, dict[str, Any]]] = []  # (when, proposal, result)
        self.closed_at: list[tuple[float, bool]] = []  # contactor moves
        self.seqs: dict[str, int] = {}
        self._sessions = 0
        self._next_poll = self.now + POLL_S
        self.checks: list[Callable[[Rig], None]] = []
        self.engine_do(self.engine.start(self.now))
        self.engine_do(self.engine.meter_reading(self.reading(), self.now))
        self.do(self.bridge.start(self.now))

    @property
    def now(self) -> float:
        return self.clock.monotonic()

    def _new_id(self) -> str:
        self._sessions += 1
        return f"cp1-s{self._sessions}"

    # -- the meter and the EV -------------------------------------------------------------------

    def reading(self) -> MeterReading:
        amps = self.draw_a if self.contactor else 0.0
        return MeterReading((230.0,) * 3, (amps,) * 3, amps * 690.0, self.kwh, self.clock.time())

    def _follow(self) -> None:
        if self.engine.allowed_a != self.offers[-1][1]:
            self.offers.append((self.now, self.engine.allowed_a))
        if self.auto_draw:
            seen = [a for t, a in self.offers if t <= self.now - self.ev_lag] or [0.0]
            self.draw_a = min(self.ev_wants_a, seen[-1], self.engine.allowed_a if not self.ev_lag else 80.0)
            self.draw_a = self.draw_a if self.contactor else 0.0

    # -- dispatch -------------------------------------------------------------------------------

    def do(self, outputs: list[Output]) -> None:
        """Carry out what the bridge says, as `evnet cp` would."""
        for out in outputs:
            self.outputs.append(out)
            now = self.now
            match out:
                case Propose():
                    self.sent.append((now, out))
                    if self.site_up:
                        self.wire.append((now + self.latency, out))
                    else:
                        self.lost.append(out)
                case TicketSettled():
                    pass
                case _:
                    self.engine_do(apply_command(self.engine, out, now))

    def engine_do(self, actions: list[Any]) -> None:
        """Carry out what the engine core says, and show the bridge each action (evse.py's site_observer)."""
        for action in actions:
            self.engine_actions.append(action)
            match action:
                case SetContactor(closed, _):
                    self.contactor = closed
                    self.closed_at.append((self.now, closed))
                    self._follow()
                case ReadMeter(token):
                    self.engine_do(self.engine.meter_reading(self.reading(), self.now, token=token))
            self.do(self.bridge.engine_action(action, self.now))
        self._follow()

    # -- time -----------------------------------------------------------------------------------

    def advance(self, seconds: float) -> None:
        """Let `seconds` pass: the wire delivers, the meter is polled every second, timers run."""
        end = self.now + seconds
        stuck = 0
        while True:
            moments = [end, self._next_poll] + [t for t, _ in self.wire] + [t for t, _, _ in self.answers]
            moments += [t + self.ev_lag for t, _ in self.offers[-2:] if t + self.ev_lag > self.now]
            moments += [m for m in (self.engine.next_deadline(), self.bridge.next_deadline()) if m is not None]
            step_to = min(max(min(moments), self.now), end)
            stuck = stuck + 1 if step_to == self.now else 0
            assert stuck < 100, f"a deadline that never passes at {self.now}: {self.bridge.next_deadline()}"
            self.kwh += (self.draw_a if self.contactor else 0.0) * 690.0 * (step_to - self.now) / 3_600_000.0
            self.clock.set(step_to)
            self._due()
            self._follow()
            for check in self.checks:
                check(self)
            if step_to >= end:
                break

    def _due(self) -> None:
        now = self.now
        for item in sorted([w for w in self.wire if w[0] <= now], key=lambda w: w[0]):
            self.wire.remove(item)
            self._deliver(item[1])
        for answer in [a for a in self.answers if a[0] <= now]:
            self.answers.remove(answer)
            self.do(self.bridge.site_result(answer[1].tag, answer[2], now))
        deadline = self.engine.next_deadline()
        if deadline is not None and now >= deadline:
            self.engine_do(self.engine.tick(now))
        if now >= self._next_poll:
            self._next_poll = now + POLL_S
            reading = self.reading()
            self.engine_do(self.engine.meter_reading(reading, now))
            self.do(self.bridge.meter(reading, now))
        deadline = self.bridge.next_deadline()
        if deadline is not None and now >= deadline:
            self.do(self.bridge.tick(now))

    def _deliver(self, proposal: Propose) -> None:
        if not self.site_up:
            self.lost.append(proposal)
            return
        result = self.apply(proposal.command, CP, member=True)
        self.applied.append((self.now, proposal, result))
        if self.back:
            self.answers.append((self.now + self.back, proposal, result))
        else:
            self.do(self.bridge.site_result(proposal.tag, result, self.now))

    # -- the site -------------------------------------------------------------------------------

    def apply(self, command: bytes, client: str, member: bool) -> dict[str, Any]:
        """The replica applies a chosen command (stamped now by the leader) and shows the bridge its view."""
        ctx = Context(client, member, (1, "cp2"), self.leader_ms())
        result = json.loads(self.site.apply(command, ctx))
        if self.site_up:  # a charge point cut off from the site: its replica hears nothing either
            self.do(self.bridge.site_view(self.site.view(CP), self.now))
        return result

    def member(self, sender: str, op: str, **args: Any) -> dict[str, Any]:
        """A command of another member of the site (its own bridge, played by the test)."""
        return self.apply(member_command(op, args), sender, member=True)

    def signed(self, by: str, op: str, **args: Any) -> dict[str, Any]:
        self.seqs[by] = self.seqs.get(by, 0) + 1
        return self.apply(signed_request(key_of(by), site="s1", by=by, seq=self.seqs[by], op=op, args=args),
                          f"app-{by}", member=False)

    def add_driver(self, driver: str) -> None:
        if "op1" not in self.site.state.principals:
            assert self.apply(member_command("add_principal", {"id": "op1", "role": "operator",
                                                               "key": public_key_b64(key_of("op1"))}),
                              "cli", member=True)["ok"]
        assert self.signed("op1", "add_principal", id=driver, role="driver", key=public_key_b64(key_of(driver)))["ok"]

    def other_online(self, cp: str = "cp2") -> None:
        assert self.member(cp, "register", cp=cp, price_eur_kwh=0.3, max_current_a=32)["ok"]
        assert self.member(cp, "renew", cp=cp)["ok"]

    def other_charging(self, cp: str, driver: str, drawn_a: float = 32.0) -> str:
        """Another charge point's session (its own bridge played by hand)."""
        self.add_driver(driver)
        assert self.signed(driver, "request_charge", at=cp)["cp"] == cp
        session = f"{cp}-{driver}"
        assert self.member(cp, "start_session", cp=cp, session=session, meter_wh=0)["ok"], self.site.view(cp)
        assert self.member(cp, "report", cp=cp, plugged=True, drawn_a=drawn_a, ev_max_a=None)["ok"]
        return session

    # -- the EV ---------------------------------------------------------------------------------

    def plug_in(self, pwm_after: float = 5.0) -> None:
        """An EV without ISO 15118: plugged in (B), then on PWM once the engine stops waiting for HLC."""
        self.engine_do(self.engine.pilot_reading("B", self.now))
        self.advance(pwm_after)

    def ask_for_energy(self) -> None:
        self.engine_do(self.engine.pilot_reading("C", self.now))

    def stop_asking(self) -> None:
        self.engine_do(self.engine.pilot_reading("B", self.now))

    def unplug(self) -> None:
        self.engine_do(self.engine.pilot_reading("A", self.now))

    # -- what happened ----------------------------------------------------------------------------

    def of(self, kind: type) -> list[Any]:
        return [o for o in self.outputs if isinstance(o, kind)]

    def proposed(self, op: str) -> list[dict[str, Any]]:
        return [json.loads(p.command)["args"] for p in self.of(Propose) if p.tag.op == op]

    def results(self, op: str) -> list[dict[str, Any]]:
        return [r for _, p, r in self.applied if p.tag.op == op]

    def ever_closed(self) -> bool:
        """Whether the contactor was ever closed."""
        return any(closed for _, closed in self.closed_at)

    def opened(self) -> list[SessionOpened]:
        return [a for a in self.engine_actions if isinstance(a, SessionOpened)]

    def engine_tickets(self) -> list[Any]:
        return [a.ticket for a in self.engine_actions if isinstance(a, TicketClosed)]

    def site_tickets(self) -> dict[str, Any]:
        return dict(self.site.state.tickets)

    def offer_a(self) -> float:
        """What the engine offers the EV now (its lease: a grant while it holds, else the fallback)."""
        return self.engine.lease.current(self.now)

    def site_allows_a(self) -> float:
        """What the site counts this charge point may draw now (the rule of the fuse)."""
        return self.site.state.budget.may_draw(CP, self.site_ms()) / 10

    def leader_ms(self) -> int:
        """The leader's monotonic clock: real time, in ms (the engine clock runs `speed` times faster)."""
        return round(self.now / self.speed * 1000)

    def site_ms(self) -> int:
        """Site time now: the leader's clock + the term's offset."""
        return self.leader_ms() + self.site.state.offset

    def running(self) -> None:
        """Registered, holding a lease."""
        self.advance(1.0 + 2 * self.latency)

    def charging(self, driver: str = "D1") -> str:
        """Running, `driver`'s EV plugged in and charging on its request; its session id."""
        self.running()
        self.add_driver(driver)
        self.plug_in()
        self.ask_for_energy()
        self.signed(driver, "request_charge", at="cp1")
        self.advance(2.0)
        assert self.contactor
        return self.opened()[-1].session_id
        assert self.bridge.registered and self.bridge.site_reachable


def fuse_rule(rig: Rig) -> None:
    """The engine never offers more than the site counts for it (its lease ends before the site's)."""
    assert rig.offer_a() <= rig.site_allows_a() + 1e-9, (rig.now, rig.offer_a(), rig.site_allows_a())


def start_gate(rig: Rig) -> None:
    """A contactor is closed only for a session whose start the site committed, or the local list allowed
    while the site did not answer."""
    if rig.contactor:
        sid = rig.engine.session.session_id
        st = rig.site.state
        tracked = rig.bridge.sessions.by_id.get(sid)
        assert sid in st.sessions or sid in st.tickets or sid in st.closed or (tracked is not None and tracked.local)


def draw_rule(rig: Rig) -> None:
    """What the EV draws is within what the site counts for this charge point (with its meter's 0.5 A)."""
    assert rig.draw_a <= rig.site_allows_a() + 0.5, (rig.now, rig.draw_a, rig.site_allows_a())


@pytest.fixture
def rig() -> Callable[..., Rig]:
    def make(**kw: Any) -> Rig:
        r = Rig(**kw)
        r.checks += [fuse_rule, start_gate]
        return r
    return make

