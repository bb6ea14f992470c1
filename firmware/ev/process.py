"""`evnet ev`: run an emulated EV on the EV end of a virtual cable, in this process or against `evnet evse`.

    evnet ev --plan "plug; wait 60; charge 32; wait 420; stop; unplug" --cable tcp://127.0.0.1:7311 --speed 60

`EvDriver` is the I/O around the sans-I/O `EvEmulator`: one thread feeds it the duty and the
messages the cable brings and the time of an injected clock, and carries its load, draw and
messages back to the cable. The engine's end-to-end tests and the demo use it in one process
with a `VirtualCable`; the command uses `TcpEvEnd`.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from evnet.clock import Clock, RealClock
from evnet.logs import event_logger, setup_logging
from firmware.ev.emulator import Action, EvEmulator, EvParams, SendMessage, SetDraw, SetLoad
from firmware.ev.plan import PlanError, parse_plan
from hal.pilot.cable import EvEnd
from hal.pilot.conversions import DUTY_OFF

POLL_S = 0.05  # longest real wait between two looks at the clock
RETRY_S = 1.0  # real seconds between attempts to plug into a charge point that went away


class EvDriver:
    """Runs one `EvEmulator` against `end` on `clock` until the plan is done and the EV unplugged.

    When the charge point goes away (its process died), the EV unplugs and the driver ends with
    an error; with `reconnect` (a factory of new ends), it stays plugged in instead, as a real
    EV's cable would, and plugs into the charge point again when it is back (every `RETRY_S`).
    """

    def __init__(self, end: EvEnd, ev: EvEmulator, clock: Clock, *, cp: str | None = None,
                 reconnect: Callable[[], EvEnd] | None = None) -> None:
        self.end, self.ev, self.clock = end, ev, clock
        self.reconnect = reconnect
        self._retry_at = 0.0
        self.log = event_logger("ev", cp=cp, ev=ev.p.evcc_id)
        self._wake = threading.Condition()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.done = threading.Event()
        self.error: str | None = None
        self._logged = 0
        self._duty: float | None = None
        self._had_peer = False
        self._outage_logged = False
        self._dirty = False
        end.on_change(self._changed)

    def _changed(self, what: str) -> None:
        with self._wake:
            self._dirty = True
            self._wake.notify_all()

    def start(self) -> EvDriver:
        self._thread = threading.Thread(target=self.run, name="ev-driver", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._changed("stop")
        if self._thread is not None:
            self._thread.join(timeout)

    def run(self) -> None:
        """The loop; returns when the plan has ended and the EV is unplugged, or on `stop()`."""
        try:
            self._apply(self.ev.start(self.clock.monotonic()))
            while not self._stop.is_set():
                self._step()
                if self.ev.finished and self.ev.load.value == "not_connected":
                    break
                self._sleep()
        except Exception as exc:  # the EV must leave the cable in a safe state whatever broke
            self.error = f"{type(exc).__name__}: {exc}"
            self.log.error("ev.crashed", error=self.error)
        finally:
            self._safe()
            self._journal()
            self.done.set()

    def _step(self) -> None:
        with self._wake:
            self._dirty = False
        now = self.clock.monotonic()
        duty = self.end.duty
        if self.end.linked:
            self._had_peer = True
        elif self._had_peer and self.reconnect is not None:
            self._replug()
            duty = self.end.duty
        elif self._had_peer and self.ev.load.value != "not_connected":
            self.error = "the charge point went away"
            self.log.warning("ev.evse_lost")
            self._apply(self.ev.unplug(now))
            self._stop.set()
            return
        if duty != self._duty:
            self._duty = duty
            self._apply(self.ev.on_duty(DUTY_OFF if duty is None else duty, now))
        while (msg := self.end.poll()) is not None:
            self._apply(self.ev.on_message(msg, now))
        deadline = self.ev.next_deadline()
        if deadline is not None and deadline <= now:
            self._apply(self.ev.tick(now))
        self._journal()

    def _replug(self) -> None:
        """The charge point is gone: try a new cable end, carrying over the EV's load and draw."""
        if time.monotonic() < self._retry_at:
            return
        if not self._outage_logged:
            self.log.warning("ev.evse_lost", reconnect_every_s=RETRY_S)
            self._outage_logged = True
        self._retry_at = time.monotonic() + RETRY_S
        assert self.reconnect is not None
        try:
            end = self.reconnect()
        except Exception as exc:  # the charge point is not back yet
            self.log.debug("ev.reconnect_failed", error=str(exc))
            return
        self.end.close()
        self.end = end
        end.on_change(self._changed)
        end.set_load(self.ev.load, diode=self.ev.p.diode)
        end.set_current(self.ev.draw_a)
        self._outage_logged = False  # `_had_peer` stays: an end dropped before the next step is tried again
        self.log.info("ev.evse_back")

    def _sleep(self) -> None:
        deadline = self.ev.next_deadline()
        wait = POLL_S
        if deadline is not None:
            wait = min(POLL_S, max(0.0, self.clock.real_seconds(deadline - self.clock.monotonic())))
        with self._wake:
            if not self._dirty and not self._stop.is_set():
                self._wake.wait(wait)

    def _apply(self, actions: list[Action]) -> None:
        for a in actions:
            if isinstance(a, SetLoad):
                self.end.set_load(a.load, diode=a.diode)
            elif isinstance(a, SetDraw):
                self.end.set_current(a.current_a)
            elif isinstance(a, SendMessage):
                self.end.send(a.message)

    def _journal(self) -> None:
        for text in self.ev.events[self._logged:]:
            self.log.info("ev.event", what=text, soc=round(self.ev.p.soc_pct, 2),
                          kwh=round(self.ev.delivered_kwh, 4))
        self._logged = len(self.ev.events)

    def _safe(self) -> None:
        try:
            self.end.set_current(0.0)
        except Exception as exc:
            self.log.warning("ev.safe_state_failed", error=repr(exc))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evnet ev", description="Plug an emulated EV into a charge point.",
                                epilog="Plan commands: plug, unplug, wait T|full, charge [A], stop, hlc on|off, "
                                       "soc P, capacity KWH, need KWH, max A, phases 1|3, departure T, "
                                       "ignore_stop on|off, ventilation on|off, diode on|off "
                                       "(see firmware/ev/plan.py). After its plan the EV stays plugged in "
                                       "until it is unplugged or the command is stopped (Ctrl-C unplugs).")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--plan", help='e.g. "plug; wait 60; charge 32; wait 420; stop; unplug"')
    src.add_argument("--plan-file", help="a file holding the plan")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--cable", help="tcp://HOST:PORT where `evnet evse` listens")
    where.add_argument("--config", help="a charge point's TOML file: plug into its [hal.pilot] cable")
    p.add_argument("--speed", type=float, default=1.0, help="domain time speed factor (60: a minute a second)")
    p.add_argument("--id", default="EV0001", help="the EV's EVCC id")
    p.add_argument("--no-reconnect", action="store_true",
                   help="unplug and exit when the charge point goes away (default: stay plugged in and "
                        "plug in again when it is back, as after a restart by its monitor)")
    p.add_argument("--log-level", default="INFO")
    return p


