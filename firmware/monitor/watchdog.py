"""`evnet monitor --config FILE`: the monitor watchdog, a process of its own beside the engine.

It sends the engine a numbered heartbeat every `monitor.heartbeat_s` over the serial link
(`firmware.monitor.port`: a UART on a Pi; on a laptop the monitor listens on the
`socket://` address and the engine connects). The engine answers from its control loop.
After `monitor.misses` unanswered heartbeats, dead or hung alike, the monitor:

1. cuts the safety line (its relay opens: no energy whatever the engine's contactor does);
2. publishes an alert on `.../cp/{cp}/monitor` and the charge point `FAULTED` on its status topic;
3. tells systemd (STATUS=, and runs `--on-fault CMD`, e.g. a `systemctl restart` of the engine,
   which the engine's own WatchdogSec= would otherwise do for a hung loop).

When the engine answers again the safety line is restored and its status published. The
safety line starts cut and stays so until the engine's first answer. An engine that answers
`FAULTED_SAFETY_CUT` (`heartbeat.SAFETY_CUT`: its contactor is welded shut) has the line cut for
as long as it does.

A planned stop is no fault: the engine says it over the link (a farewell, after its contactor
opened), and the monitor cuts the safety line as for any engine that does not answer (no engine,
no energy) but reports no FAULTED, raises no alert of a lost engine and runs no `--on-fault`.

On a Raspberry Pi the monitor OWNS the safety-line GPIO (`hal.pins.safety`); the engine never
opens it (two processes cannot share a line). On a laptop the pin factory is gpiozero's mock.
Energy delivery never depends on the broker: MQTT is best effort, the relay comes first.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import subprocess
import threading

from evnet.clock import Clock, RealClock
from evnet.config import Config, load_config
from evnet.logs import event_logger, setup_logging
from evnet.systemd import SystemdNotifier
from firmware.monitor.port import MonitorPort
from firmware.monitor.reporter import MonitorReporter
from firmware.protocols.heartbeat import (
    SAFETY_CUT,
    EngineHealthy,
    EngineLost,
    EngineStopped,
    HeartbeatMonitor,
    Send,
    StatusChanged,
)
from hal.gpio import Relay
from hal.serial_link import FrameError, SerialLinkError

POLL_S = 0.05  # the longest the loop waits for a frame before looking at its timers again
REOPEN_S = 1.0  # how often a serial device that cannot be opened is tried again
REPORT_S = 10.0  # the monitor's own heartbeat on MQTT
STARTUP_GRACE_S = 10.0  # an engine still starting is not reported FAULTED (the safety line is cut anyway)


class Watchdog:
    """The monitor's loop: heartbeats out, answers in, and the fault actions. One thread."""

    def __init__(self, cfg: Config, *, port: MonitorPort, safety: Relay, reporter: MonitorReporter | None,
                 notifier: SystemdNotifier | None = None, clock: Clock | None = None,
                 on_fault: list[str] | None = None, startup_grace_s: float = STARTUP_GRACE_S) -> None:
        self.cfg, self.port, self.safety, self.reporter = cfg, port, safety, reporter
        self.notifier = notifier or SystemdNotifier({})
        self.clock = clock or RealClock()
        self.on_fault = on_fault
        self.log = event_logger("monitor", cp=cfg.cp_id)
        self.hb = HeartbeatMonitor(cfg.monitor.heartbeat_s, cfg.monitor.misses, startup_grace_s=startup_grace_s)
        self.faults = 0
        self.lost_at: float | None = None  # clock time of the last EngineLost
        self.fault_code: str | None = None
        self.cut_for_engine = False  # the engine asked for the safety line cut (SAFETY_CUT)
        self.changed = threading.Condition()  # notified on every health change (tests, benchmarks)
        self._children: list[subprocess.Popen[bytes]] = []
        self._reopen_at = 0.0

    def run(self, stop: threading.Event) -> None:
        """Watch until `stop` is set; leaves the safety line cut."""
        self.safety.open_contacts()
        if self.reporter is not None:
            self.reporter.start()
            self.reporter.alert("monitor_started", heartbeat_s=self.hb.interval_s, misses=self.hb.max_misses)
        self.notifier.ready("waiting for the engine; safety line cut")
        now = self.clock.monotonic()
        next_ping, next_report = now, now + REPORT_S
        self._handle(self.hb.start(now))
        try:
            while not stop.is_set():
                now = self.clock.monotonic()
                if now >= (self.hb.next_deadline() or now):
                    self._handle(self.hb.tick(now))
                if now >= next_ping:
                    self.notifier.watchdog()
                    next_ping = now + self.notifier.ping_interval(1.0)
                if now >= next_report:
                    next_report = now + REPORT_S
                    self._report()
                self._receive(max(0.0, min((self.hb.next_deadline() or now) - now, POLL_S)), stop)
                self._reap()
        finally:
            self.safety.open_contacts()
            self.notifier.stopping()

    def _receive(self, wait: float, stop: threading.Event) -> None:
        if not self.port.listening and not self.port.connected and self.clock.monotonic() < self._reopen_at:
            stop.wait(wait)  # a device that cannot be opened: try again every REOPEN_S, do not spin
            return
        link = self.port.link(wait)
        if link is None:
            self._reopen_at = self.clock.monotonic() + REOPEN_S
            if not self.port.listening:
                stop.wait(wait)
            return
        try:
            payload = link.recv(wait)
        except (SerialLinkError, FrameError) as exc:
            self.port.drop(str(exc))
            return
        if payload is not None:
            self._handle(self.hb.receive(payload, self.clock.monotonic()))

    def _handle(self, actions: list) -> None:
        for a in actions:
            if isinstance(a, Send):
                self._send(a.payload)
            elif isinstance(a, EngineLost):
                self._lost(a)
            elif isinstance(a, EngineHealthy):
                self._healthy(a)
            elif isinstance(a, EngineStopped):
                self._stopped(a)
            elif isinstance(a, StatusChanged):
                self.log.info("monitor.engine_status", status=a.status)
                self._follow_cut_request(a.status)

    def _send(self, payload: bytes) -> None:
        link = self.port.link(0.0)
        if link is None:
            return  # nobody to send to: this heartbeat will be missed
        try:
            link.send(payload)
        except (SerialLinkError, FrameError) as exc:
            self.port.drop(str(exc))

    def _lost(self, lost: EngineLost) -> None:
        self.safety.open_contacts()  # first, before any word about it
        self.lost_at = self.clock.monotonic()
        self.faults += 1
        self.fault_code = "engine_hung" if self.port.connected else "engine_down"
        self.log.error("monitor.engine_lost", fault=self.fault_code, misses=lost.misses,
                       last_status=lost.last_status, safety="cut")
        if self.reporter is not None:
            self.reporter.faulted(self.fault_code)
            self.reporter.alert("engine_lost", fault=self.fault_code, misses=lost.misses,
                                last_status=lost.last_status, safety_line="cut")
        self.notifier.status(f"FAULTED: {self.fault_code} after {lost.misses} missed heartbeats; safety line cut")
        if self.on_fault:
            try:
                self._children.append(subprocess.Popen(self.on_fault, stdin=subprocess.DEVNULL))
                self.log.info("monitor.on_fault_started", command=shlex.join(self.on_fault))
            except OSError as exc:
                self.log.error("monitor.on_fault_failed", command=shlex.join(self.on_fault), error=str(exc))
        self._notify()

    def _stopped(self, stopped: EngineStopped) -> None:
        self.safety.open_contacts()  # no engine, no energy: the line's rest state, not a fault
        self.fault_code = None
        self.log.info("monitor.engine_stopped", reason=stopped.reason, last_status=stopped.last_status,
                      safety="cut")
        if self.reporter is not None:
            self.reporter.engine_stopped()
            self.reporter.alert("engine_stopped", reason=stopped.reason, last_status=stopped.last_status,
                                safety_line="cut")
        self.notifier.status(f"engine stopped ({stopped.reason}, planned); safety line cut")
        self._notify()

    def _follow_cut_request(self, status: str) -> bool:
        """Cut the line while a healthy engine answers SAFETY_CUT, restore it when it stops; True if closed."""
        if status == SAFETY_CUT:
            self.safety.open_contacts()  # first, before any word about it
            if not self.cut_for_engine:
                self.cut_for_engine = True
                self.log.error("monitor.safety_cut_by_engine", status=status, safety="cut")
                if self.reporter is not None:
                    self.reporter.alert("safety_cut", requested_by="engine", safety_line="cut")
                self._notify()
            return False
        closed = self.safety.close_contacts()
        if self.cut_for_engine:
            self.cut_for_engine = False
            self.log.info("monitor.safety_restored", status=status, safety="restored" if closed else "refused")
            if self.reporter is not None:
                self.reporter.alert("safety_restored", status=status)
            self._notify()
        return closed

    def _healthy(self, ok: EngineHealthy) -> None:
        closed = self._follow_cut_request(ok.status)
        self.log.info("monitor.engine_back" if ok.recovered else "monitor.engine_up", status=ok.status,
                      safety="restored" if closed else "refused")
        if self.reporter is not None:
            shown = "FAULTED" if ok.status == SAFETY_CUT else ok.status  # a status Central knows
            if ok.recovered:
                self.reporter.cleared(shown)
            else:
                self.reporter.engine_up(shown)
            self.reporter.alert("engine_back" if ok.recovered else "engine_up", status=ok.status,
                                safety_line="restored" if closed else "refused")
        self.fault_code = None
        self.notifier.status(f"engine {ok.status}; safety line {'restored' if closed else 'refused'}")
        self._notify()

    def _report(self) -> None:
        if self.reporter is not None:
            self.reporter.heartbeat(health=self.hb.health.value, engine_status=self.hb.engine_status,
                                    misses=self.hb.misses, sent=self.hb.sent, answered=self.hb.answered,
                                    stale=self.hb.stale, rejected=self.hb.rejected,
                                    safety_line="closed" if self.safety.contacts_closed else "cut")

    def _notify(self) -> None:
        with self.changed:
            self.changed.notify_all()

    def _reap(self) -> None:
        self._children = [p for p in self._children if p.poll() is None]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evnet monitor", description="The monitor watchdog of one charge point.")
    p.add_argument("--config", required=True, help="the charge point's TOML file ([monitor], [hal], [mqtt])")
    p.add_argument("--on-fault", help="a command run when the engine is lost, e.g. "
                                      "'systemctl restart evnet-evse@cp1.service'")
    p.add_argument("--startup-grace", type=float, default=STARTUP_GRACE_S,
                   help="seconds an engine may take to answer first before it is reported FAULTED")
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    cfg = load_config(args.config)
    from hal.gpio import GpioBoard, GpioError

    log = event_logger("monitor", cp=cfg.cp_id)
    try:
        board = GpioBoard(cfg.hal, safety=True, engine=False, cp=cfg.cp_id)
    except GpioError as exc:
        log.error("monitor.gpio_unusable", error=str(exc))
        return 1
    try:
        port = MonitorPort(cfg.monitor.monitor_end, cp=cfg.cp_id)
    except SerialLinkError as exc:
        log.error("monitor.link_unusable", error=str(exc))
        board.close()
        return 1
    assert board.safety is not None
    watchdog = Watchdog(cfg, port=port, safety=board.safety, reporter=MonitorReporter(cfg, RealClock()),
                        notifier=SystemdNotifier(cp=cfg.cp_id),
                        on_fault=shlex.split(args.on_fault) if args.on_fault else None,
                        startup_grace_s=args.startup_grace)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        watchdog.run(stop)
    finally:
        port.close()
        board.close()
        if watchdog.reporter is not None:
            watchdog.reporter.stop()
    return 0
