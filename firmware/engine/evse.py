"""`evnet evse`: one charge point's engine process, the `EngineCore` wired to its HAL.

One control loop (a thread) owns the core. Everything else only puts events on its queue:
the cable's change callback (so C->B reaches the contactor in well under 100 ms without
polling), the buttons, the meter poller, the monitor link. The loop carries out the core's
actions (contactor, pilot, messages, meter reads, LED, MQTT), runs its timers, renews the
configured current lease, answers the monitor's heartbeats and feeds systemd's watchdog, so a
hung loop is seen by both. MQTT is best effort: with the broker down the engine keeps charging.
Sessions and tickets are journaled (`ledger.py`, `journal.py`) before they are acted on: a session's
first reading before its contactor closes, a ticket before it is printed or published.

A charge point of a site (`site_observer`, for `evnet cp`) runs under its site's word, through the
bridge (firmware/chargepoint): the observer sees every action of the core once carried out, every
good meter reading, the manual-start button and, at start, the tickets nobody took; the bridge's
answers come back through `authorize`, `confirm_start`, `refuse_start`, `request_stop`, `set_limit`,
`set_available` and `ticket_taken`. Then the lease is the site's alone (until it grants one, the
engine offers its fallback), a session's contactor waits for the site's confirmation, and a ticket
leaves the journal only once the site has it.
"""

from __future__ import annotations

import argparse
import math
import queue
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evnet.clock import Clock, RealClock
from evnet.config import Config, load_config
from evnet.logs import event_logger, setup_logging
from evnet.serve import serve
from evnet.systemd import SystemdNotifier
from firmware.engine import core as c
from firmware.engine import pilot_sm as p
from firmware.engine.commands import (
    Authorize,
    ConfirmStart,
    EngineCommand,
    Grant,
    RefuseStart,
    SetAvailable,
    StopSession,
    apply_command,
)
from firmware.engine.journal import Journal, JournalError, boot_id, close_reason, default_dir
from firmware.engine.ledger import Ledger
from firmware.engine.meter_poller import MeterPoller
from firmware.engine.monitor_link import MonitorLink
from firmware.engine.publisher import Publisher
from firmware.engine.session_sm import AUTH_TIMEOUT_S, HLC_WAIT_S, SEQUENCE_TIMEOUT_S
from firmware.protocols.heartbeat import SAFETY_CUT, HeartbeatResponder
from hal.gpio import GpioBoard, GpioError
from hal.meter import MeterError, MeterReading, open_meter
from hal.pilot import CableError, ControlPilot, VirtualCable, open_pilot

TELEMETRY_S = 1.0  # real seconds between telemetry messages while charging (what a dashboard wants)
IDLE_WAKE_S = 1.0  # real seconds: the loop wakes at least this often (watchdog, lease, clock checks)


@dataclass(frozen=True)
class ManualStartPressed:
    """The manual-start button, shown to a site's bridge (which asks the site) instead of starting at once."""


SiteEvent = c.Action | MeterReading | ManualStartPressed


def protocol_timeouts(speed: float) -> dict[str, float]:
    """ISO 15118 waits in domain seconds that stay sane in real time when domain time runs fast:
    at least the standard's (60 s sequence, 5 s for an EV to start HLC) and 4 s / 1 s of real time; a
    driver gets at least a real minute to authorize."""
    return {"sequence_timeout_s": max(SEQUENCE_TIMEOUT_S, 4.0 * speed), "hlc_wait_s": max(HLC_WAIT_S, 1.0 * speed),
            "auth_timeout_s": max(AUTH_TIMEOUT_S, 60.0 * speed)}


