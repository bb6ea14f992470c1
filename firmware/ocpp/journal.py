"""The offline queue's file: an 8-byte magic, then records framed by `evnet.records` (length, CRC32).

Each record is one ASCII JSON object, `t` naming its kind:
- `base`: the first record of a rewritten file: the next sequence number, the counters and the
  live bindings (charge point transaction key -> CSMS transaction id; those of transactions that
  ended with entries still queued are listed in `ended`), so none of them restarts;
- `add`: an entry (sequence number, action, the charge point's transaction key, failed tries so
  far, the OCPP payload as wire JSON);
- `ack`: the CSMS answered the head; for a StartTransaction with the CSMS's transaction id;
- `try`: one failed try of the head; `giveup`: the head was given up (TransactionMessageAttempts);
- `drop`: entries thinned away when the queue was full (meter values only).

This module only turns records into bytes and back; `decode` distrusts its input (a file is a
boundary) and raises `JournalError` for anything that is not a record it could have written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from evnet.records import frame

MAGIC = b"EVOCPPQ1"
MAX_RECORD = 4 * 1024 * 1024  # a base record with thousands of bindings; an entry is far smaller
MAX_PAYLOAD = 64 * 1024  # one OCPP message; a StopTransaction with its transactionData is a few kB
MAX_ACTION = 64
MAX_TX = 128
MAX_ID = 64  # a CSMS transaction id given as a string (2.0.1 allows 36 characters)
MAX_SEQ = 2**63 - 1
MAX_BINDINGS = 100_000


class JournalError(ValueError):
    """A record that is not one this queue could have written."""


TransactionId = int | str


@dataclass(frozen=True)
class Base:
    next_seq: int = 1
    appended: int = 0
    acknowledged: int = 0
    given_up: int = 0
    dropped: int = 0
    bindings: dict[str, TransactionId] = field(default_factory=dict)
    ended: tuple[str, ...] = ()  # bound transactions whose end was answered while entries of theirs were queued


@dataclass(frozen=True)
class Added:
    seq: int
    action: str
    tx: str | None
    payload: bytes  # the payload's JSON text, as `payload_text` makes it
    attempts: int = 0


@dataclass(frozen=True)
class Acked:
    seq: int
    transaction_id: TransactionId | None = None


@dataclass(frozen=True)
class Tried:
    seq: int


@dataclass(frozen=True)
class GivenUp:
    seq: int


@dataclass(frozen=True)
class Dropped:
    seqs: tuple[int, ...]


Record = Base | Added | Acked | Tried | GivenUp | Dropped


def _dumps(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=True, allow_nan=False).encode("ascii")


def payload_text(payload: dict[str, object]) -> bytes:
    """The payload as compact ASCII JSON; `ValueError` if it is not JSON or is too big to queue."""
    if not isinstance(payload, dict):
        raise ValueError(f"an OCPP payload is a JSON object, got {type(payload).__name__}")
    try:
        text = _dumps(payload)
    except (TypeError, ValueError, RecursionError) as exc:
        raise ValueError(f"the payload is not JSON: {exc}"[:160]) from None
    if len(text) > MAX_PAYLOAD:
        raise ValueError(f"a payload of {len(text)} bytes (at most {MAX_PAYLOAD})")
    return text


def encode(record: Record) -> bytes:
    """The framed bytes of `record`."""
    match record:
        case Base():
            body = _dumps({"t": "base", "next": record.next_seq, "appended": record.appended,
                           "acked": record.acknowledged, "given_up": record.given_up,
                           "dropped": record.dropped, "bindings": record.bindings, "ended": list(record.ended)})
        case Added(seq, action, tx, payload, attempts):
            head = _dumps({"t": "add", "seq": seq, "action": action, "tx": tx, "n": attempts})
            body = head[:-1] + b',"p":' + payload + b"}"
        case Acked(seq, transaction_id):
            body = _dumps({"t": "ack", "seq": seq, **({} if transaction_id is None else {"id": transaction_id})})
        case Tried(seq):
            body = _dumps({"t": "try", "seq": seq})
        case GivenUp(seq):
            body = _dumps({"t": "giveup", "seq": seq})
        case Dropped(seqs):
            body = _dumps({"t": "drop", "seqs": list(seqs)})
    return frame(body)


# ---------------------------------------------------------------- decoding (distrusting)

def _count(body: dict[str, object], key: str, low: int = 0) -> int:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_SEQ:
        raise JournalError(f"{key}: expected an integer {low}..{MAX_SEQ}, got {str(value)[:40]!r}")
    return value


def check_text(value: object, what: str, limit: int) -> str:
    """`value` if it is 1 to `limit` printable characters; `JournalError` (a `ValueError`) otherwise."""
    if not isinstance(value, str) or not 0 < len(value) <= limit or not value.isprintable():
        raise JournalError(f"{what}: expected 1-{limit} printable characters, got {str(value)[:40]!r}")
    return value


def transaction_id(value: object, what: str = "transaction id") -> TransactionId:
    """A CSMS transaction id: an integer (1.6) or a short printable string; `JournalError` otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and -MAX_SEQ <= value <= MAX_SEQ:
        return value
    if isinstance(value, str):
        return check_text(value, what, MAX_ID)
    raise JournalError(f"{what}: expected an integer or a string, got {str(value)[:40]!r}")


