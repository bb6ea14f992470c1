"""The charge point's OCPP client, sans I/O: events in (events.py), frames and site proposals out.

One core for both versions; the version's words are its dialect (v16.py, v201.py). The core owns the
conversation: BootNotification on every connection, then status, heartbeats and the offline queue, one call
in flight at a time (OCPP-J). What a CSMS asks that changes the site becomes a proposal to the site for this
charge point (docs/site.md "A charge point's back office") and is answered when the site decided, so a remote
start, a reservation, an availability change or a charging profile is seen by every member and obeyed by the
split. Energy never waits for any of it: the core only reports what the engine did.

Parts it composes, each owning its state: the configuration (settings.py), the charging profiles
(profiles.py), the offline queue (outbox.py) and the transaction in progress (transactions.py).
"""

from __future__ import annotations

import itertools
from collections import deque
from dataclasses import dataclass
from typing import Any

from evnet.logs import EventLogger, FoldedLog
from firmware.ocpp import rpc
from firmware.ocpp.dialect import Call, Dialect
from firmware.ocpp.events import (
    Connector,
    Event,
    LinkDown,
    LinkUp,
    LocalStart,
    Output,
    Sample,
    Send,
    SiteAnswer,
    TokenPresented,
    TxEnded,
    TxStarted,
)
from firmware.ocpp.outbox import Outbox
from firmware.ocpp.profile_store import ProfileStore
from firmware.ocpp.remote import RemoteControl
from firmware.ocpp.reporting import TxReporter
from firmware.ocpp.settings import OcppSettings
from firmware.ocpp.transactions import TxFile

CALL_TIMEOUT_S = 30.0     # an answer not here by then: the call failed (2.0.1's MessageTimeout sets it)
AUTHORIZE_TIMEOUT_S = 5.0  # a driver waits at the point: an Authorize not answered by then is decided locally
BOOT_RETRY_S = 10.0       # a boot not answered, or answered without an interval
MAX_QUEUE = 100           # status and the like while not booted: only the latest are worth sending


@dataclass(frozen=True)
class _InFlight:
    uid: str
    action: str
    seq: int | None           # the outbox entry it sends, or None
    deadline: float
    token: str | None = None  # an Authorize's token
    tx: str | None = None     # the session of a queued transaction message