class Evse:
    """One charge point. `start()`, then `stop()`; `cable` is the in-process cable (an EV plugs into `cable.ev`)."""

    def __init__(self, cfg: Config, *, clock: Clock | None = None, mqtt: bool = True, monitor: bool = True,
                 gpio: GpioBoard | None = None, pilot: ControlPilot | None = None,
                 on_ticket: Callable[[Any], None] | None = None, standing_driver: str | None = None,
                 print_tickets: bool = True, site_observer: Callable[[SiteEvent, float], None] | None = None) -> None:
        if site_observer is not None and standing_driver is not None:
            raise ValueError("a charge point of a site starts sessions through its bridge, not a standing driver")
        self.cfg = cfg
        self.site_observer = site_observer  # runs on the control loop: it must not block
        self.clock = clock or RealClock()
        self.log = event_logger("evse", cp=cfg.cp_id)
        cp = cfg.charge_point
        self.core = c.EngineCore(cp.id, price_eur_kwh=cp.price_eur_kwh, max_current_a=cp.max_current_a,
                                 fallback_a=min(cfg.site.fallback_a, cp.max_current_a),
                                 local_drivers=tuple(cp.local_drivers), phases=cp.phases,
                                 new_session_id=lambda: f"{cp.id}-{uuid.uuid4().hex[:12]}", safety=cfg.safety,
                                 connection_timeout_s=cp.connection_timeout_s,
                                 confirm_starts=site_observer is not None, **protocol_timeouts(self.clock.speed))
        self.events: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self.standing_driver = standing_driver  # authorizes every EV plugged in (a private point, the laptop demo)
        self.contactor_closed = False
        # First: a second engine on the same journal stops here, before it touches a GPIO line.
        journal = Journal(cp.journal_dir or default_dir(cfg.site_id, cp.id), cp=cp.id)
        self._journal_failed = False  # a session could not be journaled: no contactor closes again
        try:
            self.board = gpio or GpioBoard(cfg.hal, cp=cp.id)
        except BaseException:
            journal.close()
            raise
        self.cable: VirtualCable | None = None
        try:
            if pilot is None:
                if cfg.hal.pilot.backend == "simulated" and cfg.hal.pilot.cable == "inproc":
                    self.cable = VirtualCable(cp=cp.id)  # the EV emulator in this process plugs into `cable.ev`
                pilot = open_pilot(cfg.hal, pin_factory=self.board.pin_factory, cable=self.cable, cp=cp.id)
            self.pilot = pilot
            self.meter = open_meter(cfg.meter, clock=self.clock, cp_id=cp.id, load=self._meter_load)
        except BaseException:  # release what was built: the GPIO lines, the cable's port
            if pilot is not None:
                pilot.close()
            self.board.close()
            journal.close()
            raise
        self.poller = MeterPoller(self.meter, self.clock, cfg.meter.poll_interval_s, self.events.put, cp=cp.id)
        self.responder = HeartbeatResponder()
        self.monitor = MonitorLink(cfg.monitor.serial_url, self.events.put, cp=cp.id) if monitor else None
        self.publisher = Publisher(cfg, self.clock) if mqtt else None
        self.ledger = Ledger(journal, self.publisher, boot_id=boot_id(), cp=cp.id, print_tickets=print_tickets,
                             on_ticket=on_ticket, site_takes=site_observer is not None)
        self.systemd = SystemdNotifier(cp=cp.id, component="evse")
        self._watchdog_every = self.systemd.ping_interval(IDLE_WAKE_S)
        self._next_watchdog = 0.0
        self._stopped = False
        self._final = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="evse-control", daemon=True)
        self._next_telemetry = 0.0
        self._next_renewal = math.inf if site_observer is not None else 0.0  # the site's lease: no renewal here
        self.loop_iterations = 0

    # ------------------------------------------------------------------ life cycle

    def start(self) -> None:
        self.pilot.on_change(self._on_pilot_change)
        board = self.board
        if board.start_button is not None:
            board.start_button.on_press(lambda: self.events.put(("manual_start",)))
        if board.estop is not None:
            board.estop.on_press(lambda: self.events.put(("estop", True)))
            board.estop.on_release(lambda: self.events.put(("estop", False)))
        now = self.clock.monotonic()
        self._do(self.core.start(now), now)
        if self.site_observer is None:
            self._renew_lease(now)
        self._recover(now)
        if board.estop is not None and board.estop.is_pressed:
            self._do(self.core.emergency_stop(True, now), now)
        self._feed_pilot(now)
        self.poller.start()
        if self.monitor is not None:
            self.monitor.start()
        if self.publisher is not None:
            self.publisher.start()
        self._thread.start()
        self.systemd.ready(f"charge point {self.cfg.cp_id} {self.core.status}")
        self.log.info("evse.started", pilot=type(self.pilot).__name__, meter=self.cfg.meter.backend,
                      status=self.core.status)

    def stop(self) -> None:
        """Stop the loop, open the contactor, close a running session's ticket, release everything."""
        if self._stopped:
            return
        self._stopped = True
        self._stop.set()
        self.events.put(("wake",))
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        self.systemd.stopping()
        self._set_contactor(False)
        if self.monitor is not None:  # a planned stop, said once the contactor is open: no fault for the monitor
            self.monitor.stop(farewell=self.responder.farewell("SHUTDOWN"))
        try:
            self.poller.stop()
            self._final = True  # meter reads are now done here, at once
            self._carry_out(self.core.fault("shutdown", self.clock.monotonic()))
            pending = self.core.pending_end_read()  # a session that ended just before: its ticket
            if pending is not None:
                self._read_now(pending.token)
        except Exception as exc:
            self.log.error("evse.final_ticket_failed", error=repr(exc))
        for closer in (self.publisher.stop if self.publisher else None, self.pilot.close, self.board.close,
                       self.meter.close, self.ledger.close):
            if closer is None:
                continue
            try:
                closer()
            except Exception as exc:  # keep releasing the rest
                self.log.error("evse.stop_failed", what=getattr(closer, "__qualname__", "?"), error=repr(exc))
        self.log.info("evse.stopped")

    @property
    def alive(self) -> bool:
        """True while the control loop runs."""
        return self._thread.is_alive()

    def wait(self, timeout: float | None = None) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    # ------------------------------------------------------------------ inputs from other threads

    def command(self, command: EngineCommand) -> None:
        """What the site asks (firmware/engine/commands.py), carried out on the control loop's next turn."""
        self.events.put(("command", command))

    def authorize(self, driver_id: str) -> None:
        self.command(Authorize(driver_id))

    def request_stop(self, reason: str = "driver_stop", session_id: str | None = None) -> None:
        """End the running session (only if it is `session_id`, when given)."""
        self.command(StopSession(session_id, reason))

    def set_limit(self, amps: float, lease_until: float, reason: str = "") -> None:
        """A grant of `amps` until `lease_until` (the engine clock's monotonic): the site's, through its bridge;
        `reason` is the site's `limit_reason` (telemetry)."""
        self.command(Grant(amps, lease_until, reason))

    def confirm_start(self, session_id: str) -> None:
        """The site committed the start of `session_id`: its contactor may close."""
        self.command(ConfirmStart(session_id))

    def refuse_start(self, session_id: str, why: str) -> None:
        """The site refused the start of `session_id`: it ends without energy and without a ticket."""
        self.command(RefuseStart(session_id, why))

    def set_available(self, available: bool) -> None:
        """OUT_OF_ORDER (False) by the site's operator, or back in service."""
        self.command(SetAvailable(available))

    def ticket_taken(self, session_id: str) -> None:
        """The site has the ticket of `session_id`: the journal may forget it."""
        self.events.put(("taken", session_id))

    def _on_pilot_change(self, what: str) -> None:
        self.events.put(("cable", what))

    def _meter_load(self) -> float:
        """What the simulated meter sees: the EV's draw while the contactor is closed, else nothing."""
        return self.pilot.ev_current_a if self.contactor_closed else 0.0

    # ------------------------------------------------------------------ the control loop

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                self._step()
        except Exception as exc:  # the loop died: open the contactor, then let the monitor see the silence
            self._set_contactor(False)
            self.log.error("evse.loop_crashed", error=repr(exc))
            raise

    def _step(self) -> None:
        now = self.clock.monotonic()
        try:
            event = self.events.get(timeout=self._wait_s(now))
        except queue.Empty:
            event = None
        now = self.clock.monotonic()
        if event is not None:
            self._handle(event, now)
            while True:  # drain what is already there before the timers
                try:
                    self._handle(self.events.get_nowait(), now)
                except queue.Empty:
                    break
        session = self.core.session
        if self.standing_driver and session.plugged and session.driver is None and session.pending_driver is None:
            self._do(self.core.authorize(self.standing_driver, now), now)
        self.ledger.collect()
        deadline = self.core.next_deadline()
        if deadline is not None and now >= deadline:
            self._do(self.core.tick(now), now)
        if now >= self._next_renewal:
            self._renew_lease(now)
        real_now = time.monotonic()
        if self.core.status == "CHARGING" and real_now >= self._next_telemetry:
            self._next_telemetry = real_now + TELEMETRY_S
            body = self.core.telemetry()
            if body is not None and self.publisher is not None:
                self.publisher.telemetry(body)
        if real_now >= self._next_watchdog:
            self._next_watchdog = real_now + self._watchdog_every
            self.systemd.watchdog()
        self.loop_iterations += 1

    def _wait_s(self, now: float) -> float:
        """Real seconds until something is due: a core timer, the lease renewal (domain time), telemetry,
        the systemd watchdog (real time)."""
        moments = [t for t in (self.core.next_deadline(), self._next_renewal) if t is not None]
        domain = max(0.0, min(moments, default=now + IDLE_WAKE_S) - now)
        waits = [self.clock.real_seconds(domain), IDLE_WAKE_S, self._next_watchdog - time.monotonic()]
        if self.core.status == "CHARGING":
            waits.append(self._next_telemetry - time.monotonic())
        return max(0.0, min(waits))

    def _handle(self, event: tuple[Any, ...], now: float) -> None:
        kind = event[0]
        core = self.core
        if kind == "cable":
            if event[1] == "message":
                while (data := self.pilot.poll()) is not None:
                    self._do(core.message(data, now), now)
            elif event[1] in ("pilot", "link"):
                self._feed_pilot(now)
            elif event[1] == "fault":  # the pilot's own machinery failed or recovered
                self._do(core.hardware_fault("pilot", self.pilot.fault_code, now), now)
        elif kind == "heartbeat":  # a welded contactor: the status asks the monitor to cut the safety line
            answer = self.responder.answer(event[1], now, SAFETY_CUT if core.safety_cut else core.status)
            if answer is not None and self.monitor is not None:
                self.monitor.send(answer)
        elif kind == "meter_reading":
            self._do(core.meter_reading(event[1], now, token=event[2]), now)
            if self.site_observer is not None:
                self.site_observer(event[1], now)
        elif kind == "meter_failed":
            self._do(core.meter_failed(event[1], event[2], now), now)
        elif kind == "manual_start":
            if self.site_observer is not None:
                self.site_observer(ManualStartPressed(), now)
            else:
                self._do(core.manual_start(now), now)
        elif kind == "estop":
            self._do(core.emergency_stop(event[1], now), now)
        elif kind == "command":
            self._do(apply_command(core, event[1], now), now)
        elif kind == "taken":
            self.ledger.taken(event[1])

    def _feed_pilot(self, now: float) -> None:
        """Read the pilot and give the core what changed; our own output changes what we read, so repeat."""
        for _ in range(4):
            reading = self.pilot.read()
            if reading.state is self.core.pilot.reading and not reading.diode_fault:
                return
            if not self._carry_out(self.core.pilot_reading(reading.state, now, diode_fault=reading.diode_fault)):
                return

    def _recover(self, now: float) -> None:
        """What the journal kept from before: tickets nobody took go out again; a session a crash left open
        is closed from the meter now (or, if it cannot be read, by the core once it can)."""
        self.ledger.resend()
        if self.site_observer is not None:  # the site must have each of them too
            for ticket in self.ledger.untaken:
                self.site_observer(c.TicketClosed(ticket), now)
        opened = self.ledger.left_open
        if opened is None:
            return
        try:
            reading = self.meter.read()
        except MeterError as exc:
            self.log.warning("evse.recovery_waits_for_the_meter", session=opened.session_id, error=str(exc))
            reading = None
        self._do(self.core.recover(opened.session_id, opened.driver, opened.start_reading(),
                                   close_reason(opened, self.ledger.boot_id), now, reading), now)

    def _renew_lease(self, now: float) -> None:
        """The configured grant, renewed every half lease: a lease renewed for ever (the site takes over later).
        A lease is a protocol timing: `site.lease_s` of real time, whatever the speed of domain time."""
        lease_s = self.cfg.site.lease_s * self.clock.speed
        self._next_renewal = now + lease_s / 2
        self._do(self.core.grant(self.cfg.charge_point.max_current_a, now + lease_s, now), now)

    # ------------------------------------------------------------------ actions

    def _do(self, actions: list[c.Action], now: float) -> None:
        if self._carry_out(actions):
            self._feed_pilot(now)

    def _carry_out(self, actions: list[c.Action]) -> bool:
        """Do what the core says, in order; True if the pilot output changed (so the reading may have too).
        A site's bridge sees each action once it was carried out (a session once it is journaled)."""
        pilot_changed = False
        for action in actions:
            if isinstance(action, p.SetContactor):
                self._set_contactor(action.closed)
            elif isinstance(action, p.SetPwm):
                if action.duty_pct is None:
                    self.pilot.set_steady()
                else:
                    self.pilot.set_duty(action.duty_pct)
                pilot_changed = True
            elif isinstance(action, p.SetPilotError):
                self.pilot.set_off()
                pilot_changed = True
            elif isinstance(action, c.SendMessage):
                self.pilot.send(action.data)
            elif isinstance(action, c.ReadMeter):
                if self._final:
                    self._read_now(action.token)
                else:
                    self.poller.request(action.token)
            elif isinstance(action, c.StatusChanged):
                if self.board.led is not None:
                    self.board.led.show(action.status)
                if self.publisher is not None and not self._final:  # stopping: the farewell says DISCONNECTED
                    self.publisher.status(action.status, action.fault)
                self.systemd.status(f"{action.status}" + (f" ({action.fault})" if action.fault else ""))
            elif isinstance(action, c.SessionOpened):
                pilot_changed |= self._session_opened(action)
            elif isinstance(action, c.TicketClosed):
                self.ledger.ticket_closed(action.ticket)
            elif isinstance(action, c.SessionVoided):
                self.ledger.session_voided(action)
            if self.site_observer is not None and not (isinstance(action, c.SessionOpened) and self._journal_failed):
                self.site_observer(action, self.clock.monotonic())
        return pilot_changed

    def _session_opened(self, opened: c.SessionOpened) -> bool:
        """Journal the session before anything after it runs (its contactor may close next); if that fails
        the charge point faults and no contactor closes. True if the pilot output changed."""
        try:
            self.ledger.session_opened(opened)
            return False
        except JournalError as exc:
            self.log.error("evse.journal_failed", session=opened.session_id, error=str(exc))
            self._journal_failed = True
            return self._carry_out(self.core.fault("journal", self.clock.monotonic()))

    def _read_now(self, token: int) -> None:
        now = self.clock.monotonic()
        try:
            reading = self.meter.read()
        except MeterError as exc:
            self._carry_out(self.core.meter_failed(str(exc), True, now))
        else:
            self._carry_out(self.core.meter_reading(reading, now, token=token))

    def _set_contactor(self, closed: bool) -> None:
        contactor = self.board.contactor
        if not closed:
            self.contactor_closed = False
            if contactor is not None:
                contactor.open_contacts()
            return
        if self._journal_failed:
            self.log.error("evse.contactor_refused", why="the session could not be journaled")
            return
        if contactor is not None and not contactor.close_contacts():
            self.log.warning("evse.contactor_blocked")  # the e-stop interlock: the core hears of it next
            return
        self.contactor_closed = True


