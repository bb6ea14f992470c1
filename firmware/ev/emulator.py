"""The EV emulator's core, sans-I/O: an EV with a battery, a plan, and the EVCC side of ISO 15118-2.

It takes what the EV end of the cable shows (the EVSE's PWM duty), the messages the
charge point sends, and the current time; it returns what to do to the cable: the load
to put on the pilot (B, C, nothing), the current to draw, and messages to send. The
driver (`firmware.ev.process`) does the I/O; tests drive this directly in simulated time.

The EV draws min(what it is allowed, its own maximum). Allowed is the PWM's current
(IEC 61851-1 table A.8); with high-level communication, also the charge point's maximum
and the schedule it sent. A duty that offers nothing (steady +12 V, off) means no draw
at all, even in HLC. It stops when full, when told (`stop`, the plan), or when the charge
point says StopCharging.

States (docs/architecture.md): not_connected, connected_not_charging (also during the HLC handshake
and while paused), send_needs (ChargeParameterDiscovery sent), receive_scheduling (the
schedule is in, PowerDelivery(Start) awaited), charging_with_profile (HLC),
charging_without_profile (PWM only). An HLC EV opens its session when plugged in, since a
charge point falls back to PWM if none comes within a few seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from firmware.ev import evcc
from firmware.ev.plan import Step
from firmware.protocols import iso15118 as iso
from hal.pilot.conversions import DUTY_HLC, DUTY_OFF, PilotValueError, current_for_duty
from hal.pilot.physics import EvLoad

VOLTS_PER_PHASE = 230.0


class EvState(StrEnum):
    NOT_CONNECTED = "not_connected"
    CONNECTED_NOT_CHARGING = "connected_not_charging"
    SEND_NEEDS = "send_needs"
    RECEIVE_SCHEDULING = "receive_scheduling"
    CHARGING_WITH_PROFILE = "charging_with_profile"
    CHARGING_WITHOUT_PROFILE = "charging_without_profile"


@dataclass
class EvParams:
    """The EV: battery, limits and habits. Plans change these with soc/capacity/max/... commands."""

    capacity_kwh: float = 60.0
    soc_pct: float = 20.0
    max_current_a: float = 32.0
    phases: int = 3
    hlc: bool = False
    need_kwh: float | None = None  # None: whatever fills the battery
    departure_s: float = 8 * 3600.0
    evcc_id: str = "EV0001"
    ignore_stop: bool = False
    ventilation: bool = False  # asks for energy in state D (charging that needs ventilation)
    diode: bool = True  # False: a broken pilot diode, which the charge point must see as a fault
    status_period_s: float = 1.0  # ChargingStatusReq pace
    reask_s: float = 0.1  # Authorization / ChargeParameterDiscovery asked again this soon while the answer is Ongoing
    response_timeout_s: float = 30.0  # an HLC response later than this ends the session


# ----- actions: what the driver must do


@dataclass(frozen=True)
class SetLoad:
    """Put this load on the pilot (B: connected; C, or D with ventilation: asking for energy;
    NOT_CONNECTED: unplugged); `diode=False` is an EV with a broken pilot diode."""

    load: EvLoad
    diode: bool = True


@dataclass(frozen=True)
class SetDraw:
    """Draw this current per phase from now on."""

    current_a: float
    phases: int


@dataclass(frozen=True)
class SendMessage:
    """Send this ISO 15118-2 message (as its dict) on the cable's message channel."""

    message: dict


Action = SetLoad | SetDraw | SendMessage


