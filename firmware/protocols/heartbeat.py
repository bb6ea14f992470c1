"""The heartbeat protocol between the monitor watchdog and the engine, sans-I/O, both sides.

The monitor sends a numbered heartbeat every `interval_s`; the engine answers each one
with the same number and its current status (`AVAILABLE`, `CHARGING`, ...). An answer
that does not arrive within `reply_timeout_s` is a miss; `misses` misses in a row mean
the engine is dead or hung and the monitor must act (cut the safety line, report
`FAULTED`). The first good answer after that clears the fault.

The engine answers from its control loop, so a loop that blocks stops the answers just
as a dead process does: that is the point of answering there and not on a thread.

A planned stop (SIGTERM, systemctl stop) is said first: once its contactor is open the engine
sends a farewell, and the silence after it is no fault (`Health.STOPPED`); an unannounced
silence still is. The next answer (a restarted engine) makes it healthy again.

Payloads (carried inside the serial link's `<STX> payload <ETX> <LRC>` frames) are
ASCII, so they never contain STX or ETX:

    monitor -> engine   b"HB 17"
    engine  -> monitor  b"HBA 17 CHARGING"
    engine  -> monitor  b"BYE SHUTDOWN"       (a planned stop, its contactor already open)

Neither side reads a clock, sleeps or does I/O: callers pass `now` (seconds of a
monotonic, real-time clock) and frames in, and get payloads to send and actions out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum

HEARTBEAT = b"HB"
ANSWER = b"HBA"
FAREWELL = b"BYE"
STATUS_RE = re.compile(rb"^[A-Z][A-Z0-9_]{0,31}$")
# The status of an engine whose own contactor cannot stop the energy (welded shut): FAULTED, and the
# monitor is to cut the safety line for as long as the engine answers with it.
SAFETY_CUT = "FAULTED_SAFETY_CUT"
MAX_SEQ = 2**31 - 1
REPLY_FRACTION = 0.4  # default reply timeout, as a fraction of the heartbeat interval


class HeartbeatError(ValueError):
    """A payload that is not a well-formed heartbeat or answer; the text says what is wrong."""


def encode_heartbeat(seq: int) -> bytes:
    return b"%s %d" % (HEARTBEAT, seq)


def _token(text: str, what: str) -> bytes:
    raw = text.encode("ascii", "replace")
    if not STATUS_RE.match(raw):
        raise HeartbeatError(f"{what} {text!r} is not an upper-case token (A-Z, 0-9, _; at most 32)")
    return raw


def encode_answer(seq: int, status: str) -> bytes:
    return b"%s %d %s" % (ANSWER, seq, _token(status, "status"))


def encode_farewell(reason: str) -> bytes:
    """What an engine says when it stops on purpose (`reason`: an upper-case token, e.g. SHUTDOWN)."""
    return b"%s %s" % (FAREWELL, _token(reason, "reason"))


def _seq(word: bytes, payload: bytes) -> int:
    if not word.isdigit() or len(word) > 10 or int(word) > MAX_SEQ:
        raise HeartbeatError(f"sequence number {word!r} in {payload!r} is not an integer 0..{MAX_SEQ}")
    return int(word)


def decode_heartbeat(payload: bytes) -> int:
    """The sequence number of a heartbeat `HB <seq>`."""
    words = payload.split(b" ")
    if len(words) != 2 or words[0] != HEARTBEAT:
        raise HeartbeatError(f"expected 'HB <seq>', got {payload[:40]!r}")
    return _seq(words[1], payload)


def decode_answer(payload: bytes) -> tuple[int, str]:
    """The sequence number and engine status of an answer `HBA <seq> <STATUS>`."""
    words = payload.split(b" ")
    if len(words) != 3 or words[0] != ANSWER:
        raise HeartbeatError(f"expected 'HBA <seq> <STATUS>', got {payload[:40]!r}")
    if not STATUS_RE.match(words[2]):
        raise HeartbeatError(f"status {words[2][:40]!r} in {payload[:40]!r} is not an upper-case token")
    return _seq(words[1], payload), words[2].decode("ascii")


def decode_farewell(payload: bytes) -> str:
    """The reason of a farewell `BYE <REASON>`."""
    words = payload.split(b" ")
    if len(words) != 2 or words[0] != FAREWELL or not STATUS_RE.match(words[1]):
        raise HeartbeatError(f"expected 'BYE <REASON>', got {payload[:40]!r}")
    return words[1].decode("ascii")


# ---------------------------------------------------------------- the engine side


class HeartbeatResponder:
    """The engine's side: answer each heartbeat with its number and the engine's status.

    Call `answer(payload, now, status)` from the control loop for every frame the serial
    link delivered; send back what it returns (None: nothing to send). `monitor_silent`
    tells the engine when it last heard its monitor, should it want to log that.
    """

    def __init__(self) -> None:
        self.last_seq: int | None = None
        self.last_heard: float | None = None
        self.answered = 0
        self.rejected = 0
        self.last_error: str | None = None

    def answer(self, payload: bytes, now: float, status: str) -> bytes | None:
        """The answer to `payload`, or None (and a counted rejection) if it is not a heartbeat."""
        try:
            seq = decode_heartbeat(payload)
        except HeartbeatError as exc:
            self.rejected += 1
            self.last_error = str(exc)
            return None
        self.last_seq, self.last_heard = seq, now
        self.answered += 1
        try:
            return encode_answer(seq, status)
        except HeartbeatError as exc:  # never let a bad status string break the engine's loop
            self.last_error = str(exc)
            return encode_answer(seq, "UNKNOWN")

    def farewell(self, reason: str = "SHUTDOWN") -> bytes:
        """What to send, once the contactor is open, when the engine stops on purpose."""
        return encode_farewell(reason)

    def monitor_silent(self, now: float, after_s: float) -> bool:
        """True when no heartbeat came for `after_s` seconds (or none ever)."""
        return self.last_heard is None or now - self.last_heard >= after_s


# ---------------------------------------------------------------- the monitor side


class Health(Enum):
    STARTING = "starting"  # no answer yet since the monitor started: safety line still cut
    HEALTHY = "healthy"
    FAULTED = "faulted"
    STOPPED = "stopped"  # the engine said it stops (a planned stop): silence is no fault, the line stays cut


@dataclass(frozen=True)
class Send:
    """Write this payload to the serial link."""

    payload: bytes


@dataclass(frozen=True)
class EngineHealthy:
    """The engine answers: close (restore) the safety line; `recovered` if it was faulted."""

    status: str
    recovered: bool


@dataclass(frozen=True)
class EngineLost:
    """`misses` heartbeats in a row went unanswered: cut the safety line, report FAULTED."""

    misses: int
    last_status: str | None
    last_answer_at: float | None


@dataclass(frozen=True)
class EngineStopped:
    """The engine announced a planned stop (its contactor is open): cut the safety line, report no fault."""

    reason: str
    last_status: str | None


@dataclass(frozen=True)
class StatusChanged:
    """A healthy engine now reports a different status."""

    status: str


Action = Send | EngineHealthy | EngineLost | EngineStopped | StatusChanged


class HeartbeatMonitor:
    """The monitor's side: numbered heartbeats, a reply deadline for each, a miss count.

    Drive it with `tick(now)` at (or after) `next_deadline()` and `receive(payload, now)`
    for every frame read from the serial link. Only an answer to the heartbeat still
    awaited counts: late answers to older numbers (an engine draining its input after a
    SIGCONT) are counted as stale and ignored, since they say nothing about now.

    Worst-case detection time after the engine dies is about
    `misses * interval_s + reply_timeout_s` (2.4 s with 1 s, 2 misses and the default 0.4 s timeout,
    which leaves a slow engine loop 400 ms to answer).

    While STARTING (no answer yet), misses raise `EngineLost` only once `startup_grace_s`
    has passed, so an engine that is still importing is not reported FAULTED; the safety
    line is cut all that time anyway, since it is closed only by `EngineHealthy`.
    """

    def __init__(self, interval_s: float, misses: int, reply_timeout_s: float | None = None,
                 startup_grace_s: float = 0.0) -> None:
        if not interval_s > 0:
            raise ValueError(f"heartbeat interval must be > 0 s, got {interval_s!r}")
        if misses < 1:
            raise ValueError(f"misses must be >= 1, got {misses!r}")
        timeout = interval_s * REPLY_FRACTION if reply_timeout_s is None else reply_timeout_s
        if not 0 < timeout <= interval_s:
            raise ValueError(f"reply timeout must be in (0, interval {interval_s}] s, got {timeout!r}")
        if startup_grace_s < 0:
            raise ValueError(f"startup grace must be >= 0 s, got {startup_grace_s!r}")
        self.interval_s = interval_s
        self.max_misses = misses
        self.reply_timeout_s = timeout
        self.startup_grace_s = startup_grace_s
        self.health = Health.STARTING
        self.misses = 0
        self.engine_status: str | None = None
        self.last_answer_at: float | None = None
        self.seq = 0
        self.sent = self.answered = self.stale = self.rejected = 0
        self.last_error: str | None = None
        self._started_at: float | None = None
        self._next_send: float | None = None
        self._awaiting: tuple[int, float] | None = None  # (seq, reply deadline)

    @property
    def faulted(self) -> bool:
        return self.health is Health.FAULTED

    def start(self, now: float) -> list[Action]:
        """Begin: the first heartbeat goes out at once."""
        self._started_at = now
        self._next_send = now
        return self.tick(now)

    def next_deadline(self) -> float | None:
        """When `tick` must next be called (None before `start`)."""
        if self._next_send is None:
            return None
        if self._awaiting is not None:
            return min(self._next_send, self._awaiting[1])
        return self._next_send

    def tick(self, now: float) -> list[Action]:
        """Expire the awaited answer and send the next heartbeat when their times have come."""
        if self._next_send is None:
            raise RuntimeError("HeartbeatMonitor.tick before start")
        actions: list[Action] = []
        if self._awaiting is not None and now >= self._awaiting[1]:
            self._awaiting = None
            actions += self._miss(now)
        if now >= self._next_send:
            if self._awaiting is not None:  # reply_timeout == interval: expire before resending
                self._awaiting = None
                actions += self._miss(now)
            self.seq = self.seq + 1 if self.seq < MAX_SEQ else 1
            self.sent += 1
            self._awaiting = (self.seq, now + self.reply_timeout_s)
            # Keep the cadence, but never burst to catch up after the monitor itself was late.
            self._next_send += self.interval_s
            if self._next_send <= now:
                self._next_send = now + self.interval_s
            actions.append(Send(encode_heartbeat(self.seq)))
        return actions

    def _miss(self, now: float) -> list[Action]:
        self.misses += 1
        if self.health in (Health.FAULTED, Health.STOPPED) or self.misses < self.max_misses:
            return []
        started = now if self._started_at is None else self._started_at
        if self.health is Health.STARTING and now - started < self.startup_grace_s:
            return []
        self.health = Health.FAULTED
        return [EngineLost(self.misses, self.engine_status, self.last_answer_at)]

    def receive(self, payload: bytes, now: float) -> list[Action]:
        """Take one frame from the engine: an answer, or the farewell of a planned stop."""
        try:
            if payload.startswith(FAREWELL + b" "):
                return self._farewell(decode_farewell(payload))
            seq, status = decode_answer(payload)
        except HeartbeatError as exc:
            self.rejected += 1
            self.last_error = str(exc)
            return []
        if self._awaiting is None or seq != self._awaiting[0] or now > self._awaiting[1]:
            self.stale += 1
            return []
        self._awaiting = None
        self.answered += 1
        self.misses = 0
        self.last_answer_at = now
        previous, self.engine_status = self.engine_status, status
        if self.health is not Health.HEALTHY:
            recovered = self.health is Health.FAULTED
            self.health = Health.HEALTHY
            return [EngineHealthy(status, recovered)]
        if status != previous:
            return [StatusChanged(status)]
        return []

    def _farewell(self, reason: str) -> list[Action]:
        if self.health is Health.STOPPED:
            return []
        self.health, self.misses, self._awaiting = Health.STOPPED, 0, None
        return [EngineStopped(reason, self.engine_status)]
