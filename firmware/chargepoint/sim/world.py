"""One simulated site of 3-7 charge points, driven by one seeded event queue (firmware/paxos/sim's way).

Each charge point is a `Station` (station.py: replica + site machine + bridge + engine + journal)
with its `Cable` (cable.py: the EV, the contactor, the meter). The broker is the Paxos simulator's
`Network` (loss, duplication, slow tail, partitions); disks are its `SimDisk`, clocks its `SimNode`.
Drivers and the operator are outside clients (apps.py). The faults come from the seed (faults.py);
the checks (checks.py) watch every event and look at the end.
"""

from __future__ import annotations

import heapq
import logging
import random
import time
from collections import Counter
from typing import Any

from firmware.chargepoint import BridgeSettings
from firmware.chargepoint.sim.apps import RETRY_S, App, key_from
from firmware.chargepoint.sim.checks import RunResult, Watch, check_end
from firmware.chargepoint.sim.faults import LEASE_S, LONG, SHORT, SiteFaults, Visit
from firmware.chargepoint.sim.station import Station
from firmware.engine.metering import Ticket
from firmware.paxos.core import messages as m
from firmware.paxos.core.options import Options
from firmware.paxos.core.ready import Applied
from firmware.paxos.sim.network import Network
from firmware.site import SiteSetup, member_command

SITE = "sim"
# A slower heartbeat than a real site's (50 ms): the same protocol, a tenth of the events over minutes.
OPTIONS = Options(heartbeat_interval=0.2, election_min=0.6, election_max=1.2, snapshot_every=300)
PLUG_TO_C_S = 6.0    # a PWM EV asks for energy once the engine stopped waiting for ISO 15118 (5 s)
UNPLUG_S = 2.0       # from B (stopped asking) to A (unplugged)
DRIVER_LOOKS_S = 15.0  # a driver whose plugged-in EV does not charge asks again this often