def _bindings(value: object) -> dict[str, TransactionId]:
    if not isinstance(value, dict) or len(value) > MAX_BINDINGS:
        raise JournalError(f"bindings: expected an object of at most {MAX_BINDINGS} entries")
    return {check_text(tx, "binding key", MAX_TX): transaction_id(tid, f"binding of {tx}") for tx, tid in value.items()}


def _ended(value: object) -> tuple[str, ...]:
    if not isinstance(value, list) or len(value) > MAX_BINDINGS:
        raise JournalError(f"ended: expected a list of at most {MAX_BINDINGS} transactions")
    return tuple(check_text(tx, "ended", MAX_TX) for tx in value)


def decode(data: bytes) -> Record:
    """The record in one frame's payload; `JournalError` says what is wrong with it."""
    if len(data) > MAX_RECORD:
        raise JournalError(f"a record of {len(data)} bytes (at most {MAX_RECORD})")
    try:
        body = json.loads(data.decode("ascii"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise JournalError(f"not ASCII JSON: {exc}"[:120]) from None
    if not isinstance(body, dict):
        raise JournalError(f"expected a JSON object, got {type(body).__name__}")
    match body.get("t"):
        case "add":
            tx = body.get("tx")
            try:
                payload = payload_text(body.get("p"))  # type: ignore[arg-type]
            except ValueError as exc:
                raise JournalError(str(exc)) from None
            return Added(_count(body, "seq", 1), check_text(body.get("action"), "action", MAX_ACTION),
                         None if tx is None else check_text(tx, "tx", MAX_TX), payload, _count(body, "n"))
        case "ack":
            tid = body.get("id")
            return Acked(_count(body, "seq", 1), None if tid is None else transaction_id(tid))
        case "try":
            return Tried(_count(body, "seq", 1))
        case "giveup":
            return GivenUp(_count(body, "seq", 1))
        case "drop":
            seqs = body.get("seqs")
            if not isinstance(seqs, list) or not seqs:
                raise JournalError("drop: expected a non-empty list of sequence numbers")
            return Dropped(tuple(_count({"seq": s}, "seq", 1) for s in seqs))
        case "base":
            return Base(_count(body, "next", 1), _count(body, "appended"), _count(body, "acked"),
                        _count(body, "given_up"), _count(body, "dropped"), _bindings(body.get("bindings")),
                        _ended(body.get("ended")))
    raise JournalError(f"unknown record type {str(body.get('t'))[:40]!r}")
