"""One charge point process of the simulated site, wired as `evnet cp` wires it (docs/chargepoint.md).

Its Paxos `Replica` holds a `SiteMachine`; its `Bridge` stands between that replica and its
`EngineCore` (`confirm_starts`): each bridge output goes to the engine call it names, a `Propose` to
the local replica as this charge point's own client (its id, its own request counter), each
engine action to the bridge once carried out (after the journal has it), each good meter reading to
both, and after every applied batch the results of the bridge's own proposals (`site_result`) and
`site_view(machine.view(cp))`. The replica is carried out as the runner does (runner.py,
`_carry_out`): what may leave before the fsync leaves, the rest and the applied commands after it.
One clock per charge point (the Paxos simulator's `SimNode`: its own rate and offset) drives all three.
A kill drops the writes not yet fsynced and everything in memory; the journal and the disk remain.
"""

from __future__ import annotations

import json
import random
from typing import Any

from firmware.chargepoint import (
    Bridge,
    BridgeSettings,
    Output,
    Propose,
    Tag,
    TicketSettled,
)
from firmware.chargepoint.sim.bugs import bridge_for, machine_for
from firmware.chargepoint.sim.cable import Cable
from firmware.chargepoint.sim.journal import SimJournal
from firmware.engine.actions import Action, SessionOpened, SessionVoided, TicketClosed
from firmware.engine.commands import apply_command
from firmware.engine.core import EngineCore, ReadMeter
from firmware.engine.pilot_sm import SetContactor, SetPilotError, SetPwm
from firmware.paxos.core import messages as m
from firmware.paxos.core.options import Options
from firmware.paxos.core.ready import Applied
from firmware.paxos.core.replica import Replica
from firmware.paxos.sim.world import SimNode
from firmware.site import SiteMachine, SiteSetup
from hal.pilot.conversions import current_for_duty

SiteWorld = Any  # world.py drives this module: named by role, not imported (no cycle)

POLL_S = 1.0     # the meter poller's interval (engine clock)
MONITOR_S = 1.0  # after a kill, the monitor's missed heartbeats cut the safety line (the contactor opens)
REQ_SPAN = 10**9  # request numbers of one incarnation: a restarted client starts above every earlier one