class EvEmulator:
    """One EV. Call `start(now)`, then `on_duty`, `on_message` and `tick` (at `next_deadline()`)."""

    def __init__(self, params: EvParams | None = None, plan: list[Step] | None = None) -> None:
        self.p = params or EvParams()
        self.plan = list(plan or [])
        self.pc = 0  # the next plan step
        self.state = EvState.NOT_CONNECTED
        self.load = EvLoad.NOT_CONNECTED
        self.draw_a = 0.0
        self.duty = DUTY_OFF
        self.want_charge = False
        self.delivered_kwh = 0.0  # into the battery since plugged in
        self.events: list[str] = []  # a journal in words, for logs and tests
        self.evcc = evcc.Evcc(self.p.evcc_id, self._needs, self.p.status_period_s, self.p.response_timeout_s,
                              self.p.reask_s)
        self._plugged = self._hlc = self._power = self._pwm_stopped = self._session_lost = False
        self._diode = True
        self._now = 0.0
        self._wait_until: float | None = None
        self._wait_until_done: str | None = None  # "full": the charge to end; "stopped": the HLC stop to finish

    # ----- inputs

    def start(self, now: float) -> list[Action]:
        self._now = now
        return self._run_plan(now)

    def on_duty(self, duty: float, now: float) -> list[Action]:
        """The EVSE's PWM duty as the EV measures it (0 off, 5 HLC, 10-96 current, 100 steady)."""
        out = self._advance(now)
        before, self.duty = self._offered(), duty
        if self._power and before and not self._offered():
            self._pwm_stopped = True
            self._note(f"PWM stop (duty {duty:g} %)" + (": ignored" if self.p.ignore_stop else ": back to B"))
        elif self._pwm_stopped and self._offered():
            self._pwm_stopped = False
            self._note(f"PWM back (duty {duty:g} %)")
        if self._hlc and self._plugged:
            out += self._hlc_pilot(duty, now)
        return out + self._sync() + self._run_plan(now)

    def _hlc_pilot(self, duty: float, now: float) -> list[Action]:
        """No pilot (-12 V: the charge point failed or went away) ends the HLC session; when 5 % is back,
        the EV opens a new one and carries on with what it wanted."""
        if duty == DUTY_OFF and self.evcc.phase is not evcc.Phase.IDLE:
            self.evcc.abandon()
            self._power, self._session_lost = False, True
            self._note("pilot off: HLC session dropped")
        elif duty == DUTY_HLC and self._session_lost and self.evcc.phase is evcc.Phase.IDLE:
            self._session_lost = False
            self._note("5 % again: opening a new HLC session")
            return self._handle(self.evcc.begin(now, self.want_charge))
        return []

    def on_message(self, data: dict, now: float) -> list[Action]:
        """A message from the charge point; anything malformed or unexpected ends the HLC session."""
        out = self._advance(now)
        if not self._hlc:
            self._note(f"message while not in an HLC session: ignored ({str(data)[:60]})")
            return out
        return out + self._handle(self.evcc.receive(data, now)) + self._run_plan(now)

    def tick(self, now: float) -> list[Action]:
        out = self._advance(now)
        if self._hlc:
            out += self._handle(self.evcc.tick(now))
        return out + self._sync() + self._run_plan(now)

    def next_deadline(self) -> float | None:
        """When `tick` must run next: a plan wait, an HLC request or timeout, full, a schedule step."""
        times = [self._wait_until, self._full_at()]
        if self._hlc:
            times += [self.evcc.next_deadline(), self.evcc.next_schedule_change(self._now) if self._power else None]
        return min((t for t in times if t is not None), default=None)

    @property
    def finished(self) -> bool:
        """The plan has run to its end."""
        return self.pc >= len(self.plan) and self._wait_until is None and self._wait_until_done is None

    @property
    def allowed_a(self) -> float:
        """What the charge point allows now, before the EV's own maximum."""
        pwm = self._pwm_current()
        if pwm == 0.0 or (pwm is None and not (self._hlc and self._power)):
            return 0.0  # nothing offered, or 5 % (HLC required) with no power delivery agreed
        limits = [pwm]
        if self._hlc and self._power:
            limits += [self.evcc.evse_max_a, self.evcc.schedule_limit(self._now)]
        return min((x for x in limits if x is not None), default=0.0)

    # ----- commands (the plan's; also callable directly)

    def plug(self, now: float) -> list[Action]:
        out = self._advance(now)
        if self._plugged:
            return out
        self._plugged, self._hlc, self.delivered_kwh = True, self.p.hlc, 0.0
        self._note("plugged in" + (" (HLC)" if self._hlc else " (PWM only)"))
        out += self._sync()
        if self._hlc:
            out += self._handle(self.evcc.begin(now, self.want_charge))
        return out

    def unplug(self, now: float) -> list[Action]:
        out = self._advance(now)
        if not self._plugged:
            return out
        self.evcc.abandon()
        self._plugged = self.want_charge = self._power = self._hlc = self._pwm_stopped = False
        self._session_lost = False
        self._note(f"unplugged after {self.delivered_kwh:.3f} kWh")
        return out + self._sync()

    def charge(self, now: float, limit_a: float | None = None) -> list[Action]:
        out = self._advance(now)
        if limit_a is not None:
            self.p.max_current_a = limit_a
        if not self._plugged or self._full():
            self._note("charge asked " + ("while not plugged in" if not self._plugged else "with a full battery")
                       + ": ignored")
            return out
        return out + self._want(True, now, "charge asked")

    def stop(self, now: float) -> list[Action]:
        return self._advance(now) + self._want(False, now, "stop asked")

    # ----- inner workings

    def _want(self, want: bool, now: float, why: str) -> list[Action]:
        if want == self.want_charge:
            return self._sync()
        self.want_charge = want
        self._note(why)
        if self._hlc:
            return self._handle(self.evcc.set_want_power(want, now))
        self._power, self._pwm_stopped = want, False
        return self._sync()

    def _handle(self, events: list[evcc.Event]) -> list[Action]:
        out: list[Action] = []
        for e in events:
            if isinstance(e, evcc.Send):
                out.append(SendMessage(e.message.to_dict()))
            elif isinstance(e, evcc.PowerOn):
                self._power, self._pwm_stopped = True, False
                self._note(f"power delivery started: max {self.evcc.evse_max_a} A")
            elif isinstance(e, evcc.PowerOff):
                self._power = False
            elif isinstance(e, evcc.Ended):
                self._note(("session " + e.why) if e.ok else f"HLC session aborted: {e.why}")
                self.want_charge = False  # a new charge needs a new `charge`
        return self._sync(first=out)

    def _needs(self) -> iso.ChargeParameterDiscoveryReq:
        to_full = self._room_kwh()
        need = to_full if self.p.need_kwh is None else min(self.p.need_kwh, to_full)
        mode = "AC_three_phase_core" if self.p.phases == 3 else "AC_single_phase_core"
        return iso.ChargeParameterDiscoveryReq(energy_request_kwh=round(need, 3), max_current_a=self.p.max_current_a,
                                               departure_time_s=self.p.departure_s, energy_mode=mode)

    def _sync(self, first: list[Action] | None = None) -> list[Action]:
        """Bring state, pilot load and draw in line with the EV's situation; the changes as actions."""
        out = list(first or [])
        state = self._state_now()
        if state is not self.state:
            self._note(f"state {self.state.value} -> {state.value}")
            self.state = state
        energy = self._power and self.want_charge and (not self._pwm_stopped or self.p.ignore_stop)
        asking = EvLoad.D if self.p.ventilation else EvLoad.C
        load = EvLoad.NOT_CONNECTED if not self._plugged else asking if energy else EvLoad.B
        draw = max(0.0, min(self.allowed_a, self.p.max_current_a)) if energy else 0.0
        if energy and draw == 0 and self.p.ignore_stop and self._pwm_stopped:
            draw = self.draw_a  # the misbehaving EV keeps drawing when the charge point withdraws
        draw_change = [SetDraw(draw, self.p.phases)] if abs(draw - self.draw_a) > 1e-9 else []
        load_change = [SetLoad(load, self.p.diode)] if (load, self.p.diode) != (self.load, self._diode) else []
        self.draw_a, self.load, self._diode = draw, load, self.p.diode
        # Into C (D) before drawing; stop drawing before leaving it.
        return out + (load_change + draw_change if load is asking else draw_change + load_change)

    def _state_now(self) -> EvState:
        if not self._plugged:
            return EvState.NOT_CONNECTED
        if not self._hlc:
            return EvState.CHARGING_WITHOUT_PROFILE if self._power else EvState.CONNECTED_NOT_CHARGING
        return {evcc.Phase.NEEDS: EvState.SEND_NEEDS, evcc.Phase.SCHEDULED: EvState.RECEIVE_SCHEDULING,
                evcc.Phase.CHARGING: EvState.CHARGING_WITH_PROFILE}.get(self.evcc.phase,
                                                                        EvState.CONNECTED_NOT_CHARGING)

    def _pwm_current(self) -> float | None:
        try:
            return current_for_duty(self.duty)
        except PilotValueError:
            return 0.0

    def _offered(self) -> bool:
        """Does the duty offer energy (a current; or 5 % to an HLC EV)?"""
        pwm = self._pwm_current()
        return (pwm is None and self._hlc) or (pwm is not None and pwm > 0)

    # ----- the battery

    def _advance(self, now: float) -> list[Action]:
        """Fill the battery up to `now`; stop when it is full."""
        dt, self._now = max(0.0, now - self._now), max(self._now, now)
        if self.draw_a > 0 and dt > 0:
            kwh = min(self.draw_a * VOLTS_PER_PHASE * self.p.phases * dt / 3.6e6, self._room_kwh())
            self.delivered_kwh += kwh
            self.p.soc_pct = min(100.0, self.p.soc_pct + kwh / self.p.capacity_kwh * 100.0)
        if self.want_charge and self._full():
            self.p.soc_pct = 100.0
            return self._want(False, now, "battery full")
        return []

    def _room_kwh(self) -> float:
        return max(0.0, self.p.capacity_kwh * (100.0 - self.p.soc_pct) / 100.0)

    def _full(self) -> bool:
        return self.p.soc_pct >= 100.0 - 1e-9

    def _full_at(self) -> float | None:
        if self.draw_a <= 0 or not self.want_charge:
            return None
        return self._now + self._room_kwh() * 3.6e6 / (self.draw_a * VOLTS_PER_PHASE * self.p.phases)

    # ----- the plan

    def _note(self, text: str) -> None:
        self.events.append(text)

    def _run_plan(self, now: float) -> list[Action]:
        out: list[Action] = []
        if self._wait_until is not None:
            if now < self._wait_until:
                return out
            self._wait_until = None
        if self._wait_until_done is not None:
            if self.want_charge or (self._hlc and self.evcc.phase not in (evcc.Phase.IDLE, evcc.Phase.PAUSED)):
                return out  # still charging, or the HLC stop (PowerDelivery, SessionStop) under way
            self._wait_until_done = None
        while self.pc < len(self.plan) and self._wait_until is None and self._wait_until_done is None:
            step = self.plan[self.pc]
            self.pc += 1
            out += self._do(step, now)
        return out

    def _do(self, step: Step, now: float) -> list[Action]:
        self._note(f"plan: {step}")
        cmd, arg = step.command, step.arg
        if cmd == "wait":
            if arg == "full":
                self._wait_until_done = "full" if self.want_charge else None
            else:
                self._wait_until = now + float(arg)  # type: ignore[arg-type]
            return []
        if cmd == "stop":
            out = self.stop(now)
            if self._hlc and self.evcc.phase not in (evcc.Phase.IDLE, evcc.Phase.PAUSED):
                self._wait_until_done = "stopped"  # the next step waits for SessionStop to be answered
            return out
        if cmd in ("plug", "unplug"):
            return getattr(self, cmd)(now)
        if cmd == "charge":
            return self.charge(now, arg)  # type: ignore[arg-type]
        attr = {"hlc": "hlc", "soc": "soc_pct", "capacity": "capacity_kwh", "need": "need_kwh",
                "max": "max_current_a", "phases": "phases", "departure": "departure_s",
                "ignore_stop": "ignore_stop", "ventilation": "ventilation", "diode": "diode"}[cmd]
        setattr(self.p, attr, int(arg) if cmd == "phases" else arg)  # type: ignore[arg-type]
        return self._sync()
