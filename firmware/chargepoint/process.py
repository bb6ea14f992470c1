"""`evnet cp`: one charge point of a site — its engine, its replica of the site, and the bridge between.

Three threads, each owning its state, joined only by queues and thread-safe calls:
- the engine's control loop (`Evse`): pilot, contactor, meter, session journal. It never waits
  for the others; what it did goes to the bridge's queue (`site_observer`);
- the replica's loop (`ReplicaRunner` with a `SiteMachine`): consensus over the broker. What it
  applied goes to the bridge's queue (`on_applied`), with this charge point's view of the state;
- the bridge's loop: the pure `Bridge` fed from that queue and its timers; its outputs become
  engine calls (which only queue events for the engine) and proposals (`runner.submit`).

Energy never waits for consensus: a stalled replica or bridge only stops the renewals, and the
engine's own lease falls to the fallback current. One process rather than two (engine and
replica): one configuration, one service, one watchdog; the engine's loop is not slowed by the
replica (measured in bench/site.py). A bridge or replica thread that dies ends the process
(exit 1): the engine stops safely (contactor open, session journaled) and systemd starts it
again; the journal gives every session its one ticket.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import IO, Any

from evnet.clock import RealClock
from evnet.config import Config, load_config
from evnet.logs import FoldedLog, event_logger, setup_logging
from evnet.serve import serve
from firmware.chargepoint.backoffice import BackOffice, OcppRef, data_dir_of
from firmware.chargepoint.bridge import Bridge
from firmware.chargepoint.console import HELP as CONSOLE_HELP
from firmware.chargepoint.console import Console
from firmware.chargepoint.housekeeping import Housekeeping
from firmware.chargepoint.outputs import (
    Output,
    Propose,
    Tag,
    TicketSettled,
)
from firmware.chargepoint.settings import SITE_OPTIONS, BridgeSettings
from firmware.engine.evse import Evse, ManualStartPressed, SiteEvent
from firmware.engine.journal import JournalError, default_dir
from firmware.paxos.core.ready import Applied
from firmware.paxos.io.datadir import DataDirLockedError
from firmware.paxos.io.runner import ReplicaRunner
from firmware.site import CpView, SiteMachine, SiteSetup
from firmware.site.publication import StatePublisher
from hal.gpio import GpioError
from hal.meter import MeterError, MeterReading
from hal.pilot import CableError


@dataclass(frozen=True)
class _Result:
    req: int
    result: bytes


@dataclass(frozen=True)
class _View:
    view: CpView


@dataclass(frozen=True)
class _Engine:
    event: SiteEvent


@dataclass(frozen=True)
class _Button:
    """The manual-start button pressed on the console (`driver`: the one named, else the first local driver).
    With a back office, a named driver is an id token it authorizes first (`local`: it could not be asked)."""

    driver: str | None
    local: bool = False


@dataclass(frozen=True)
class _Wake:
    """Only wakes the loop (to stop)."""


_Input = _Result | _View | _Engine | _Button | _Wake


def site_setup(cfg: Config) -> SiteSetup:
    """The genesis every member builds from its own configuration (the same numbers at every member)."""
    return SiteSetup.of(cfg.site_id, cfg.site.limit_a, cfg.site.members, cfg.site.fallback_a,
                        lease_s=cfg.site.lease_s)


def replica_dir(cfg: Config) -> str:
    """SITE/CP/replica beside the engine's journal (SITE/CP/engine): under systemd's StateDirectory, else
    ~/.local/state/evnet."""
    return os.path.join(os.path.dirname(default_dir(cfg.site_id, cfg.cp_id)), "replica")


class ChargePoint:
    """The engine, the replica and the bridge of charge point `cfg.cp_id`, wired; `start`, then `stop`."""

    def __init__(self, cfg: Config, data_dir: str, *, speed: float = 1.0, clock_origin: float | None = None,
                 monitor: bool = True, mqtt: bool = True, console: IO[str] | None = None) -> None:
        self.cfg = cfg
        self.cp = cfg.cp_id
        self.log = event_logger("cp", cp=self.cp, site=cfg.site_id)
        self._folded = FoldedLog(self.log)
        self.inputs: queue.SimpleQueue[_Input] = queue.SimpleQueue()
        self.bridge = Bridge(BridgeSettings.of(cfg, speed=speed))
        self.machine = SiteMachine(site_setup(cfg))
        self.runner = ReplicaRunner(cfg, data_dir, machine=self.machine, on_applied=self._applied,
                                    admit=self.machine.admit, options=SITE_OPTIONS)
        try:
            self.evse = Evse(cfg, clock=RealClock(speed, clock_origin), mqtt=mqtt, monitor=monitor,
                             site_observer=lambda event, _now: self.inputs.put(_Engine(event)))
        except BaseException:
            self.runner.stop()
            raise
        self.clock = self.evse.clock
        self._tags: dict[int, Tag | OcppRef] = {}  # request number -> the bridge's or the back office's proposal
        self._req = time.time_ns() // 1000  # grows across restarts: a restarted member never reuses one
        self._req_lock = threading.Lock()  # the bridge's thread and the replica's (housekeeping) propose
        self.housekeeping = Housekeeping()
        self.publisher = StatePublisher(min_interval=1.0)  # evnet/{site}/state, by the leader
        self._publishing = threading.Lock()  # the replica offers each change, the bridge sends what was held
        self._was_leader = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"bridge-{self.cp}", daemon=True)
        self.failures = 0  # inputs whose handling raised (a bug): counted, logged, the loop goes on
        self.console = None if console is None else Console(console, lambda d: self.inputs.put(_Button(d)), self.log)
        self.backoffice = None
        if cfg.ocpp is not None:
            try:
                self.backoffice = BackOffice(cfg, data_dir_of(data_dir), propose=self._propose, log=self.log,
                                             local_start=lambda token: self.inputs.put(_Button(token, local=True)))
            except BaseException:
                self.evse.stop()
                self.runner.stop()
                raise

    # ------------------------------------------------------------------ life cycle

    def start(self, wait: float = 0.0) -> ChargePoint:
        """Start all three; `wait` s for the broker at most (the engine never waits for it: 0 s)."""
        self._thread.start()
        self.runner.start(wait)
        self.evse.start()
        if self.backoffice is not None:
            self.backoffice.start()
        if self.console is not None:
            self.console.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self.inputs.put(_Wake())
        self.evse.stop()
        self._thread.join(5)
        if self.backoffice is not None:
            self.backoffice.stop()
        self.runner.stop()

    def dead_thread(self) -> str | None:
        """The part whose thread died (the process must end and be restarted), or None."""
        if not self.evse.alive:
            return "engine's control loop"
        if not self._thread.is_alive():
            return "bridge's thread"
        if not self.runner.alive:
            return "replica's thread"
        if self.backoffice is not None:
            if not self.backoffice.alive:
                return "back office's link"
            if self.backoffice.restart is not None:
                return f"restart: the back office asked for a reset ({self.backoffice.restart})"
        return None

    # ------------------------------------------------------------------ the replica's thread

    def _applied(self, applied: list[Applied]) -> None:
        """On the replica's thread: results of our own proposals, then our view of the new state."""
        for a in applied:
            if a.client == self.cp and a.fresh:
                self.inputs.put(_Result(a.req, a.result))
        self.inputs.put(_View(self.machine.view(self.cp)))
        leader, now = self.runner.replica.is_leader, time.monotonic()
        for command in self.housekeeping.due(self.machine.state, leader, now):
            self._propose(command)
        self._publish_state(leader, applied[-1].slot, now)

    def _publish_state(self, leader: bool, slot: int, now: float) -> None:
        """The leader publishes the site's state, retained, on change and paced (firmware/site/publication.py)."""
        with self._publishing:
            if leader and not self._was_leader:
                self.publisher.reset()  # the retained state may be a predecessor's
            self._was_leader = leader
            if leader:
                self._send_state(self.publisher.offer(self.machine.summary(), slot, now))

    def _flush_state(self) -> float | None:
        """On the bridge's thread: a change the pacing held back goes out when its time comes, not with the next
        command applied (a quiet site's last change waited for a renewal). When the next one is due (real time)."""
        with self._publishing:
            if self._was_leader:
                self._send_state(self.publisher.poll(time.monotonic()))
            return self.publisher.due()

    def _send_state(self, payload: bytes | None) -> None:
        if payload is not None:
            self.runner.publish(self.runner.topics.state, payload, qos=1, retain=True)

    def _propose(self, command: bytes, tag: Tag | OcppRef | None = None) -> None:
        """Propose `command` as this member (any thread); the bridge's result comes back by `tag`."""
        with self._req_lock:
            self._req += 1
            req = self._req
            if tag is not None:
                self._tags[req] = tag
                if len(self._tags) > 10_000:  # results that never came (lost in a leader change)
                    del self._tags[next(iter(self._tags))]
        self.runner.submit(req, command)

    # ------------------------------------------------------------------ the bridge's thread

    def _run(self) -> None:
        self._carry_out(self.bridge.start(self.clock.monotonic()))
        while not self._stop.is_set():
            now = self.clock.monotonic()
            due = self.bridge.next_deadline()
            wait = 1.0 if due is None else min(1.0, max(0.0, (due - now) / self.clock.speed))
            state_due = self._flush_state()
            if state_due is not None:
                wait = min(wait, max(0.0, state_due - time.monotonic()))
            try:
                item: _Input | None = self.inputs.get(timeout=wait)
            except queue.Empty:
                item = None
            if self._stop.is_set():
                return
            now = self.clock.monotonic()
            try:
                out = [] if item is None else self._input(item, now)
                due = self.bridge.next_deadline()
                if due is not None and now >= due:
                    out += self.bridge.tick(now)
                self._carry_out(out)
            except Exception as exc:  # noqa: BLE001 - one input's bug must not end the charge point
                self.failures += 1
                self._folded.error("cp.bridge_failed", key=type(item).__name__, input=type(item).__name__,
                                   error=type(exc).__name__, detail=str(exc)[:200])

    def _input(self, item: _Input, now: float) -> list[Output]:
        match item:
            case _Result(req, result):
                with self._req_lock:
                    tag = self._tags.pop(req, None)
                if isinstance(tag, OcppRef) and self.backoffice is not None:
                    self.backoffice.site_result(tag, _decoded(result))
                if not isinstance(tag, Tag):
                    return []
                return self.bridge.site_result(tag, _decoded(result), now)
            case _View(view):
                if self.backoffice is not None:
                    self.backoffice.view(view)
                return self.bridge.site_view(view, now)
            case _Button(driver, local) if driver is not None and not local and self.backoffice is not None:
                self.backoffice.token(driver)
                return []
            case _Button(driver):
                return self.bridge.button(now, driver)
            case _Wake():
                return []
        if self.backoffice is not None:
            self.backoffice.engine(item.event)
        match item.event:
            case MeterReading() as reading:
                return self.bridge.meter(reading, now)
            case ManualStartPressed():
                return self.bridge.button(now)
            case event:
                return self.bridge.engine_action(event, now)

    def _carry_out(self, outputs: Sequence[Output]) -> None:
        for out in outputs:
            match out:
                case Propose(tag, command):
                    self._propose(command, tag)
                case TicketSettled(session_id, _outcome, _site_ticket):
                    self.evse.ticket_taken(session_id)
                case _:
                    self.evse.command(out)
                    if self.backoffice is not None:
                        self.backoffice.bridge(out)