def main(argv: list[str]) -> int:
    """`evnet evse --config FILE [--speed N]`: run one charge point until SIGINT or SIGTERM."""
    parser = argparse.ArgumentParser(prog="evnet evse", description="Run one charge point's charging engine.")
    parser.add_argument("--config", required=True, help="the charge point's TOML file")
    parser.add_argument("--speed", type=float, default=1.0,
                        help="domain time per real second (60: a minute of charging per second)")
    parser.add_argument("--authorize", metavar="DRIVER",
                        help="authorize every session for DRIVER (a private charge point, the laptop demo)")
    parser.add_argument("--no-mqtt", action="store_true", help="do not talk to the broker")
    parser.add_argument("--no-monitor", action="store_true", help="do not open the serial link to the monitor")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    if not (args.speed > 0 and math.isfinite(args.speed)):
        parser.error(f"--speed must be > 0, got {args.speed}")
    setup_logging(args.log_level)
    cfg = load_config(args.config)
    try:
        evse = Evse(cfg, clock=RealClock(args.speed), mqtt=not args.no_mqtt, monitor=not args.no_monitor,
                    standing_driver=args.authorize)
    except (CableError, GpioError, JournalError, MeterError, OSError) as exc:
        print(f"evnet evse: cannot start charge point {cfg.cp_id}: {exc}", file=sys.stderr)
        return 1
    return serve("evnet evse", evse.start, lambda: None if evse.alive else "control loop", evse.stop)