class SiteWorld:
    DELIVER, TIMER, FSYNC, EMIT, EV, APP, RETRY, CUT, OUTAGE, KILL, BOOT, CUT_SAFETY, LOOK, SHARES = range(14)

    def __init__(self, seed: int, faults: SiteFaults, verbose: bool = False) -> None:
        self.seed, self.faults, self.verbose, self.site = seed, faults, verbose, SITE
        self.rng = random.Random(f"{seed}/world")
        self.now = 0.0
        self._queue: list[tuple[float, int, int, Any, Any]] = []
        self._seq = 0
        self.events = 0
        f = faults
        self.net = Network(random.Random(f"{seed}/net"), loss=f.net.loss, duplicate=f.net.duplicate,
                           slow_max=f.net.slow_max, replicas=frozenset(f.cps))
        self.outage = False
        self.setup = SiteSetup.of(SITE, f.limit_a, list(f.cps), f.fallback_a, lease_s=LEASE_S)
        self.stations = {cp: Station(self, cp, self.setup,
                                     BridgeSettings(cp=cp, price_eur_kwh=0.30, max_current_a=f.max_a[cp],
                                                    fallback_a=min(f.fallback_a, f.max_a[cp]), lease_s=LEASE_S),
                                     OPTIONS, 1 + self.rng.uniform(-f.drift, f.drift), self.rng.uniform(0, 1000))
                         for cp in f.cps}
        keys = random.Random(f"{seed}/keys")
        self.operator = App("op1", SITE, key_from(keys))
        self.drivers = {v.driver: App(v.driver, SITE, key_from(keys)) for v in f.visits}
        self.apps = {a.client: a for a in [self.operator, *self.drivers.values()]}
        self.watch = Watch(self)
        self.engine_tickets: dict[str, list[Ticket]] = {}
        self.settlements: Counter[tuple[str, str]] = Counter()
        self.leader_killed = False
        self._schedule()

    # -- the queue -------------------------------------------------------------------------------------------

    def push(self, t: float, kind: int, a: Any, b: Any) -> None:
        self._seq += 1
        heapq.heappush(self._queue, (t, self._seq, kind, a, b))

    def _schedule(self) -> None:
        f, rng = self.faults, self.rng
        for st in self.stations.values():
            st.boot()
        self._add_operator()
        for app in self.drivers.values():
            self.operator.queue.append(("add_principal", {"id": app.principal, "role": "driver", "key": app.pubkey}))
        self.push(0.5, self.APP, self.operator, None)
        for v in f.visits:
            self.push(v.arrive, self.EV, self.stations[v.cp], ("arrive", v))
            self.push(v.leave, self.EV, self.stations[v.cp], ("leave", v))
        for cp, t0, t1 in f.cutoffs:
            self.push(t0, self.CUT, frozenset({cp}), None)
            self.push(t1, self.CUT, frozenset(), None)
        for _ in range(f.net.partitions):
            t0 = rng.uniform(5, f.heal - 10)
            cut = frozenset(rng.sample(list(f.cps), rng.randint(1, len(f.cps) // 2)))
            self.push(t0, self.CUT, cut, None)
            self.push(min(t0 + rng.uniform(0.5, 10), f.heal), self.CUT, frozenset(), None)
        for t0, t1 in f.outages:
            self.push(t0, self.OUTAGE, True, None)
            self.push(t1, self.OUTAGE, False, None)
        for cp, t0, down in f.kills:
            self.push(t0, self.KILL, self.stations[cp], down)
        for cp, t0, t1 in f.stops:  # the operator's stop and resume (the operator sends one request at a time)
            self.push(t0, self.APP, self.operator, ("stop_cp", {"cp": cp}))
            self.push(t1, self.APP, self.operator, ("resume_cp", {"cp": cp}))
        for _ in range(f.net.crashes):  # a power cut anywhere, session or not
            self.push(rng.uniform(5, f.heal - 10), self.KILL, self.stations[rng.choice(f.cps)], -rng.uniform(1, 15))
        self.push(f.heal, self.CUT, frozenset(), "heal")
        self.push(f.heal + f.settle, self.SHARES, None, None)

    def _add_operator(self) -> None:
        """The first operator: added with the site key, by a member (any that runs)."""
        st = next((st for st in self.stations.values() if st.up), None)
        if st is not None:
            st.propose_raw(member_command("add_principal", {"id": "op1", "role": "operator",
                                                            "key": self.operator.pubkey}))

    def run(self) -> RunResult:
        started = time.perf_counter()
        queue = self._queue
        stamp = _SimTime(self)
        for handler in logging.getLogger().handlers if self.verbose else ():
            handler.addFilter(stamp)  # the firmware's log lines carry the simulated time, as the trace does
        while queue and queue[0][0] <= self.faults.end:
            t, _, kind, a, b = heapq.heappop(queue)
            self.now = t
            self.events += 1
            try:
                self._handle(kind, a, b)
            except Exception as e:  # noqa: BLE001 - a core raised: a violation of this seed, and the run ends
                self.watch.violations.append(f"exception: {type(e).__name__}: {str(e)[:200]} at {t:.3f} s")
                if self.verbose:
                    raise
                break
            self.watch.after_event()
        for handler in logging.getLogger().handlers:
            handler.removeFilter(stamp)
        self.watch.finish()
        violations = self.watch.violations + check_end(self)
        stats = {"cps": len(self.faults.cps), "limit_a": self.faults.limit_a, "fallback_a": self.faults.fallback_a,
                 "visits": len(self.faults.visits), "events": self.events, "sim_time": self.now,
                 "wall": time.perf_counter() - started, "bugs": sorted(self.faults.bugs),
                 "tickets": sum(len(t) for t in self.engine_tickets.values()), "peak_a": round(self.watch.peak_a, 1),
                 "messages": self.net.sent, "dropped": self.net.dropped}
        return RunResult(self.seed, violations, stats)

    def _handle(self, kind: int, a: Any, b: Any) -> None:
        match kind:
            case self.DELIVER:
                if a in self.apps:
                    app = self.apps[a]
                    if app.answered(b.req, b.result):
                        self.trace(f"{a} <- {b.sender} req={b.req} {b.result[:160]!r}")
                        last = app.history[-1]
                        if app is self.operator and last.answers[0].get("error") == "unknown_principal":
                            app.queue.appendleft((last.op, last.args))  # sent before the site knew its operator
                            self._add_operator()  # that member command may have been lost: again (idempotent)
                        if last.op == "request_charge" and "redirected_from" in last.answers[0]:
                            app.queue.append(("stop_charge", {}))  # the EV is plugged in here: withdraw it
                        self.push(self.now + 0.5, self.APP, app, None)
                else:
                    self.stations[a].deliver(b)
            case self.TIMER:
                a.timer(b)
            case self.FSYNC:
                a.fsynced(b)
            case self.EMIT:
                a.emitted(b)
            case self.EV:
                self._ev(a, *b)
            case self.APP:
                if b is not None:
                    a.queue.append(b)
                sent = a.next(self.now)
                if sent is not None:
                    self._send_request(a, sent.req)
            case self.RETRY:
                if a.current is not None and a.current.req == b:
                    self._send_request(a, b)
            case self.CUT:
                self.net.cut = a
                self.trace(f"partition {sorted(a)}" if a else "partition healed")
                if b == "heal":
                    self.outage = False
                    self.net.loss = 0.0
                    for st in self.stations.values():
                        if not st.up:
                            st.boot()
            case self.OUTAGE:
                self.outage = a
                self.trace(f"broker {'down' if a else 'back'}")
            case self.KILL:
                self._kill(a, b)
            case self.BOOT:
                if not a.up:
                    self.trace(f"boot {a.id}")
                    a.boot()
            case self.CUT_SAFETY:
                a.safety_cut(b)
            case self.LOOK:
                self._driver_looks(a, b)
            case self.SHARES:
                self.watch.shares()

    # -- the EVs and their drivers ---------------------------------------------------------------------------

    def _ev(self, st: Station, what: str, v: Visit) -> None:
        cable = st.cable
        if what == "arrive":
            cable.advance(self.now)
            cable.ev = v
            self.trace(f"{v.driver}'s EV plugs in at {st.id} (wants {v.wants_a} A, reacts in {v.reaction_s:.1f} s"
                       f"{', stubborn' if v.stubborn else ''})")
            st.pilot("B")
            self.push(self.now + PLUG_TO_C_S, self.EV, st, ("C", v))
            self.push(self.now + 1.0, self.LOOK, v, True)
        elif cable.ev is not v:
            return
        elif what == "C":
            st.pilot("C")
        elif what == "leave":
            self.trace(f"{v.driver}'s EV leaves {st.id}")
            st.pilot("B")
            self.push(self.now + UNPLUG_S, self.EV, st, ("unplug", v))
            app = self.drivers[v.driver]  # a request still on its way must not wait there for the next EV
            app.queue.append(("stop_charge", {}))
            self.push(self.now, self.APP, app, None)
        elif what == "unplug":
            st.pilot("A")
            cable.advance(self.now)
            cable.ev = None
        elif what == "follow":
            cable.update(self.now, st.up)

    def ev_follows(self, st: Station) -> None:
        """The duty changed: the EV takes it in after its reaction time."""
        if st.cable.ev is not None:
            self.push(self.now + st.cable.ev.reaction_s + 1e-6, self.EV, st, ("follow", st.cable.ev))

    def _driver_looks(self, v: Visit, first: bool) -> None:
        """A driver whose EV is plugged in and not charging asks the site for a charge there."""
        cable = self.stations[v.cp].cable
        if cable.ev is not v or self.now >= v.leave:
            return
        app = self.drivers[v.driver]
        if first or (not cable.contactor and app.current is None and not app.queue):
            app.queue.append(("request_charge", {"at": v.cp}))
            self.push(self.now, self.APP, app, None)
        self.push(self.now + DRIVER_LOOKS_S, self.LOOK, v, False)

    # -- faults ----------------------------------------------------------------------------------------------

    def _kill(self, st: Station, down: float) -> None:
        if self.now >= self.faults.heal - 5 or not st.up:
            return
        if down > 0 and (st.engine is None or st.engine.meter.session_id is None or not st.cable.contactor):
            self.push(self.now + 1.0, self.KILL, st, down)  # mid-session: wait for one
            return
        st.kill()
        self.push(self.now + abs(down), self.BOOT, st, None)

    def applied(self, st: Station, applied: list[Applied]) -> None:
        """Every batch a station applied (after its fsync): the checks' record; the leader's kill mid-rebalancing."""
        self.watch.applied(st, applied)
        delay = self.faults.leader_kill
        if (delay is not None and not self.leader_killed and st.replica is not None and st.replica.is_leader
                and self.now < self.faults.heal - 15 and st.machine is not None
                and any(c.limit_reason == "waiting_for_others" for c in st.machine.state.cps.values())):
            self.leader_killed = True
            self.trace(f"{st.id} leads while a raise waits: killed in {delay:.3f} s")
            self.push(self.now + delay, self.KILL, st, -self.rng.uniform(2, 10))

    def renewed(self, st: Station, sent: float) -> None:
        self.watch.renewed(st, sent)

    def engine_ticket(self, cp: str, ticket: Ticket) -> None:
        self.engine_tickets.setdefault(ticket.session_id, []).append(ticket)

    def settled(self, cp: str, session: str, outcome: str) -> None:
        self.settlements[(session, outcome)] += 1

    # -- the broker ------------------------------------------------------------------------------------------

    def _fate(self, src: str, dst: str) -> list[float]:
        if self.outage:
            self.net.sent += 1
            self.net.dropped += 1
            return []
        return self.net.fate(src, dst)

    def send_all(self, src: str, messages: list[tuple[str, m.Message]]) -> None:
        for to, msg in messages:
            for d in self._fate(src, to):
                self.push(self.now + d, self.DELIVER, to, msg)

    def send_reply(self, src: str, reply: m.ClientReply) -> None:
        for d in self._fate(src, reply.client):
            self.push(self.now + d, self.DELIVER, reply.client, reply)

    def _send_request(self, app: App, req: int) -> None:
        sent = app.history[req - 1]
        target = self.rng.choice(self.faults.cps)
        self.trace(f"{app.client} -> {target} req={req} {sent.op} {sent.args}")
        for d in self._fate(app.client, target):
            self.push(self.now + d, self.DELIVER, target, m.ClientRequest(SITE, app.client, req, sent.command))
        self.push(self.now + RETRY_S, self.RETRY, app, req)

    def trace(self, text: str) -> None:
        if self.verbose:
            print(f"{self.now:10.4f}  {text}")


class _SimTime(logging.Filter):
    def __init__(self, world: SiteWorld) -> None:
        super().__init__()
        self.world = world

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = f"{self.world.now:10.4f}  {record.msg}"
        return True


def run_seed(seed: int, bugs: frozenset[str] = frozenset(), cps: int | None = None, verbose: bool = False,
             quiet: bool = False, short: bool = False) -> RunResult:
    """One run: the site and its faults drawn from the seed (bugs switched on as given), every check made;
    `short`: 40 s of faults instead of 90 (faults.py, SHORT)."""
    faults = SiteFaults.draw(random.Random(seed), cps, bugs, quiet, SHORT if short else LONG)
    result = SiteWorld(seed, faults, verbose).run()
    result.stats.update(cps_arg=cps, quiet=quiet, short=short)
    return result
