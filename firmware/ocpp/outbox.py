"""OCPP's offline queue on disk: transaction messages and meter values, in order, none lost, none queued sent twice.

Energy never waits for the CSMS (OCPP 1.6 "transaction-related messages", 2.0.1 E "offline"). The core appends
each transaction-related message here *before* it counts it as sent (1.6: StartTransaction,
StopTransaction, MeterValues of a transaction; 2.0.1: TransactionEvent, MeterValues); the link
sends the head and acknowledges it when the CSMS answers. `append`, `acknowledged`, `attempt` and
`give_up` are on disk (fsync'd) when they return, so a CSMS restart or a kill -9 of the charge
point loses nothing.

Sent twice: an entry is acknowledged only after its answer, so after a kill -9 at most the one in
flight then is sent again (the queue cannot know whether the CSMS got it); 2.0.1 TransactionEvents
carry `seqNo`, by which a CSMS drops that duplicate. Nothing queued while offline is sent twice.

Transaction ids (1.6): the CSMS gives a transaction its id in StartTransaction's answer, which
the link passes to `acknowledged(seq, transaction_id=...)`: the binding of the charge point's own
key (`tx`, its session id) to that id is in the same durable record. `head()` fills
`transactionId` of the StopTransaction and MeterValues entries of that `tx`. The placeholder rule,
for a `tx` with no CSMS id when its entry reaches the head (its StartTransaction was given up,
acknowledged without an id, or lost to a damaged file): a StopTransaction is still sent (its
meter reading is what bills the session; the CSMS reconciles it by connector, idTag and time),
with `transactionId` `UNKNOWN_TRANSACTION_ID` (-1: the field is a required integer, and CSMSs
number their transactions from 1); a MeterValues is sent without `transactionId` (the field is
optional: the values count as the connector's). 2.0.1 needs none of this: the charge point names
its transactions, so its core appends MeterValues with `tx=None` (2.0.1's MeterValues has no
`transactionId` field) and its TransactionEvents as they are.

Bounded: at `max_entries`, the oldest meter values (1.6 and 2.0.1 MeterValues, TransactionEvent
Updated of trigger MeterValuePeriodic or MeterValueClock) are thinned, every other one of the
older half dropped, durably, counted and logged (folded); never a start, a stop or anything else,
nor the head (it may be in flight). If nothing can be thinned, `append` raises `OutboxFull`: the
core then logs it and stops reporting new sessions (the energy still flows).

The file: see `journal.py`. Replay drops a torn last record (a kill -9 mid-write) and stops at
the first damaged one with one log line naming the file and the offset; the damaged file is kept
beside it (`.damaged`) for a person, and the queue goes on with what came before the damage
(its sequence numbers skip past any the lost part could have held).
The file is rewritten with only the live entries and bindings (temporary file, fsync, rename,
fsync the directory) when the queue has emptied, or when it has grown past `compact_bytes` with
more than half of it history. A binding goes once its transaction's end (StopTransaction) was
answered and nothing of that transaction is queued any more.
"""

from __future__ import annotations

import fcntl
import os
import threading
from dataclasses import dataclass
from typing import Any

from evnet.durable import append_synced, replace_file
from evnet.logs import EventLogger, FoldedLog, event_logger
from evnet.records import HEADER, scan
from firmware.ocpp import journal
from firmware.ocpp.journal import (
    MAGIC,
    Acked,
    Added,
    Base,
    Dropped,
    GivenUp,
    JournalError,
    Record,
    TransactionId,
    Tried,
)
from firmware.ocpp.queue import UNKNOWN_TRANSACTION_ID, Entry, Kind, Live, Queue

__all__ = ["Entry", "Outbox", "OutboxError", "OutboxFull", "OutboxStats", "UNKNOWN_TRANSACTION_ID"]

COMPACT_EMPTY_BYTES = 4096  # an emptied queue whose file holds more history than this is rewritten
COMPACT_BYTES = 1024 * 1024
THIN_LOG_EVERY = 1000  # appends between two lines about thinning (folded by count: no clock here)


class OutboxError(Exception):
    """The queue's file cannot be opened, locked or written: nothing may rely on the call that raised it."""


class OutboxFull(Exception):  # noqa: N818 - reads as what it is: the queue is full
    """The queue holds `max_entries` entries and none of them is a meter value that could be thinned."""