def protocol_params(speed: float) -> dict[str, float]:
    """Message pacing and timeouts in domain seconds that stay sane in real time at any speed."""
    return {"status_period_s": max(1.0, 0.25 * speed), "response_timeout_s": max(30.0, 2.0 * speed),
            "reask_s": 0.1 * speed}  # a real EV asks again at once while the charge point says Ongoing


def main(argv: list[str], *, end_factory: Callable[[str], EvEnd] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_level)
    try:
        text = args.plan if args.plan is not None else Path(args.plan_file).read_text(encoding="utf-8")
        plan = parse_plan(text)
    except (OSError, PlanError) as exc:
        print(f"evnet ev: {exc}", file=sys.stderr)
        return 2
    if args.speed <= 0:
        print(f"evnet ev: --speed must be > 0, got {args.speed}", file=sys.stderr)
        return 2
    url = args.cable
    if args.config:
        from evnet.config import load_config

        url = load_config(args.config).hal.pilot.cable
    if not url.startswith("tcp://"):
        print(f"evnet ev: the cable must be tcp://HOST:PORT (an `evnet evse` listening), got {url!r}",
              file=sys.stderr)
        return 2
    from hal.pilot.cable_tcp import CableError, TcpEvEnd

    try:
        end = (end_factory or TcpEvEnd)(url)
    except CableError as exc:
        print(f"evnet ev: {exc}", file=sys.stderr)
        return 1
    ev = EvEmulator(EvParams(evcc_id=args.id, **protocol_params(args.speed)), plan)
    driver = EvDriver(end, ev, RealClock(args.speed),
                      reconnect=None if args.no_reconnect else lambda: (end_factory or TcpEvEnd)(url))
    signal.signal(signal.SIGTERM, lambda *_: driver.stop(timeout=0))
    try:
        driver.run()
    except KeyboardInterrupt:
        pass
    finally:
        driver.end.close()
    print(f"ev {args.id}: {'plan done' if ev.finished else 'stopped'}: delivered {ev.delivered_kwh:.3f} kWh, "
          f"state of charge {ev.p.soc_pct:.1f} %" + (f" ({driver.error})" if driver.error else ""))
    return 0 if driver.error is None else 1
