"""The IEC 61851-1 control pilot state machine (EVSE side), sans-I/O.

Inputs: the pilot reading (A-F) the HAL sees, whether the EVSE is ready to deliver energy
(the session decides), the allowed current (from the lease), faults and the emergency stop,
and the time. Outputs: actions for the HAL (contactor, PWM duty, pilot at -12 V) and the
moment of the next timer. The rules it keeps (docs/architecture.md, "Inside the charge point"):

- contactor closed at once (well within 3 s) when the EV is in C and the EVSE is ready;
- contactor open at once on C->B, C->A, D, a fault or the emergency stop;
- when the EVSE withdraws readiness while the EV is in C it stops the PWM and waits for the
  EV to go to B; an EV that ignores that has its contactor forced open after 6 s;
- a pilot short (E), a voltage in no band (INVALID), an unexpected -12 V (F) or a diode fault put the EVSE in F (-12 V,
  contactor open); pilot faults (and over-current) are retried after `fault_retry_s`, other
  faults are latched until `clear_fault`;
- while the EVSE itself drives -12 V it cannot see the EV (the EV's diode blocks), so whether an
  EV is there is unknown; the first reading after the fault ends says it afresh. `EvPresence`
  tells when an EV is seen (after A, or after such a blind spell) and when it is gone (A).

High-level communication (ISO 15118) uses a 5 % duty; basic charging ("without profile")
advertises the allowed current with the duty: 6-51 A -> A / 0.6 %, 51-80 A -> A / 2.5 + 64 %.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from hal.pilot.conversions import DUTY_HLC, MIN_CURRENT_A, PilotState, duty_for_current

STOP_TIMEOUT_S = 6.0
FAULT_RETRY_S = 10.0

# Faults retried after `fault_retry_s` (the pilot's own, and an EV drawing too much); the others are latched.
PILOT_FAULTS = frozenset({"pilot_short", "pilot_invalid", "pilot_fault", "diode_fault", "over_current"})

__all__ = ["EvPresence", "Mode", "PilotChanged", "PilotMachine", "PilotState", "SetContactor", "SetPilotError",
           "SetPwm", "duty_for_current"]

# What a reading says about the EV; the others (E, F, INVALID) are faults and say nothing.
_PRESENT = {PilotState.A: False, PilotState.B: True, PilotState.C: True, PilotState.D: True}


class Mode(StrEnum):
    HLC = "hlc"  # 5 % duty: ISO 15118 tells the current
    PWM = "pwm"  # the duty tells the current (charging without profile)


@dataclass(frozen=True)
class SetContactor:
    closed: bool
    reason: str


@dataclass(frozen=True)
class SetPwm:
    """Oscillate at `duty_pct` (1 kHz), or None for a steady +12 V (no PWM: "not ready")."""

    duty_pct: float | None


@dataclass(frozen=True)
class SetPilotError:
    """Drive the pilot to a steady -12 V: state F, the EVSE is not available."""


@dataclass(frozen=True)
class PilotChanged:
    """The EV side moved: `previous` -> `state` (the engine tells the session)."""

    previous: PilotState
    state: PilotState


@dataclass(frozen=True)
class EvPresence:
    """An EV is now seen on the cable (`present`: a plug-in, as far as sessions go), or is gone (state A)."""

    present: bool


Action = SetContactor | SetPwm | SetPilotError | PilotChanged | EvPresence


class PilotMachine:
    """The pilot and contactor of one EVSE. Call the inputs, carry out the returned actions,
    and call `tick(now)` at `next_deadline()`."""

    def __init__(self, stop_timeout_s: float = STOP_TIMEOUT_S, fault_retry_s: float = FAULT_RETRY_S) -> None:
        self.stop_timeout_s = stop_timeout_s
        self.fault_retry_s = fault_retry_s
        self.reading = PilotState.A
        self.mode = Mode.HLC
        self.ready = False
        self.current_a = 0.0
        self.faults: dict[str, float] = {}  # code -> when raised
        self.contactor = False
        self.duty: float | None = None
        self.pilot_error = False
        self.ev_present: bool | None = False  # None: unknown, hidden by our own -12 V
        self._pwm_stale = False
        self.stop_deadline: float | None = None
        self.closed_at: float | None = None

    # ------------------------------------------------------------------ inputs

    def pilot(self, reading: PilotState | str, now: float) -> list[Action]:
        """The pilot reading changed (or was read again)."""
        state = PilotState(reading)
        actions: list[Action] = []
        if state is not self.reading:
            actions.append(PilotChanged(self.reading, state))
            self.reading = state
        present = None if self.pilot_error else _PRESENT.get(state)
        if present is not None and present is not self.ev_present:
            self.ev_present = present
            actions.append(EvPresence(present))
        if self.pilot_error:
            pass  # while the EVSE itself drives -12 V the reading says little (a broken diode pulls it up)
        elif state is PilotState.E:
            self.faults.setdefault("pilot_short", now)
        elif state is PilotState.INVALID:
            self.faults.setdefault("pilot_invalid", now)
        elif state is PilotState.F:
            self.faults.setdefault("pilot_fault", now)
        return actions + self._evaluate(now)

    def set_ready(self, ready: bool, now: float) -> list[Action]:
        """The EVSE may (True) or may no longer (False) deliver energy: authorized, PowerDelivery started."""
        self.ready = ready
        return self._evaluate(now)

    def set_mode(self, mode: Mode | str, now: float) -> list[Action]:
        self.mode = Mode(mode)
        return self._evaluate(now)

    def set_current(self, current_a: float, now: float) -> list[Action]:
        """The allowed current (the lease's); below 6 A basic charging cannot go on."""
        self.current_a = current_a
        return self._evaluate(now)

    def fault(self, code: str, now: float) -> list[Action]:
        """A fault (meter, relay, diode_fault, emergency_stop, ...): contactor open at once, state F."""
        self.faults.setdefault(code, now)
        return self._evaluate(now)

    def clear_fault(self, code: str, now: float) -> list[Action]:
        self.faults.pop(code, None)
        return self._evaluate(now)

    def tick(self, now: float) -> list[Action]:
        """Run the timers that are due: the forced open after an ignored PWM stop, pilot fault retries."""
        for code, since in list(self.faults.items()):
            if code in PILOT_FAULTS and now >= since + self.fault_retry_s:
                del self.faults[code]
        return self._evaluate(now)

    # ------------------------------------------------------------------ queries

    @property
    def faulted(self) -> bool:
        return bool(self.faults)

    @property
    def stopping(self) -> bool:
        return self.stop_deadline is not None

    def next_deadline(self) -> float | None:
        moments = [since + self.fault_retry_s for code, since in self.faults.items() if code in PILOT_FAULTS]
        if self.stop_deadline is not None:
            moments.append(self.stop_deadline)
        return min(moments, default=None)

    def can_energize(self) -> bool:
        """Ready, not faulted, and (basic charging) allowed at least 6 A."""
        if self.faults or not self.ready:
            return False
        return self.mode is Mode.HLC or self.current_a >= MIN_CURRENT_A

    # ------------------------------------------------------------------ the rules

    def _evaluate(self, now: float) -> list[Action]:
        actions: list[Action] = []
        ev_wants_power = self.reading is PilotState.C
        if self.faults:
            self.stop_deadline = None
            actions += self._contactor(False, "fault:" + ",".join(sorted(self.faults)), now)
            actions += self._pilot_error(True)
            return actions
        actions += self._pilot_error(False)
        if self.reading is not PilotState.C:
            self.stop_deadline = None
            if self.contactor:
                reason = {PilotState.B: "ev_stopped", PilotState.A: "unplugged"}.get(self.reading, "not_state_c")
                actions += self._contactor(False, reason, now)
        energize = self.can_energize()
        if ev_wants_power and not energize:
            if self.contactor and self.stop_deadline is None:
                self.stop_deadline = now + self.stop_timeout_s
            if self.stop_deadline is not None and now >= self.stop_deadline:
                self.stop_deadline = None
                actions += self._contactor(False, "stop_ignored", now)
        elif energize:
            self.stop_deadline = None
        actions += self._pwm(self._duty(energize))
        if ev_wants_power and energize and not self.contactor:
            actions += self._contactor(True, "state_c_ready", now)
        return actions

    def _duty(self, energize: bool) -> float | None:
        if self.reading is PilotState.A:
            return None
        if self.stop_deadline is not None or (self.reading is PilotState.C and not energize):
            return None  # the PWM stop: the EV must go back to B
        if self.mode is Mode.HLC:
            return DUTY_HLC
        return duty_for_current(self.current_a) if energize else None

    def _contactor(self, closed: bool, reason: str, now: float) -> list[Action]:
        if closed == self.contactor:
            return []
        self.contactor = closed
        self.closed_at = now if closed else None
        return [SetContactor(closed, reason)]

    def _pwm(self, duty: float | None) -> list[Action]:
        if duty == self.duty and not self._pwm_stale:
            return []
        self.duty, self._pwm_stale = duty, False
        return [SetPwm(duty)]

    def _pilot_error(self, on: bool) -> list[Action]:
        if on == self.pilot_error:
            return []
        self.pilot_error = on
        if on:
            self.ev_present = None  # our -12 V hides the EV until the next reading after the error
        self._pwm_stale = True  # the pilot must be driven again when the error ends
        return [SetPilotError()] if on else []