@dataclass(frozen=True)
class OutboxStats:
    pending: int
    appended: int  # the counters run over the file's whole life, across restarts
    acknowledged: int
    given_up: int
    dropped: int
    bytes_on_disk: int


class Outbox:
    """The queue in the file at `path` (created with its directory if missing), replayed at once.

    `log`: the charge point's logger (`event_logger("ocpp", cp=...)`); one process at a time (a lock
    file beside it). Thread-safe: the core appends while the link sends the head.
    """

    def __init__(self, path: str, *, max_entries: int = 20_000, log: EventLogger | None = None,
                 compact_bytes: int = COMPACT_BYTES) -> None:
        if max_entries < 2:
            raise ValueError(f"max_entries must be at least 2, got {max_entries}")
        self.path = path
        self.max_entries = max_entries
        self.compact_bytes = compact_bytes
        self.log = (log or event_logger("ocpp")).bind(outbox=path)
        self._mutex = threading.Lock()
        self._fd = self._lock_fd = -1
        self._q = Queue()
        self._thin_log = FoldedLog(self.log, every=THIN_LOG_EVERY, monotonic=lambda: self._q.n.appended)
        try:
            os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
            self._lock_fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as exc:
            self.close()
            raise OutboxError(f"outbox {path}: {exc.strerror or exc}") from exc
        try:
            fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self.close()
            raise OutboxError(f"outbox {path} is in use by another process") from None
        try:
            self._open()
        except OSError as exc:
            self.close()
            raise OutboxError(f"outbox {path}: {exc.strerror or exc}") from exc

    # ------------------------------------------------------------ what the core and the link call

    def append(self, action: str, payload: dict[str, Any], *, tx: str | None = None) -> int:
        """Queue a message; its sequence number, once it is on disk. `OutboxFull`, `OutboxError`, `ValueError`."""
        journal.check_text(action, "action", journal.MAX_ACTION)
        if tx is not None:
            journal.check_text(tx, "tx", journal.MAX_TX)
        text = journal.payload_text(payload)
        with self._mutex:
            thinned: list[int] = []
            if len(self._q) >= self.max_entries:
                thinned = self._q.thinnable()
                if not thinned:
                    raise OutboxFull(f"outbox {self.path}: {len(self._q)} entries, none of them meter values")
            added = Added(self._q.n.next_seq, action, tx, text)
            self._write([Dropped(tuple(thinned)), added] if thinned else [added])
            if thinned:
                self._thin_log.warning("outbox.thinned", dropped=len(thinned), pending=len(self._q),
                                       dropped_total=self._q.n.dropped)
            return added.seq

    def head(self) -> Entry | None:
        """The oldest entry not yet acknowledged nor given up, ready to send (see the placeholder rule)."""
        with self._mutex:
            return self._q.wire()

    def acknowledged(self, seq: int, *, transaction_id: TransactionId | None = None) -> None:
        """The CSMS answered the head `seq`; a StartTransaction's answer binds its `tx` to `transaction_id`."""
        with self._mutex:
            live = self._head_or_raise(seq, "acknowledge")
            if transaction_id is not None:
                if live.kind is not Kind.START:
                    raise ValueError(f"a transaction id for {live.record.action} {seq}: only StartTransaction binds")
                transaction_id = journal.transaction_id(transaction_id)
            self._write([Acked(seq, transaction_id)])

    def attempt(self, seq: int) -> int:
        """One failed try of the head `seq` (TransactionMessageAttempts); how many there have been."""
        with self._mutex:
            self._head_or_raise(seq, "count a try of")
            self._write([Tried(seq)])
            return self._q.live[seq].record.attempts

    def give_up(self, seq: int) -> None:
        """Drop the head `seq` unsent after its tries: on disk, counted and logged, never silent."""
        with self._mutex:
            live = self._head_or_raise(seq, "give up")
            self._write([GivenUp(seq)])
            self.log.warning("outbox.given_up", seq=seq, action=live.record.action, tx=live.record.tx,
                             attempts=live.record.attempts, given_up_total=self._q.n.given_up)

    def bound(self, tx: str) -> TransactionId | None:
        """The CSMS's id of the charge point's transaction `tx`, once its StartTransaction was answered."""
        with self._mutex:
            return self._q.bindings.get(tx)

    def pending_meter_values(self) -> int:
        """How many queued entries are meter values (those the queue may thin)."""
        with self._mutex:
            return self._q.meters

    def stats(self) -> OutboxStats:
        with self._mutex:
            n = self._q.n
            return OutboxStats(len(self._q), n.appended, n.acknowledged, n.given_up, n.dropped, self._size)

    def __len__(self) -> int:
        with self._mutex:
            return len(self._q)

    def _head_or_raise(self, seq: int, what: str) -> Live:
        try:
            return self._q.head(seq)
        except JournalError as exc:
            raise ValueError(f"cannot {what} {seq}: {exc}; order is the contract") from None

    def close(self) -> None:
        for fd in (self._fd, self._lock_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._lock_fd = -1

    def __enter__(self) -> Outbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------ the file

    def _open(self) -> None:
        try:
            with open(self.path, "rb") as fh:
                data = fh.read()
        except FileNotFoundError:
            data = b""
        if len(data) < len(MAGIC) and MAGIC.startswith(data):  # new, or a crash before the first rename
            self._compact()
            return
        kept, damage = self._replay(data)
        if damage is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
            self._size = len(data)
            self._maybe_compact()
            return
        offset, problem, torn = damage
        if torn:
            self.log.info("outbox.torn_tail", offset=offset, dropped_bytes=len(data) - offset, kept=kept)
        else:
            aside = self._keep_aside(data)
            # Entries after the damage may have been reported; their numbers are never given again.
            self._q.n.next_seq += (len(data) - offset) // (HEADER.size + 1) + 1
            self.log.error("outbox.damaged", offset=offset, problem=problem, kept=kept,
                           lost_bytes=len(data) - offset, kept_aside=aside)
        self._compact()

    def _replay(self, data: bytes) -> tuple[int, tuple[int, str, bool] | None]:
        """Apply every record up to the first bad one: how many, and (offset, problem, torn) of that one."""
        if data[:len(MAGIC)] != MAGIC:
            return 0, (0, "not an OCPP outbox file (bad magic)", False)
        read = scan(data, len(MAGIC), None, journal.MAX_RECORD)
        for n, (offset, payload) in enumerate(read.frames):
            try:
                record = journal.decode(payload)
                if isinstance(record, Base):
                    if n:
                        raise JournalError("a base record after the first")
                    self._q = Queue(record)
                else:
                    self._q.apply(record, len(payload) + HEADER.size)
            except JournalError as exc:
                return n, (offset, f"{exc}"[:160], False)
        if read.damage is None:
            return len(read.frames), None
        return len(read.frames), (read.damage.offset, read.damage.problem, read.damage.end >= len(data))

    def _keep_aside(self, data: bytes) -> str:
        """Save the damaged file for a person (under the first free name): the queue is rewritten next."""
        for n in range(100):
            aside = f"{self.path}.damaged" + (f".{n}" if n else "")
            if not os.path.exists(aside):
                break
        replace_file(aside, data)
        return aside

    def _write(self, records: list[Record]) -> None:
        """Append `records` in one write and fsync, then apply them; `OutboxError` if the disk refused."""
        framed = [journal.encode(r) for r in records]
        data = b"".join(framed)
        try:
            append_synced(self._fd, data, self._size)
        except OSError as exc:
            raise OutboxError(f"outbox {self.path}: {exc.strerror or exc}") from exc
        self._size += len(data)
        for record, bytes_ in zip(records, framed, strict=True):
            self._q.apply(record, len(bytes_))
        if not self._q:
            self._thin_log.reset("outbox.thinned")
        try:
            self._maybe_compact()
        except OSError as exc:  # the records are on disk; the old file stands
            self.log.error("outbox.compact_failed", error=exc.strerror or str(exc))

    def _maybe_compact(self) -> None:
        if (not self._q and self._size > COMPACT_EMPTY_BYTES) or (
                self._size > self.compact_bytes and 2 * self._q.live_bytes < self._size):
            self._compact()

    def _compact(self) -> None:
        """Rewrite the file with only what is live: the counters, the bindings still needed, the entries."""
        parts = [MAGIC, journal.encode(self._q.base())]
        for live in self._q.live.values():
            framed = journal.encode(live.record)
            live.size = len(framed)
            parts.append(framed)
        data = b"".join(parts)
        replace_file(self.path, data)
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._size = len(data)
        self._q.live_bytes = sum(live.size for live in self._q.live.values())
        self.log.debug("outbox.compacted", bytes=self._size, pending=len(self._q))
