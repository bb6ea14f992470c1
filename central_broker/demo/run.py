"""The reference scenario carried out on a site of real processes (`SiteProcesses`): drivers ask and stop
with their apps, EVs plug in and out, the chaos kills, hangs and restarts; what happened is recorded for
`checks.py`.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from central_broker.demo.checks import CHARGING_A, Record
from central_broker.demo.drivers import DriverApp
from central_broker.demo.scenario import END_MINUTE, Act, Step, real_seconds, timeline
from central_broker.demo.site import LIMIT_A, MEMBERS, SiteProcesses
from central_broker.demo.watch import Sampler, SiteWatch, wait_for
from evnet.config.site_key import site_key
from evnet.logs import event_logger
from firmware.paxos.io.client import KvTimeout
from firmware.site import new_private_key, public_key_b64
from firmware.site.client import SiteClient, SiteRefused

EV_PLAN = "max 32; plug; charge 32"
ASK_AGAIN_S = 1.0     # a driver whose EV is plugged in without a session (its point restarted) asks again


@dataclass
class Scenario:
    """Runs the timeline on `site`, speaking to the world through `say` (one line per event)."""

    site: SiteProcesses
    restart_broker: Callable[[], None]
    say: Callable[[str], None]
    chaos: bool = False
    drivers: dict[str, DriverApp] = field(default_factory=dict)
    operator: SiteClient | None = None
    sampler: Sampler | None = None
    watch: SiteWatch | None = None
    charging: dict[str, tuple[float, float]] = field(default_factory=dict)
    hit: dict[str, list[float]] = field(default_factory=dict)
    failovers: list[tuple[str, float | None]] = field(default_factory=list)
    hung: list[tuple[str, float | None]] = field(default_factory=list)
    asked_again: int = 0
    _asked: dict[str, float] = field(default_factory=dict)
    _hanging: dict[str, float] = field(default_factory=dict)  # cp -> when its engine was stopped

    def __post_init__(self) -> None:
        self.log = event_logger("demo")

    # ------------------------------------------------------------------ set-up

    def prepare(self) -> None:
        """The site elects its leader; an operator and three drivers get keys; the watchers start."""
        cfg = self.site.points["cp1"].cfg
        self.watch = SiteWatch(cfg.mqtt, self.site.site).start()
        self.sampler = Sampler({cp: p.meter for cp, p in self.site.points.items()}).start()
        op_key = new_private_key()
        with SiteClient(cfg.mqtt, self.site.site, site_key=site_key(cfg), client_id="demo-installer",
                        timeout=5.0) as tool:
            self._until_done(lambda: tool.add_principal("op1", "operator", public_key_b64(op_key)), "op1 added")
            if self.site.central is not None:
                self._until_done(lambda: tool.add_principal("central", "operator", self.site.central_key()),
                                 "Central's operator added")
        self.operator = SiteClient(cfg.mqtt, self.site.site, principal="op1", key=op_key, timeout=5.0).start()
        for n, cp in enumerate(MEMBERS, start=1):
            app = self.drivers[cp] = DriverApp(f"D{n}", cp, self.site.points[cp].config, self.site.root)
            self._until_done(lambda a=app: self.operator.add_principal(a.driver, "driver", a.public),
                             f"{app.driver} added")
        wait_for(lambda: all(self._kwh(cp) is not None for cp in MEMBERS), 20, "every meter to answer")
        wait_for(lambda: all(p.get("status") == "AVAILABLE" for p in self._points().values())
                 and len(self._points()) == len(MEMBERS), 20, "every charge point registered and available")
        drivers = ", ".join(d.driver for d in self.drivers.values())
        self.say(f"site {self.site.site}: {len(MEMBERS)} charge points, limit {LIMIT_A} A, leader "
                 f"{self.operator.leader}, operator op1, drivers {drivers}")

    def _until_done(self, call: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
        """Retried while the site elects its first leader or a charge point has not registered yet."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                return call()
            except SiteRefused as exc:
                if exc.code == "principal_exists":  # a retry of one that was applied
                    return {}
                if time.monotonic() > deadline:
                    raise
            except KvTimeout:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the site did not answer: {what}") from None
            time.sleep(0.2)

    # ------------------------------------------------------------------ the timeline

    def run(self, speed: float) -> None:
        t0 = time.monotonic()
        steps = timeline(self.chaos)
        for step in steps:
            self._idle_until(t0 + real_seconds(step.minute, speed))
            self.say(str(step))
            self._do(step)
        self._idle_until(t0 + real_seconds(END_MINUTE, speed))
        wait_for(lambda: self._watch_hung(time.monotonic()) or not self._hanging, 15, "the hung engine's monitor")
        wait_for(self._all_settled, 30, "every session to end in its ticket")

    def _idle_until(self, t: float) -> None:
        while (now := time.monotonic()) < t:
            self._ask_again_where_needed(now)
            self._watch_hung(now)
            time.sleep(min(0.05, t - now))

    def _do(self, step: Step) -> None:
        match step.act:
            case Act.ARRIVE:
                self._arrive(MEMBERS[step.who - 1])
            case Act.STOP:
                self._stop(MEMBERS[step.who - 1])
            case Act.KILL_LEADER:
                self._kill_leader()
            case Act.HANG_ENGINE:
                self._hang_engine()
            case Act.RESTART_BROKER:
                t = time.monotonic()
                self.restart_broker()
                self.say(f"  broker back after {time.monotonic() - t:.2f} s")

    def _arrive(self, cp: str) -> None:
        app = self.drivers[cp]
        answer = app.charge()
        self.say(f"  {app.driver}'s app asks at {cp}: {answer}")
        self.site.plug_ev(cp, EV_PLAN)
        self.charging[cp] = (time.monotonic(), float("inf"))

    def _stop(self, cp: str) -> None:
        app = self.drivers[cp]
        start = self.charging[cp][0]
        self.charging[cp] = (start, time.monotonic())
        done = app.stop()
        said = (done.stdout.strip() or done.stderr.strip())[:200]
        if done.returncode != 0 and cp in self.hit:
            said += f" (its session ended with {cp}'s restart, and its ticket)"
        self.say(f"  {app.driver}'s app stops at {cp}: {said}")
        try:
            if app.wait(15) is None:
                self.say(f"  {app.driver}'s app had no ticket 15 s after the stop")
            wait_for(lambda: not self._session_at(cp), 15, f"{cp}'s session to end")
        finally:
            self.site.unplug_ev(cp)

    def _kill_leader(self) -> None:
        assert self.operator is not None
        self.operator.set_limit(LIMIT_A)  # a committed command: its answer names the leader
        leader = self.operator.leader
        if leader not in self.site.points:
            self.say(f"  no leader known ({leader!r}): nothing killed")
            return
        t = time.monotonic()
        self.site.signal(leader, signal.SIGKILL)
        self.hit[leader] = [t, float("inf")]
        took: float | None = None
        try:
            self.operator.call("set_limit", {"limit_a": LIMIT_A}, timeout=10.0)
            took = time.monotonic() - t
        except (SiteRefused, KvTimeout) as exc:
            self.say(f"  the command after the kill: {exc}")
        self.failovers.append((leader, took))
        self.say(f"  killed {leader} (the leader): next command committed "
                 f"{'never' if took is None else f'after {took * 1000:.0f} ms'}, by {self.operator.leader}")

    def _hang_engine(self) -> None:
        """SIGSTOP of a follower's `evnet cp`; its monitor's alert is looked for while the timeline goes on."""
        assert self.operator is not None
        leader = self.operator.leader
        cp = next(c for c in reversed(MEMBERS) if c != leader and c not in self.hit)
        self.site.signal(cp, signal.SIGSTOP)
        self.hit[cp] = [time.monotonic(), float("inf")]
        self._hanging[cp] = self.hit[cp][0]
        self.say(f"  hung {cp}'s engine (SIGSTOP)")

    def _watch_hung(self, now: float) -> None:
        """The monitor of a hung engine says so (engine_lost), within its heartbeats; 10 s is never."""
        for cp, t in list(self._hanging.items()):
            lost = [h for h in self.watch.since(t) if h.cp == cp and h.kind == "monitor"
                    and h.body.get("event") == "engine_lost"] if self.watch is not None else []
            if lost or now - t > 10.0:
                took = lost[0].t - t if lost else None
                del self._hanging[cp]
                self.hung.append((cp, took))
                self.say(f"  {cp}'s monitor " + ("never said its engine hung" if took is None else
                                                 f"cut the safety line {took:.1f} s after the hang"))

    # ------------------------------------------------------------------ what the drivers see

    def _points(self) -> dict[str, dict[str, Any]]:
        state = self.watch.state() if self.watch is not None else None
        points = (state or {}).get("charge_points")
        return points if isinstance(points, dict) else {}

    def _session_at(self, cp: str) -> str | None:
        session = self._points().get(cp, {}).get("session")
        return session if isinstance(session, str) else None

    def _ask_again_where_needed(self, now: float) -> None:
        """A driver whose charge point restarted under its car (the chaos) finds the session ended with its
        ticket and the car still plugged in: it asks again from the app, as a driver would."""
        for cp, (start, end) in self.charging.items():
            if not start < now < end or cp not in self.hit or now - self._asked.get(cp, 0.0) < ASK_AGAIN_S:
                continue
            latest = self.sampler.latest() if self.sampler is not None else None
            amps = latest.amps.get(cp) if latest is not None else None
            point = self._points().get(cp, {})
            proc, app = self.site.points[cp].proc, self.drivers[cp]
            restarted = self.site.points[cp].started_at > self.hit[cp][0]
            if restarted and amps is not None and amps > CHARGING_A:
                if self.hit[cp][1] == float("inf"):
                    self.hit[cp][1] = now  # charging again after its restart: the chaos' hit on it is over
                continue
            up_s = now - self.site.points[cp].started_at
            back = restarted and proc is not None and proc.poll() is None and up_s > 1.0
            if back and not app.following() and point.get("plugged") and point.get("session") is None:
                self._asked[cp] = now
                self.asked_again += 1
                self.say(f"  {app.driver}'s app had its ticket from {cp}'s restart under the car; it asks again: "
                         f"{app.charge()}")

    def _all_settled(self) -> bool:
        state = self.watch.state() if self.watch is not None else None
        return state is not None and not state.get("sessions") and all(
            p.ev is None or p.ev.poll() is not None for p in self.site.points.values())

    def _kwh(self, cp: str) -> float | None:
        latest = self.sampler.latest() if self.sampler is not None else None
        return latest.kwh.get(cp) if latest is not None else None

    # ------------------------------------------------------------------ the record

    def record(self) -> Record:
        assert self.sampler is not None and self.watch is not None
        samples = list(self.sampler.samples)
        sessions = {h.body["session"] for h in self.watch.of("/telemetry") if isinstance(h.body.get("session"), str)}
        state = self.watch.state() or {}
        return Record(limit_a=float(LIMIT_A), samples=samples, tickets=self.watch.tickets(),
                      meter_kwh={cp: metered(samples, cp) for cp in MEMBERS}, charging=dict(self.charging),
                      sessions_started=len(sessions), sessions_open_at_end=len(state.get("sessions") or []),
                      failovers=self.failovers, hit={cp: (a, b) for cp, (a, b) in self.hit.items()}, hung=self.hung,
                      apps={a.driver: {str(t.get("session")) for t in a.tickets()} for a in self.drivers.values()})

    def close(self) -> None:
        for app in self.drivers.values():
            app.close()
        if self.operator is not None:
            self.operator.close()
        if self.sampler is not None:
            self.sampler.stop()
        if self.watch is not None:
            self.watch.stop()


def metered(samples: list[Any], cp: str) -> tuple[float, float]:
    """The energy a meter counted over the run, as (0, total): the sum over its lives (a meter that starts
    again from 0, as a simulated one inside a restarted process does, begins a new life)."""
    total, first, last = 0.0, None, None
    for s in samples:
        kwh = s.kwh.get(cp)
        if kwh is None:
            continue
        if last is not None and kwh < last:  # a new life
            total += last - first
            first = kwh
        first = kwh if first is None else first
        last = kwh
    if first is not None and last is not None:
        total += last - first
    return 0.0, total