class OcppCore:
    def __init__(self, dialect: Dialect, cp: str, *, settings: OcppSettings, profiles: ProfileStore, outbox: Outbox,
                 txfile: TxFile, log: EventLogger) -> None:
        self.d = dialect
        self.cp = cp
        self.settings = settings
        self.outbox = outbox
        self.log = log
        self._now = 0.0
        self._folded = FoldedLog(log, monotonic=lambda: self._now)
        self.connected = False
        self.accepted = False             # BootNotification accepted on this connection
        self._boot_at = 0.0
        self._uids = itertools.count(1)
        self._in_flight: _InFlight | None = None
        self._queue: deque[tuple[str, dict[str, Any], str | None]] = deque()  # (action, payload, token)
        self._retry_at = 0.0
        self._heartbeat_at: float | None = None
        self.heartbeat_s = float(settings.value("HeartbeatInterval"))
        self.connector = Connector("Available")
        self.bad_frames = 0
        self.reporter = TxReporter(dialect, settings=settings, outbox=outbox, txfile=txfile, log=log)
        self.remote = RemoteControl(dialect, cp, settings=settings, profiles=profiles, outbox=outbox,
                                    tx=lambda: txfile.tx, enqueue=self._enqueue_call,
                                    status=lambda now: dialect.status(self.connector, now),
                                    sample=lambda: self.reporter.sample,
                                    measurands=lambda: self.reporter.measurands(at_least_one=True),
                                    tx_triggered=self.reporter.triggered, log=log)

    # -- inputs ----------------------------------------------------------------------------------------

    def start(self, now: float) -> list[Output]:
        """At start: propose the limits of the profiles kept on disk (the site may have missed a change)."""
        self._now = now
        return self.remote.limits(now, force=True) + self.remote.take_proposals()

    def handle(self, event: Event, now: float) -> list[Output]:
        self._now = now
        out: list[Output] = []
        match event:
            case LinkUp():
                self.connected, self.accepted, self._in_flight, self._boot_at = True, False, None, now
                self._queue.clear()
            case LinkDown():
                out += self._tokens_to_decide_locally()
                self.connected, self.accepted, self._in_flight = False, False, None
            case rpc.CallIn():
                out += self.remote.request(event, now)
                if "HeartbeatInterval" in self.settings.changed():  # the CSMS set it: in force from now
                    self.heartbeat_s = float(self.settings.value("HeartbeatInterval"))
                    self._heartbeat_at = now + self.heartbeat_s
            case rpc.ResultIn():
                out += self._result(event, now)
            case rpc.ErrorIn():
                out += self._failed(event.uid, f"{event.code}: {event.description}", now)
            case Connector():
                if event != self.connector:
                    self.connector = event
                    self._enqueue_call(self.d.status(event, now))
            case Sample():
                for call in self.reporter.sampled(event):
                    self._enqueue_call(call)
            case TxStarted():
                remote = self.remote.remote_of(event.token)
                reservation = self.remote.reservation_of(event.token)
                tx = self.reporter.started(event, None if remote is None else remote.remote_id,
                                           None if reservation is None else reservation.reservation_id)
                if tx is not None:
                    out += self.remote.tx_started(tx, now)
            case TxEnded():
                tx = self.reporter.ended(event)
                if tx is not None:
                    out += self.remote.tx_ended(tx, now)
            case TokenPresented(token):
                out += self._token(token)
            case SiteAnswer(ref, result):
                out += self.remote.answered(ref, result, now)
        return out + self._pump(now)

    def _token(self, token: str) -> list[Output]:
        """A token presented here: the CSMS authorizes it; the site's drivers and the local list decide first with
        LocalPreAuthorize, and while the CSMS cannot be reached with LocalAuthorizeOffline (else it is refused)."""
        if self.settings.value("LocalPreAuthorize"):
            self.log.info("ocpp.token_local", token=token, why="LocalPreAuthorize")
            return [LocalStart(token)]
        if self.accepted:
            self._enqueue_call(self.d.authorize(token), token=token)
            return []
        if self.settings.value("LocalAuthorizeOffline"):
            self.log.info("ocpp.token_local", token=token, why="the CSMS cannot be reached")
            return [LocalStart(token)]
        self.log.warning("ocpp.token_refused", token=token, why="the CSMS cannot be reached and "
                                                                "LocalAuthorizeOffline is false")
        return []

    def bad_frame(self, frame: rpc.BadFrame) -> list[Output]:
        """A frame rpc.py refused: counted, logged (folded), answered with its CallError when one is due."""
        self.bad_frames += 1
        self._folded.warning("ocpp.bad_frame", key=frame.detail[:40], detail=frame.detail[:200])
        return [] if frame.reply is None else [Send(frame.reply)]

    def tick(self, now: float) -> list[Output]:
        self._now = now
        out: list[Output] = []
        if self._in_flight is not None and now >= self._in_flight.deadline:
            out += self._failed(self._in_flight.uid, "no answer in time", now)
        out += self.remote.tick(now)
        return out + self._pump(now)

    def next_deadline(self) -> float | None:
        times = self.remote.deadlines()
        if self._in_flight is not None:
            times.append(self._in_flight.deadline)
        elif self.connected and not self.accepted:
            times.append(self._boot_at)
        elif self.connected:  # the queue's retry and the heartbeat: whichever comes first
            if self.outbox.head() is not None:
                times.append(self._retry_at)
            if self.heartbeat_s > 0:
                times.append(self._heartbeat_at if self._heartbeat_at is not None else self._now)
        return min(times, default=None)

    def action_of(self, uid: str) -> str | None:
        """The action of our call in flight with this id (rpc.decode's `action_of`)."""
        f = self._in_flight
        return f.action if f is not None and f.uid == uid else None

    def _tokens_to_decide_locally(self) -> list[Output]:
        """The link went down with tokens waiting for the CSMS's Authorize: the site decides them, none is dropped
        (a driver at the point would otherwise wait for nothing)."""
        f = self._in_flight
        tokens = ([] if f is None or f.token is None else [f.token]) + [t for _, _, t in self._queue if t is not None]
        self._queue = deque(q for q in self._queue if q[2] is None)
        for token in tokens:
            self.log.info("ocpp.token_local", token=token, why="the link went down before the CSMS answered")
        return [LocalStart(t) for t in tokens]

    # -- sending ---------------------------------------------------------------------------------------

    def _enqueue_call(self, call: Call, token: str | None = None) -> None:
        self._queue.append((call[0], call[1], token))
        if len(self._queue) > MAX_QUEUE:
            self._queue.popleft()

    def _pump(self, now: float) -> list[Output]:
        """Send the next call if none is in flight: the boot first, then status and the like, then the queue."""
        if not self.connected or self._in_flight is not None:
            return []
        if not self.accepted:
            return self._send_call(*self.d.boot(), now) if now >= self._boot_at else []
        if self._queue:
            action, payload, token = self._queue.popleft()
            return self._send_call(action, payload, now, token=token)
        entry = self.outbox.head()
        if entry is not None and now >= self._retry_at:
            return self._send_call(entry.action, entry.payload, now, seq=entry.seq, tx=entry.tx)
        if self.heartbeat_s > 0 and (self._heartbeat_at is None or now >= self._heartbeat_at):
            return self._send_call("Heartbeat", {}, now)
        return []

    def _send_call(self, action: str, payload: dict[str, Any], now: float, *, seq: int | None = None,
                   token: str | None = None, tx: str | None = None) -> list[Output]:
        uid = f"{next(self._uids)}"
        try:
            frame = rpc.call_frame(uid, action, payload, self.d.version)
        except ValueError as exc:  # a bug of ours: never sent; a queued one is given up, not retried for ever
            self.log.error("ocpp.our_call_invalid", action=action, error=str(exc)[:200])
            if seq is not None:
                self.outbox.give_up(seq)
            return []
        timeout = float(self.settings.value("OCPPCommCtrlr.MessageTimeout[Default]")) or CALL_TIMEOUT_S
        if action == "Authorize":
            timeout = min(timeout, AUTHORIZE_TIMEOUT_S)
        self._in_flight = _InFlight(uid, action, seq, now + timeout, token, tx)
        return [Send(frame)]

    # -- answers to our calls --------------------------------------------------------------------------

    def _result(self, res: rpc.ResultIn, now: float) -> list[Output]:
        f = self._in_flight
        if f is None or f.uid != res.uid:
            return []
        self._in_flight = None
        self._heartbeat_at = now + self.heartbeat_s
        p = res.payload
        if f.action == "BootNotification":
            interval = p.get("interval", 0)
            if p.get("status") == "Accepted":
                self.accepted = True
                if interval > 0:
                    self.heartbeat_s = float(interval)
                    self._heartbeat_at = now + self.heartbeat_s
                self.log.info("ocpp.booted", heartbeat_s=self.heartbeat_s, queued=len(self.outbox))
                self._queue.appendleft(self.d.status(self.connector, now) + (None,))
            else:
                self._boot_at = now + (interval if interval > 0 else BOOT_RETRY_S)
                self.log.warning("ocpp.boot_not_accepted", status=p.get("status"), retry_in_s=self._boot_at - now)
            return []
        if f.seq is not None:
            tx_id = self.d.csms_tx_id(p) if f.action == self.d.tx_start_action else None
            self.outbox.acknowledged(f.seq, transaction_id=tx_id)
            refused = self.d.token_status(p) not in (None, "Accepted")  # a transaction message's answer may
            if f.tx is not None and refused and self.settings.value("StopTransactionOnInvalidId"):  # refuse its token
                return self.remote.invalid_token(f.tx, now)
            return []
        if f.action == "Authorize" and f.token is not None:
            if self.d.token_status(p) == "Accepted":
                return self.remote.authorized(f.token, now)
            self.log.warning("ocpp.token_refused", token=f.token, by="csms")
        return []

    def _failed(self, uid: str, why: str, now: float) -> list[Output]:
        f = self._in_flight
        if f is None or f.uid != uid:
            return []
        self._in_flight = None
        self._folded.warning("ocpp.call_failed", key=f.action, action=f.action, why=why[:120])
        if f.action == "BootNotification":
            self._boot_at = now + BOOT_RETRY_S
        elif f.seq is not None:
            attempts = self.outbox.attempt(f.seq)
            if attempts >= int(self.settings.value("TransactionMessageAttempts")):
                self.log.error("ocpp.message_given_up", action=f.action, seq=f.seq, attempts=attempts)
                self.outbox.give_up(f.seq)
            else:
                self._retry_at = now + float(self.settings.value("TransactionMessageRetryInterval")) * attempts
        elif f.action == "Authorize" and f.token is not None:
            return [LocalStart(f.token)]
        return []