class Station:
    def __init__(self, world: SiteWorld, cp: str, setup: SiteSetup, settings: BridgeSettings, options: Options,
                 rate: float, offset: float) -> None:
        self.world, self.id, self.setup, self.settings, self.options = world, cp, setup, settings, options
        self.node = SimNode(cp, rate, offset)
        self.cable = Cable(cp, settings.fallback_a)
        self.journal = SimJournal()
        self.replica: Replica | None = None
        self.machine: SiteMachine | None = None
        self.engine: EngineCore | None = None
        self.bridge: Bridge | None = None
        self.req = 0
        self.tags: dict[int, Tag] = {}
        self.sent: dict[int, float] = {}       # renewals: request -> when it was sent (simulated time)
        self.replica_deadline: float | None = None
        self.next_poll = 0.0
        self.sessions = 0
        self.members = frozenset(setup.fallbacks_da)
        self._stale = True  # the engine or the bridge had an input since their deadlines were read
        self._engine_at: float | None = None
        self._bridge_at: float | None = None
        self._own_at = 0.0  # the earliest of those two and the next meter poll

    @property
    def up(self) -> bool:
        return self.replica is not None

    def local(self) -> float:
        return self.node.local(self.world.now)

    # -- life ------------------------------------------------------------------------------------------------

    def boot(self) -> None:
        """Start (or restart after a kill): the replica from its disk, the engine from its journal."""
        node, world = self.node, self.world
        node.incarnation += 1
        node.busy_until = world.now
        self.req = node.incarnation * REQ_SPAN
        self.tags.clear()
        self.machine = machine_for(world.faults.bugs, self.setup)
        self.replica = Replica(self.id, list(self.setup.fallbacks_da), world.site, self.machine,
                               durable=node.disk.load(), options=self.options,
                               rng=random.Random(f"{world.seed}/{self.id}/{node.incarnation}"), now=self.local(),
                               epoch=node.incarnation)
        s = self.settings
        self.engine = EngineCore(self.id, price_eur_kwh=s.price_eur_kwh, max_current_a=s.max_current_a,
                                 fallback_a=s.fallback_a, new_session_id=self._new_id, confirm_starts=True)
        self.bridge = bridge_for(world.faults.bugs, s)
        self._stale = True
        now = self.local()
        self.cable.offers = [(world.now, 0.0)]
        self.engine_do(self.engine.start(now))
        self.engine_do(self.engine.meter_reading(self.cable.reading(now), now))
        if self.cable.pilot != "A":
            self.engine_do(self.engine.pilot_reading(self.cable.pilot, now))
        self.do(self.bridge.start(now))
        for ticket in list(self.journal.untaken.values()):  # evse.py's _recover: tickets nobody took go out again
            self.do(self.bridge.engine_action(TicketClosed(ticket), now))
        for session, (driver, start) in list(self.journal.opened.items()):  # a session the kill left open
            self.engine_do(self.engine.recover(session, driver, start, "restart", now, self.cable.reading(now)))
        self.next_poll = now + POLL_S
        self.carry_out()

    def kill(self) -> None:
        """kill -9: the fsyncs in flight are lost, so is everything in memory; the monitor then opens the contactor."""
        if self.replica is None:
            return
        self.world.trace(f"kill {self.id}")
        self.world.watch.offered(self, 0.0)  # whatever the duty does now, no engine stands behind it
        self.node.disk.crash()
        self.node.epoch += 1
        self.node.timer_gen += 1
        self.node.timer_at = None
        self.replica = self.machine = self.engine = self.bridge = None
        self.world.push(self.world.now + MONITOR_S, self.world.CUT_SAFETY, self, self.node.epoch)

    def safety_cut(self, epoch: int) -> None:
        if self.node.epoch == epoch and self.replica is None:
            self.cable.close(False, None, self.world.now)
            self.cable.update(self.world.now, running=False)

    def _new_id(self) -> str:
        self.sessions += 1
        return f"{self.id}-{self.node.incarnation}-{self.sessions}"

    # -- inputs ----------------------------------------------------------------------------------------------

    def deliver(self, msg: m.Message) -> None:
        if self.replica is not None:
            self.replica.step(msg, self.local())
            self.carry_out()

    def timer(self, gen: int) -> None:
        if gen != self.node.timer_gen or self.replica is None:
            return
        assert self.engine is not None and self.bridge is not None
        now = self.local()
        if self.replica_deadline is not None and now >= self.replica_deadline:
            self.replica.tick(now)
        if now >= self.next_poll:
            self.next_poll = now + POLL_S
            self._stale = True
            reading = self.cable.reading(now)
            self.engine_do(self.engine.meter_reading(reading, now))
            self.do(self.bridge.meter(reading, now))
        deadline = self._deadlines()[0]
        if deadline is not None and now >= deadline:
            self.engine_do(self.engine.tick(now))
        deadline = self._deadlines()[1]
        if deadline is not None and now >= deadline:
            self.do(self.bridge.tick(now))
        self.carry_out()

    def _deadlines(self) -> tuple[float | None, float | None]:
        """The engine's and the bridge's next deadlines, read again only after either had an input (a
        deadline is a moment, not a countdown: it changes only with their state)."""
        if self._stale and self.engine is not None and self.bridge is not None:
            self._stale = False
            e, b = self._engine_at, self._bridge_at = self.engine.next_deadline(), self.bridge.next_deadline()
            self._own_at = min(t for t in (e, b, self.next_poll) if t is not None)
        return self._engine_at, self._bridge_at

    def pilot(self, state: str) -> None:
        """The EV moved the pilot (A: unplugged, B: plugged, C: asking for energy)."""
        self.cable.pilot = state
        if self.engine is not None:
            self.engine_do(self.engine.pilot_reading(state, self.local()))
            self.carry_out()
        self.cable.update(self.world.now, self.up)

    def propose_raw(self, command: bytes) -> None:
        """A member command of the simulation itself (the first operator), not the bridge's."""
        if self.replica is not None:
            self.req += 1
            self.replica.propose(self.id, self.req, command, self.local())
            self.carry_out()

    # -- outputs ---------------------------------------------------------------------------------------------

    def do(self, outputs: list[Output]) -> None:
        """Carry out what the bridge says, as `evnet cp` does."""
        self._stale = True
        engine, now = self.engine, self.local()
        assert engine is not None and self.replica is not None
        for out in outputs:
            match out:
                case Propose(tag, command):
                    self.req += 1
                    self.tags[self.req] = tag
                    if tag.op == "renew":
                        self.sent[self.req] = self.world.now
                    self.replica.propose(self.id, self.req, command, now)
                case TicketSettled(session, outcome, _):
                    self.journal.taken(session)
                    self.world.settled(self.id, session, outcome)
                case _:
                    self.engine_do(apply_command(engine, out, now))

    def offer(self, amps: float) -> None:
        self.cable.offer(amps, self.world.now)
        self.world.watch.offered(self, amps)
        self.world.ev_follows(self)

    def engine_do(self, actions: list[Action]) -> None:
        """Carry out what the engine core says, journal first, and show the bridge each action."""
        self._stale = True
        engine, bridge, world = self.engine, self.bridge, self.world
        assert engine is not None
        for action in actions:
            now = self.local()
            match action:
                case SetContactor(closed, _):
                    if closed and bridge is not None and not bridge.available:
                        world.watch.fail(f"stopped: {self.id} closed its contactor while the operator's stop holds")
                    self.cable.close(closed, engine.session.session_id, world.now)
                case SetPwm(duty):
                    amps = 0.0 if duty is None else current_for_duty(duty) or 0.0
                    self.offer(amps)
                case SetPilotError():  # -12 V, no duty: nothing offered until a duty is set again
                    self.offer(0.0)
                case ReadMeter(token):
                    self.cable.advance(world.now)
                    self.engine_do(engine.meter_reading(self.cable.reading(now), now, token=token))
                case SessionOpened(session, driver, start):
                    self.journal.open(session, driver, start)
                case TicketClosed(ticket):
                    self.journal.closed(ticket)
                    world.engine_ticket(self.id, ticket)
                case SessionVoided(session, _, _):
                    self.journal.voided(session)
            if bridge is not None:
                self.do(bridge.engine_action(action, now))
        self.cable.update(world.now, self.up)

    # -- the replica, as the runner carries it out -----------------------------------------------------------

    def carry_out(self) -> None:
        r, node, world = self.replica, self.node, self.world
        if r is None:
            return
        ready = r.ready()
        self.replica_deadline = ready.deadline
        if ready.is_empty():  # most heartbeats and their replies: nothing to write, send or apply
            self.set_timer()
            return
        parts = ready.partition()
        early, after = list(parts.free), list(parts.votes)
        (early if ready.promised is None else after).extend(parts.accepts)
        (after if ready.self_chosen else early).extend(parts.learned)
        waiting = node.busy_until > world.now  # an earlier write is not durable yet: nothing may overtake it
        if ready.must_persist():
            node.disk.write(ready.promised, ready.accepted, ready.snapshot)
            node.busy_until = max(world.now, node.busy_until) + world.rng.uniform(0.0002, 0.004)
            if waiting:
                early, after = [], early + after
            world.send_all(self.id, early)
            world.push(node.busy_until, world.FSYNC, self, (node.epoch, after, ready.replies, ready.applied))
        elif waiting:
            world.push(node.busy_until, world.EMIT, self, (node.epoch, early + after, ready.replies, ready.applied))
        else:
            self.emit(early + after, ready.replies, ready.applied)
        self.set_timer()

    def fsynced(self, payload: tuple[int, list, list, list[Applied]]) -> None:
        if payload[0] == self.node.epoch:
            self.node.disk.fsync()
            self.emit(*payload[1:])

    def emitted(self, payload: tuple[int, list, list, list[Applied]]) -> None:
        if payload[0] == self.node.epoch:
            self.emit(*payload[1:])

    def emit(self, messages: list, replies: list[m.ClientReply], applied: list[Applied]) -> None:
        world = self.world
        world.send_all(self.id, messages)
        for reply in replies:
            if reply.client not in self.members:
                world.send_reply(self.id, reply)
        if applied and self.bridge is not None and self.machine is not None:
            now = self.local()
            world.applied(self, applied)
            for a in applied:
                tag = self.tags.pop(a.req, None) if a.client == self.id else None
                if tag is not None and a.result:
                    if tag.op == "renew" and a.fresh:
                        world.renewed(self, self.sent.pop(a.req, world.now))
                    self.do(self.bridge.site_result(tag, json.loads(a.result), now))
            self.do(self.bridge.site_view(self.machine.view(self.id), now))
            self.carry_out()

    def set_timer(self) -> None:
        if self.engine is None or self.bridge is None:
            return
        self._deadlines()
        local, replica = self._own_at, self.replica_deadline
        if replica is not None and replica < local:
            local = replica
        node, now = self.node, self.world.now
        at = node.to_global(local) + 1e-9
        if at < now + 1e-6:
            at = now + 1e-6
        if node.timer_at is not None and now < node.timer_at <= at:
            return
        node.timer_gen += 1
        node.timer_at = at
        self.world.push(at, self.world.TIMER, self, node.timer_gen)