def _decoded(result: bytes) -> Any:
    try:
        return json.loads(result) if result else None
    except ValueError:
        return None


def main(argv: list[str]) -> int:
    """`evnet cp --config FILE`: run one charge point of a site until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="evnet cp", description="Run one charge point of a site: its charging "
                                     "engine and its replica of the site's state, joined by the bridge.",
                                     epilog=f"In a terminal: {CONSOLE_HELP} (the site authorizes the start; "
                                     "the local list decides when the site cannot be reached).")
    parser.add_argument("--config", required=True, help="the charge point's TOML file (with its [site])")
    parser.add_argument("--data-dir", help="where the replica's acceptor state lives "
                                           "(default: $STATE_DIRECTORY or ~/.local/state/evnet, then SITE/CP)")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="domain time per real second (60: a minute of charging per second)")
    parser.add_argument("--clock-origin", type=float, metavar="UNIX_S",
                        help="with --speed: where domain time meets wall time (a demo's start), so that tickets "
                             "agree across restarts and charge points")
    parser.add_argument("--no-monitor", action="store_true", help="do not open the serial link to the monitor")
    parser.add_argument("--no-console", action="store_true", help="do not read keys from the terminal")
    parser.add_argument("--console", action="store_true",
                        help="read the console's keys from standard input even when it is not a terminal (a card "
                             "reader's daemon, or a test, writing 's TOKEN' lines into a pipe)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if not (args.speed > 0 and math.isfinite(args.speed)):
        parser.error(f"--speed must be > 0, got {args.speed}")
    setup_logging(args.log_level)
    cfg = load_config(args.config)
    data_dir = args.data_dir or replica_dir(cfg)
    try:
        console = sys.stdin if not args.no_console and sys.stdin is not None and (args.console or sys.stdin.isatty()) \
            else None
        cp = ChargePoint(cfg, data_dir, speed=args.speed, clock_origin=args.clock_origin,
                         monitor=not args.no_monitor, console=console)
    except DataDirLockedError as exc:
        print(f"evnet cp: {exc}", file=sys.stderr)
        return 1
    except (CableError, GpioError, JournalError, MeterError, OSError, ValueError) as exc:
        print(f"evnet cp: cannot start charge point {cfg.cp_id}: {exc}", file=sys.stderr)
        return 1
    return serve("evnet cp", cp.start, cp.dead_thread, cp.stop)

