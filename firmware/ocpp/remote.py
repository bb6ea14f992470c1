"""What a CSMS asks of this charge point, decided: through the site where it changes the site, here otherwise.

A request that changes the site (remote start and stop, availability, reservations) becomes a proposal for this
charge point and is answered when the site decided (or Rejected after SITE_TIMEOUT_S: the site cannot be
reached). Charging profiles are kept here (profiles.py) and their limits in force go to the site as
`charging_limits` whenever they change. Configuration is the settings' (settings.py).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from evnet.logs import EventLogger
from firmware.ocpp import profiles as pr
from firmware.ocpp import requests as r
from firmware.ocpp import rpc, schedule
from firmware.ocpp.dialect import Call, Dialect
from firmware.ocpp.events import Output, Propose, Restart, Sample, Send
from firmware.ocpp.outbox import Outbox
from firmware.ocpp.profile_store import ProfileStore
from firmware.ocpp.settings import OcppSettings
from firmware.ocpp.transactions import Tx

SITE_TIMEOUT_S = 10.0     # the site's answer to a CSMS's request; then Rejected
RESET_WAIT_S = 15.0       # a Reset waits this long for its session to end, then starts again anyway
RESERVE_ERRORS = {"cp_busy": "Occupied", "cp_reserved": "Occupied"}
TRIGGERED = ("boot", "heartbeat", "status", "meter", "transaction")


@dataclass(frozen=True)
class Asking:
    """A proposal waiting for the site: for a CSMS request (`uid`) or of our own (`uid` None)."""

    uid: str | None
    action: str
    request: r.Request | None
    op: str
    deadline: float


class RemoteControl:
    def __init__(self, dialect: Dialect, cp: str, *, settings: OcppSettings, profiles: ProfileStore,
                 outbox: Outbox, tx: Callable[[], Tx | None], enqueue: Callable[[Call], None],
                 status: Callable[[float], Call], sample: Callable[[], Sample | None],
                 measurands: Callable[[], list[str]], tx_triggered: Callable[[], bool], log: EventLogger) -> None:
        self.d = dialect
        self.cp = cp
        self.settings = settings
        self.profiles = profiles
        self.outbox = outbox
        self._tx = tx
        self._enqueue = enqueue
        self._status = status
        self._sample = sample
        self._measurands = measurands
        self._tx_triggered = tx_triggered
        self.log = log
        self._refs = itertools.count(1)
        self.asking: dict[int, Asking] = {}
        self.remote: r.RemoteStart | None = None          # a remote start the site accepted, waiting for the EV
        self.reservation: r.Reserve | None = None
        self.inoperative_after_tx = False
        self.reset: tuple[str, float] | None = None        # (reason, start again at the latest)
        self._limits_sent: tuple[float | None, ...] | None = None
        self.limits_at: float | None = None
        self._proposals: list[Output] = []

    # -- the CSMS's requests ---------------------------------------------------------------------------

    def request(self, call: rpc.CallIn, now: float) -> list[Output]:
        try:
            request = self.d.request(call.action, call.payload)
        except (KeyError, ValueError, TypeError) as exc:  # the schema let it through, our reading did not
            return [Send(rpc.error_frame(call.uid, "FormationViolation", str(exc)[:120]))]
        if request is None:
            return [Send(rpc.error_frame(call.uid, "NotSupported", f"{call.action} is not supported"))]
        self.log.info("ocpp.request", action=call.action, request=type(request).__name__)
        match request:
            case r.GetConfig(p) | r.SetConfig(p):
                return self._reply(call, self._config(request, p, now))
            case r.Plain(payload):
                return self._reply(call, payload)
            case r.Composite():
                return self._reply(call, self._composite(request, now))
        outcome = self._decide(call, request, now)
        out = [] if outcome is None else self._answer(call.uid, call.action, request, outcome, now)
        return out + self.take_proposals()

    def _decide(self, call: rpc.CallIn, q: r.Request, now: float) -> str | None:
        """The answer's status, or None when the site decides (the answer comes with its result)."""
        tx = self._tx()
        match q:
            case r.RemoteStart(token, profile, _, ok):
                if not ok or tx is not None:
                    return "Rejected"
                if profile is not None and self.d.profile_purpose(profile) != "tx":
                    self.log.warning("ocpp.profile_refused", why="a remote start's profile must be a TxProfile")
                    return "Rejected"
                timeout = float(self.settings.value("ConnectionTimeOut"))
                return self._ask(call, q, "remote_start", {"token": token, "timeout_s": timeout}, now)
            case r.RemoteStop(tx_id):
                if tx is None or tx_id != self._csms_tx_id(tx):
                    return "Rejected"
                return self._ask(call, q, "remote_stop", {"session": tx.session}, now)
            case r.ChangeAvailability(operative, ok):
                if not ok:
                    return "Rejected"
                if not operative and tx is not None:
                    self.inoperative_after_tx = True
                    return "Scheduled"
                self.inoperative_after_tx = False
                return self._ask(call, q, "resume_cp" if operative else "stop_cp", {}, now)
            case r.Reset(immediate):
                reason = "hard_reset" if immediate else "reset"
                if tx is None:
                    self.reset = (reason, now)  # _answer restarts right after the answer has gone out
                    return "Accepted"
                if not immediate and self.d.version != "1.6":  # 2.0.1 OnIdle: once the transaction has ended
                    self.reset = (reason, math.inf)
                    return "Scheduled"
                self.reset = (reason, now + RESET_WAIT_S)  # 1.6 Soft and Hard, 2.0.1 Immediate: stop it first
                self._ask(None, None, "remote_stop", {"session": tx.session}, now)
                return "Accepted"
            case r.Unlock(ok):
                return "NotSupported" if ok else "Rejected"  # no cable lock on this hardware
            case r.Reserve(_, token, expires, ok):
                if not ok or expires <= now + 1:
                    return "Rejected"
                return self._ask(call, q, "remote_reserve", {"token": token,
                                                             "duration_s": min(expires - now, 86_400.0)}, now)
            case r.CancelReserve(res_id):
                if self.reservation is None or self.reservation.reservation_id != res_id:
                    return "Rejected"
                return self._ask(call, q, "remote_cancel_reservation", {}, now)
            case r.SetProfile(raw, ok):
                return self._set_profile(raw, ok, now)
            case r.ClearProfile(pid, purpose, level):
                cleared = self.profiles.clear(id=pid, purpose=purpose, stack_level=level)
                return "Accepted" if cleared else "Unknown"
            case r.Trigger(what, known):
                if not known or what not in TRIGGERED:
                    return "NotImplemented" if what not in TRIGGERED else "Rejected"
                if what in ("meter", "transaction") and self._sample() is None or what == "transaction" and tx is None:
                    return "Rejected"  # nothing to report: Accepted would promise a message never sent
                return "Accepted"
        return "Rejected"

    def _answer(self, uid: str, action: str, q: r.Request, outcome: str, now: float) -> list[Output]:
        out = self._reply_to(uid, action, self.d.reply(q, outcome))
        match q:
            case r.Reset() if self.reset is not None and self._tx() is None:
                out.append(Restart(self.reset[0]))
                self.reset = None
            case r.SetProfile() | r.ClearProfile():
                out += self.limits(now)
            case r.Trigger(what) if outcome == "Accepted":
                self._trigger(what, now)
        return out

    def _ask(self, call: rpc.CallIn | None, q: r.Request | None, op: str, args: dict[str, Any],
             now: float) -> None:
        """Propose `op` for this charge point; the CSMS's request (if any) is answered with the site's result."""
        ref = next(self._refs)
        self.asking[ref] = Asking(None if call is None else call.uid, "" if call is None else call.action, q, op,
                                  now + SITE_TIMEOUT_S)
        self._proposals.append(Propose(ref, op, {"cp": self.cp, **args}))

    # -- the site's decisions --------------------------------------------------------------------------

    def answered(self, ref: int, result: dict[str, Any] | None, now: float) -> list[Output]:
        asking = self.asking.pop(ref, None)
        if asking is None:
            return []
        ok = result is not None and result.get("ok") is True
        if not ok:
            self.log.warning("ocpp.site_refused", op=asking.op, error=None if result is None else result.get("error"),
                             why="no answer in time" if result is None else result.get("reason", ""))
        if asking.op == "charging_limits" and not ok:
            self._limits_sent = None  # try again at the next tick
            self.limits_at = now + 5.0
        q = asking.request
        if asking.uid is None or q is None:
            return []
        outcome = "Accepted" if ok else "Rejected"
        match q:
            case r.RemoteStart() if ok:
                self.remote = q
            case r.Reserve() if ok:
                self.reservation = q
            case r.Reserve() if result is not None:
                error = result.get("error", "")
                why = result.get("why", "")
                outcome = RESERVE_ERRORS.get(error, "Faulted" if why == "faulted" else
                                             "Unavailable" if error == "cp_unavailable" else "Rejected")
            case r.CancelReserve() if ok:
                self.reservation = None
        return self._answer(asking.uid, asking.action, q, outcome, now) + self.take_proposals()

    def tick(self, now: float) -> list[Output]:
        out: list[Output] = []
        for ref, asking in list(self.asking.items()):
            if now >= asking.deadline:
                out += self.answered(ref, None, now)
        if self.limits_at is not None and now >= self.limits_at:
            out += self.limits(now)
        if self.reset is not None and now >= self.reset[1]:
            out.append(Restart(self.reset[0]))
            self.reset = None
        return out + self.take_proposals()

    def deadlines(self) -> list[float]:
        times = [a.deadline for a in self.asking.values()]
        reset = None if self.reset is None or math.isinf(self.reset[1]) else self.reset[1]
        return times + [t for t in (self.limits_at, reset) if t is not None]

    # -- the transaction, as it concerns requests --------------------------------------------------------

    def tx_started(self, tx: Tx, now: float) -> list[Output]:
        remote, self.remote = self.remote, None
        if remote is not None and remote.profile is not None and remote.token == tx.token:
            self._set_profile(remote.profile, True, now)
        if self.reservation is not None and self.reservation.token == tx.token:
            self.reservation = None
        return self.limits(now) + self.take_proposals()

    def tx_ended(self, tx: Tx, now: float) -> list[Output]:
        self.profiles.transaction_ended(self._profile_tx_id(tx))
        out = self.limits(now, tx=None)
        if self.inoperative_after_tx:
            self.inoperative_after_tx = False
            self._ask(None, None, "stop_cp", {}, now)
        if self.reset is not None:
            out.append(Restart(self.reset[0]))
            self.reset = None
        return out + self.take_proposals()

    def authorized(self, token: str, now: float) -> list[Output]:
        """The CSMS accepted a token presented here: it waits for its EV at the site, like a remote start."""
        timeout = float(self.settings.value("ConnectionTimeOut"))
        self._ask(None, None, "remote_start", {"token": token, "timeout_s": timeout}, now)
        return self.take_proposals()

    def invalid_token(self, session: str, now: float) -> list[Output]:
        """The CSMS refused the token of transaction `session` (StopTransactionOnInvalidId): the site stops it,
        if it still runs."""
        tx = self._tx()
        if tx is not None and tx.session == session:
            self.log.warning("ocpp.tx_token_refused", session=tx.session, token=tx.token)
            self._ask(None, None, "remote_stop", {"session": tx.session}, now)
        return self.take_proposals()

    def remote_of(self, token: str) -> r.RemoteStart | None:
        return self.remote if self.remote is not None and self.remote.token == token else None

    def reservation_of(self, token: str) -> r.Reserve | None:
        return self.reservation if self.reservation is not None and self.reservation.token == token else None

    # -- charging profiles -----------------------------------------------------------------------------

    def _set_profile(self, raw: dict[str, Any], ok: bool, now: float) -> str:
        if not ok:
            return "Rejected"
        try:
            profile = pr.from_v16(raw) if self.d.version == "1.6" else pr.from_v201(raw)
        except pr.ProfileError as exc:
            self.log.warning("ocpp.profile_refused", why=str(exc)[:160])
            return "Rejected"
        tx = self._tx()
        if tx is not None and profile.transaction_id is not None and profile.transaction_id == self._csms_tx_id(tx):
            profile = replace(profile, transaction_id=self._profile_tx_id(tx))
        accepted, why = self.profiles.install(profile, tx=self._tx_info(), now=now)
        if not accepted:
            self.log.warning("ocpp.profile_refused", id=profile.id, why=why)
            return "Rejected"
        self.log.info("ocpp.profile", id=profile.id, purpose=profile.purpose, stack_level=profile.stack_level)
        return "Accepted"

    def limits(self, now: float, *, force: bool = False, tx: Any = ...) -> list[Output]:
        """Propose the limits in force now when they changed (`charging_limits`); set the next check."""
        info = self._tx_info() if tx is ... else tx
        lim = self.profiles.limits(now, info)
        wanted = tuple(None if a is None else max(0.0, min(80.0, round(a, 1)))
                       for a in (lim.cp_max_a, lim.tx_default_a, lim.tx_a if info is not None else None))
        self.limits_at = self.profiles.next_change(now, info)
        if wanted == self._limits_sent and not force:
            return []
        self._limits_sent = wanted
        self._ask(None, None, "charging_limits", {"max_a": wanted[0], "default_a": wanted[1],
                                                  "session_a": wanted[2]}, now)
        return []

    def _composite(self, q: r.Composite, now: float) -> dict[str, Any]:
        unit = q.unit or "A"
        composite = self.profiles.composite(now, q.duration_s, unit, self._tx_info())
        if self.d.version == "1.6":
            v16 = schedule.to_v16(composite)
            return {"status": "Accepted", "connectorId": 1, "scheduleStart": v16["startSchedule"],
                    "chargingSchedule": v16}
        return {"status": "Accepted", "schedule": schedule.to_v201(composite, 1)}

    def _tx_info(self) -> schedule.TxInfo | None:
        tx = self._tx()
        return None if tx is None else schedule.TxInfo(self._profile_tx_id(tx), tx.start_at)

    def _profile_tx_id(self, tx: Tx) -> str:
        """A TxProfile's transaction, by our own id: 1.6's id is not known yet when a session starts with the
        profile of its remote start (it was bound to "", lost once the id came, and broke the file)."""
        return tx.id201

    def _csms_tx_id(self, tx: Tx) -> str:
        """The transaction's id as the CSMS knows it (1.6: the id it gave, or "" before it answered)."""
        if self.d.version == "1.6":
            bound = self.outbox.bound(tx.session)
            return "" if bound is None else str(bound)
        return tx.id201

    # -- configuration and triggers ---------------------------------------------------------------------

    def _config(self, q: r.Request, p: dict[str, Any], now: float) -> dict[str, Any]:
        match q, self.d.version:
            case r.GetConfig(), "1.6":
                return self.settings.get_configuration(p.get("key"))
            case r.SetConfig(), "1.6":
                return {"status": self.settings.change_configuration(p["key"], p["value"])}
            case r.GetConfig(), _:
                return {"getVariableResult": self.settings.get_variables(p["getVariableData"])}
        return {"setVariableResult": self.settings.set_variables(p["setVariableData"])}

    def _trigger(self, what: str, now: float) -> None:
        sample, tx = self._sample(), self._tx()
        measurands = self._measurands()
        match what:
            case "boot":
                self._enqueue(self.d.boot())
            case "heartbeat":
                self._enqueue(("Heartbeat", {}))
            case "status":
                self._enqueue(self._status(now))
            case "transaction" if self._tx_triggered():
                pass
            case "meter" | "transaction" if sample is not None:
                bound = None if tx is None else self.outbox.bound(tx.session)
                self._enqueue(self.d.meter_values(sample, bound if isinstance(bound, int) else None, measurands))

    # -- plumbing ----------------------------------------------------------------------------------------

    def take_proposals(self) -> list[Output]:
        """The proposals made since the last call, for the caller's outputs (every public input ends with it)."""
        out, self._proposals = self._proposals, []
        return out

    def _reply(self, call: rpc.CallIn, payload: dict[str, Any]) -> list[Output]:
        return self._reply_to(call.uid, call.action, payload)

    def _reply_to(self, uid: str, action: str, payload: dict[str, Any]) -> list[Output]:
        try:
            return [Send(rpc.result_frame(uid, action, payload, self.d.version))]
        except ValueError as exc:
            self.log.error("ocpp.our_answer_invalid", action=action, error=str(exc)[:200])
            return [Send(rpc.error_frame(uid, "InternalError", "the charge point could not answer"))]
