"""The EV's side (EVCC) of the ISO 15118-2 message flow, sans-I/O.

The EV opens the session as soon as it is plugged in (the charge point falls back to PWM
only if no SessionSetupReq comes within a few seconds), then:

    SessionSetup -> ServiceDiscovery -> PaymentServiceSelection -> Authorization (asked
    again every `pace_s` while the charge point says Ongoing) -> then, if the EV wants
    energy: ChargeParameterDiscovery (its needs) -> PowerDelivery(Start) -> ChargingStatus
    every `pace_s`; if not yet: SessionStop(Pause), resumed later with SessionSetup
    carrying the paused session id.

A stop is PowerDelivery(Stop) (once PowerDelivery(Start) went out) then SessionStop. The
charge point may ask for ReNegotiation (PowerDelivery(Renegotiate) -> ChargeParameterDiscovery
-> PowerDelivery(Start)) or StopCharging in a ChargingStatusRes. An answer that is late,
malformed, out of sequence or not OK ends the session (`Ended(ok=False)`).

This class only talks; the emulator decides what the pilot and the battery do with the
events it returns (`PowerOn`, `PowerOff`, `Ended`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from firmware.protocols import iso15118 as iso


class Phase(StrEnum):
    IDLE = "idle"  # no session
    HANDSHAKE = "handshake"  # SessionSetup .. Authorization
    NEEDS = "needs"  # ChargeParameterDiscovery sent (also during a renegotiation)
    SCHEDULED = "scheduled"  # the schedule is in, PowerDelivery(Start) sent
    CHARGING = "charging"  # PowerDelivery(Start) accepted: the ChargingStatus loop
    STOPPING = "stopping"  # PowerDelivery(Stop) / SessionStop on their way
    PAUSED = "paused"  # SessionStop(Pause) accepted: resume with the same session id


@dataclass(frozen=True)
class Send:
    message: iso.Message


@dataclass(frozen=True)
class PowerOn:
    """PowerDelivery(Start) accepted: the EV may ask for energy (state C) and draw."""


@dataclass(frozen=True)
class PowerOff:
    """The EV must stop drawing and go back to state B (a stop is under way)."""


@dataclass(frozen=True)
class Ended:
    """The session is over (`ok`: by the book; else why it was aborted)."""

    ok: bool
    why: str


Event = Send | PowerOn | PowerOff | Ended


class Evcc:
    """One EV's ISO 15118-2 client. `needs()` gives the ChargeParameterDiscoveryReq to send."""

    def __init__(self, evcc_id: str, needs: Callable[[], iso.ChargeParameterDiscoveryReq],
                 pace_s: float = 1.0, response_timeout_s: float = 30.0, reask_s: float = 0.1) -> None:
        self.evcc_id = evcc_id
        self.needs = needs
        self.pace_s = pace_s  # ChargingStatusReq, while charging
        self.reask_s = reask_s  # Authorization / ChargeParameterDiscovery again, while the charge point says Ongoing
        self.response_timeout_s = response_timeout_s
        self._reset()

    def _reset(self) -> None:
        self.phase = Phase.IDLE
        self.session_id = ""
        self.want_power = False
        self.evse_max_a: float | None = None
        self.schedule: tuple[iso.ScheduleEntry, ...] = ()
        self.schedule_t0 = 0.0
        self._awaiting: type[iso.Message] | None = None
        self._deadline: float | None = None
        self._paced: tuple[float, iso.Message] | None = None
        self._power_started = False  # PowerDelivery(Start) went out: a stop says PowerDelivery(Stop)
        self._stop_wanted = False
        self._renegotiating = False
        self._sent_pause = False

    # ----- inputs

    def begin(self, now: float, want_power: bool) -> list[Event]:
        """Open a session (plugged in), or resume a paused one."""
        self.want_power = want_power
        if self.phase not in (Phase.IDLE, Phase.PAUSED):
            return []
        if self.phase is Phase.IDLE:
            self.session_id = ""
        self.phase = Phase.HANDSHAKE
        return self._send(iso.SessionSetupReq(evcc_id=self.evcc_id), now)

    def set_want_power(self, want: bool, now: float) -> list[Event]:
        """The EV wants energy (charge) or no longer (stop, full)."""
        self.want_power = want
        if want:
            return self.begin(now, True) if self.phase in (Phase.IDLE, Phase.PAUSED) else []
        if self.phase in (Phase.IDLE, Phase.PAUSED, Phase.STOPPING):
            return []
        self._stop_wanted = True
        self._paced = None
        if self._awaiting is not None:
            return []  # the stop goes out when the awaited answer is in
        return self._stop(now)

    def abandon(self) -> None:
        """Unplugged: forget the session without a word."""
        self._reset()

    def receive(self, data: dict, now: float) -> list[Event]:
        try:
            msg = iso.decode(data)
        except iso.MessageError as exc:
            return self._abort(f"bad message from the charge point: {exc}")
        if self._awaiting is None or not isinstance(msg, self._awaiting):
            if self.phase is Phase.IDLE:
                return []  # a straggler after the session ended
            expected = self._awaiting.__name__ if self._awaiting else "nothing"
            return self._abort(f"unexpected {type(msg).__name__} while awaiting {expected}")
        self._awaiting = self._deadline = None
        code = getattr(msg, "response_code", iso.OK)
        if not code.startswith("OK"):
            return self._abort(f"{type(msg).__name__} answered {code}")
        if isinstance(msg, iso.SessionSetupRes):
            self.session_id = msg.session_id
        if self.phase is Phase.STOPPING:
            return self._on_stopping(msg, now)
        if self._stop_wanted:
            return self._stop(now)  # an answer that was in flight when the stop came
        return self._on_response(msg, now)

    def tick(self, now: float) -> list[Event]:
        if self._deadline is not None and now >= self._deadline:
            name = self._awaiting.__name__ if self._awaiting else "an answer"
            return self._abort(f"no {name} within {self.response_timeout_s:g} s")
        if self._paced is not None and now >= self._paced[0]:
            msg, self._paced = self._paced[1], None
            return self._send(msg, now)
        return []

    def next_deadline(self) -> float | None:
        times = [t for t in (self._deadline, self._paced[0] if self._paced else None) if t is not None]
        return min(times, default=None)

    def schedule_limit(self, now: float) -> float | None:
        limit = None
        for entry in self.schedule:
            if now - self.schedule_t0 >= entry.start_s:
                limit = entry.max_current_a
        return limit

    def next_schedule_change(self, now: float) -> float | None:
        later = [self.schedule_t0 + e.start_s for e in self.schedule if self.schedule_t0 + e.start_s > now]
        return min(later, default=None)

    # ----- the flow

    def _on_response(self, msg: iso.Message, now: float) -> list[Event]:
        if isinstance(msg, iso.SessionSetupRes):
            return self._send(iso.ServiceDiscoveryReq(), now)
        if isinstance(msg, iso.ServiceDiscoveryRes):
            option = "ExternalPayment" if "ExternalPayment" in msg.payment_options else msg.payment_options[0]
            return self._send(iso.PaymentServiceSelectionReq(payment_option=option), now)  # type: ignore[arg-type]
        if isinstance(msg, iso.PaymentServiceSelectionRes):
            return self._send(iso.AuthorizationReq(), now)
        if isinstance(msg, iso.AuthorizationRes):
            if msg.evse_processing == "Ongoing":
                return self._pace(iso.AuthorizationReq(), now, self.reask_s)
            if not self.want_power:
                self.phase = Phase.STOPPING
                return self._send(iso.SessionStopReq(charging_session="Pause"), now)
            return self._negotiate(now)
        if isinstance(msg, iso.ChargeParameterDiscoveryRes):
            if msg.evse_processing == "Ongoing":
                return self._pace(self.needs(), now, self.reask_s)
            self.evse_max_a = msg.evse_max_current_a
            self.schedule, self.schedule_t0 = msg.schedule, now
            self.phase = Phase.SCHEDULED
            self._power_started = True
            return self._send(iso.PowerDeliveryReq(charge_progress="Start", schedule_id=msg.schedule_id), now)
        if isinstance(msg, iso.PowerDeliveryRes):
            if self._renegotiating:
                self._renegotiating = False
                return self._negotiate(now)
            self.phase = Phase.CHARGING
            return [PowerOn()] + self._pace(iso.ChargingStatusReq(), now)
        if isinstance(msg, iso.ChargingStatusRes):
            self.evse_max_a = msg.evse_max_current_a  # 0 means 0: never keep an older, higher limit
            if msg.evse_notification == "StopCharging":
                self.want_power = False
                return self._stop(now)
            if msg.evse_notification == "ReNegotiation":
                self._renegotiating = True
                self.phase = Phase.NEEDS
                return self._send(iso.PowerDeliveryReq(charge_progress="Renegotiate"), now)
            return self._pace(iso.ChargingStatusReq(), now)
        return []

    def _negotiate(self, now: float) -> list[Event]:
        self.phase = Phase.NEEDS
        return self._send(self.needs(), now)

    def _stop(self, now: float) -> list[Event]:
        self._stop_wanted = False
        self.phase = Phase.STOPPING
        if self._power_started:
            return [PowerOff()] + self._send(iso.PowerDeliveryReq(charge_progress="Stop"), now)
        return self._send(iso.SessionStopReq(), now)

    def _on_stopping(self, msg: iso.Message, now: float) -> list[Event]:
        if isinstance(msg, iso.PowerDeliveryRes):
            self._power_started = False
            return self._send(iso.SessionStopReq(), now)
        paused = self._sent_pause
        sid = self.session_id
        self.abandon()
        if paused:
            self.phase, self.session_id = Phase.PAUSED, sid
            return [Ended(True, "paused")]
        return [Ended(True, "stopped")]

    def _send(self, msg: iso.Message, now: float) -> list[Event]:
        msg = dataclasses.replace(msg, session_id=self.session_id)
        self._awaiting = iso.response_to(msg)
        self._deadline = now + self.response_timeout_s
        self._sent_pause = isinstance(msg, iso.SessionStopReq) and msg.charging_session == "Pause"
        return [Send(msg)]

    def _pace(self, msg: iso.Message, now: float, after: float | None = None) -> list[Event]:
        self._paced = (now + (self.pace_s if after is None else after), msg)
        return []

    def _abort(self, why: str) -> list[Event]:
        self.abandon()
        return [PowerOff(), Ended(False, why)]
