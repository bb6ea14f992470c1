"""The offline queue's state, changed only by the records of its file, whether replayed or just written: no I/O.

What the OCPP messages are to the queue (`kind_of`), the order rule (only the head is answered,
tried or given up), the 1.6 bindings of the charge point's transactions to the CSMS's ids and the
placeholder rule when there is none (`Queue.wire`), and which meter values thinning drops. The
rules themselves are explained in `outbox.py`, the file format in `journal.py`.
"""

from __future__ import annotations

import json
from collections import Counter, OrderedDict
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any

from firmware.ocpp.journal import Acked, Added, Base, Dropped, GivenUp, JournalError, Record, TransactionId, Tried

UNKNOWN_TRANSACTION_ID = -1
BINDINGS_KEPT = 10_000  # at most this many CSMS ids of transactions with nothing queued


class Kind(Enum):
    START = "start"  # 1.6 StartTransaction: its answer binds tx
    END = "end"  # 1.6 StopTransaction, 2.0.1 TransactionEvent Ended: its answer ends tx
    METER = "meter"  # may be thinned
    OTHER = "other"


CARRIES_CSMS_ID = frozenset({"StopTransaction", "MeterValues"})  # 1.6: the transactionId the CSMS gave
_METER_TRIGGERS = frozenset({"MeterValuePeriodic", "MeterValueClock"})


def kind_of(action: str, payload: dict[str, Any]) -> Kind:
    match action, payload.get("eventType"):
        case "StartTransaction", _:
            return Kind.START
        case ("StopTransaction", _) | ("TransactionEvent", "Ended"):
            return Kind.END
        case "MeterValues", _:
            return Kind.METER
        case "TransactionEvent", "Updated" if payload.get("triggerReason") in _METER_TRIGGERS:
            return Kind.METER
    return Kind.OTHER


@dataclass(frozen=True)
class Entry:
    """One queued message as it goes on the wire: `payload` is a fresh dict, with its CSMS transaction id."""

    seq: int
    action: str
    payload: dict[str, Any]
    tx: str | None
    attempts: int


@dataclass
class Counters:
    next_seq: int
    appended: int  # the counters run over the file's whole life, across restarts
    acknowledged: int
    given_up: int
    dropped: int


@dataclass
class Live:
    record: Added
    kind: Kind
    size: int  # bytes of its record on disk


class Queue:
    """The entries not yet answered (oldest first), the bindings, the counters; `apply` is the only change."""

    def __init__(self, base: Base | None = None) -> None:
        base = base or Base()
        self.n = Counters(base.next_seq, base.appended, base.acknowledged, base.given_up, base.dropped)
        self.bindings: dict[str, TransactionId] = dict(base.bindings)
        self.ended: set[str] = set(base.ended)  # answered ends: the binding goes with the last entry
        self.tx_live: Counter[str] = Counter()  # queued entries of each transaction
        self.live: OrderedDict[int, Live] = OrderedDict()
        self.last_added = 0  # entries are numbered in the order they were added
        self.meters = 0
        self.live_bytes = 0

    def __len__(self) -> int:
        return len(self.live)

    def wire(self) -> Entry | None:
        """The head as it goes on the wire: a fresh payload, its CSMS transaction id filled in (or the placeholder)."""
        if not self.live:
            return None
        added = next(iter(self.live.values())).record
        payload = json.loads(added.payload)
        if added.tx is not None and added.action in CARRIES_CSMS_ID:
            bound = self.bindings.get(added.tx)
            if bound is not None:
                payload["transactionId"] = bound
            elif added.action == "StopTransaction":
                payload["transactionId"] = UNKNOWN_TRANSACTION_ID
            else:
                payload.pop("transactionId", None)
        return Entry(added.seq, added.action, payload, added.tx, added.attempts)

    def base(self) -> Base:
        """The first record of a rewritten file; the live entries follow it and count themselves again."""
        n = self.n
        self.ended &= set(self.tx_live)
        return Base(n.next_seq, n.appended - len(self.live), n.acknowledged, n.given_up, n.dropped,
                    dict(self.bindings), tuple(sorted(self.ended)))

    def _remove(self, seq: int) -> Live:
        live = self.live.pop(seq)
        self.meters -= live.kind is Kind.METER
        self.live_bytes -= live.size
        if (tx := live.record.tx) is not None:
            self.tx_live[tx] -= 1
            if not self.tx_live[tx]:
                del self.tx_live[tx]
                if tx in self.ended:
                    self._forget(tx)
        return live

    def head(self, seq: int) -> Live:
        """The head, if it is `seq`; `JournalError` if not (order is the contract)."""
        if not self.live or next(iter(self.live)) != seq:
            raise JournalError(f"entry {seq} is not the head ({next(iter(self.live), None)})")
        return self.live[seq]

    def apply(self, record: Record, size: int) -> None:
        """Change the state by `record`; `JournalError` (nothing changed) if it does not fit the state."""
        match record:
            case Added(seq, action, _, payload):
                if seq <= self.last_added:
                    raise JournalError(f"entry {seq} added after {self.last_added}")
                kind = kind_of(action, json.loads(payload))
                self.live[seq] = Live(record, kind, size)
                if record.tx is not None:
                    self.tx_live[record.tx] += 1
                self.meters += kind is Kind.METER
                self.live_bytes += size
                self.last_added = seq
                self.n.next_seq = max(self.n.next_seq, seq + 1)
                self.n.appended += 1
            case Acked(seq, transaction_id):
                live = self.head(seq)
                if transaction_id is not None and live.kind is not Kind.START:
                    raise JournalError(f"a transaction id for {live.record.action} {seq}")
                self._settle(self._remove(seq), transaction_id)
                self.n.acknowledged += 1
            case GivenUp(seq):
                self.head(seq)
                self._settle(self._remove(seq), None)
                self.n.given_up += 1
            case Tried(seq):
                live = self.head(seq)
                live.record = replace(live.record, attempts=live.record.attempts + 1)
            case Dropped(seqs):
                head = next(iter(self.live), None)
                if len(set(seqs)) != len(seqs) or any(s == head or s not in self.live
                                                      or self.live[s].kind is not Kind.METER for s in seqs):
                    raise JournalError(f"dropping entries that are not queued meter values: {list(seqs)[:5]}")
                for s in seqs:
                    self._remove(s)
                self.n.dropped += len(seqs)
            case Base():
                raise JournalError("a base record after the first")

    def _settle(self, live: Live, transaction_id: TransactionId | None) -> None:
        tx = live.record.tx
        if tx is None:
            return
        if live.kind is Kind.START and transaction_id is not None:
            self.bindings[tx] = transaction_id
            self.ended.discard(tx)
            if len(self.bindings) > BINDINGS_KEPT:  # starts whose stop never came: keep the newest
                old = next((t for t in self.bindings if t not in self.tx_live), None)
                if old is not None:
                    self._forget(old)
        elif live.kind is Kind.END:
            self.ended.add(tx)
            if tx not in self.tx_live:
                self._forget(tx)

    def _forget(self, tx: str) -> None:
        """The transaction `tx` is over and none of its entries is queued: its CSMS id is needed no more."""
        self.bindings.pop(tx, None)
        self.ended.discard(tx)

    def thinnable(self) -> list[int]:
        """Every other one of the older half of the queued meter values (never the head); one if only one."""
        meters = [seq for seq, live in self.live.items() if live.kind is Kind.METER]
        if meters and meters[0] == next(iter(self.live)):
            meters = meters[1:]
        if len(meters) <= 1:
            return meters
        return meters[:max(2, (len(meters) + 1) // 2)][1::2]
