"""Fuzz OCPP's offline queue as found on disk (torn, garbled, overwritten, not ours at all): opening it never
raises, and every intact record before the damage is kept (the queue after replay is the queue as it was
when the last whole record before the damage was written)."""

from __future__ import annotations

import os
import tempfile
from unittest import mock

from hypothesis import given, settings
from hypothesis import strategies as st

from evnet.records import frame
from firmware.ocpp import outbox as outbox_module
from firmware.ocpp.journal import MAGIC, Added, Base, encode
from firmware.ocpp.outbox import Outbox

PAYLOADS = {"StartTransaction": {"connectorId": 1, "idTag": "t", "meterStart": 0, "timestamp": "2026-01-01T00:00:00Z"},
            "MeterValues": {"connectorId": 1, "meterValue": []},
            "StopTransaction": {"meterStop": 5, "timestamp": "2026-01-01T01:00:00Z"}}
OPS = st.lists(st.one_of(
    st.tuples(st.just("append"), st.sampled_from(sorted(PAYLOADS)), st.sampled_from(["s1", "s2", None])),
    st.tuples(st.sampled_from(["ack", "try", "giveup"]), st.integers(1, 99), st.none())), min_size=1, max_size=25)


class Model:
    """What the queue should hold: entries [seq, action, tx, attempts] and the bindings, by the documented rules."""

    def __init__(self) -> None:
        self.entries: list[list] = []
        self.bindings: dict[str, int] = {}
        self.ended: set[str] = set()
        self.next = 1

    def settle(self, action: str, tx: str | None, tid: int | None) -> None:
        if tx is None:
            return
        if action == "StartTransaction" and tid is not None:
            self.bindings[tx] = tid
            self.ended.discard(tx)
        elif action == "StopTransaction":
            self.ended.add(tx)
        for t in list(self.ended):
            if not any(e[2] == t for e in self.entries):
                self.bindings.pop(t, None)
                self.ended.discard(t)

    def view(self) -> tuple:
        return [tuple(e) for e in self.entries], dict(self.bindings)


def run(box: Outbox, model: Model, op: tuple) -> None:
    """One operation on both; the model follows only what the queue accepted."""
    verb, arg, tx = op
    head = box.head()
    if verb == "append":
        seq = box.append(arg, PAYLOADS[arg], tx=tx)
        assert seq == model.next
        model.entries.append([seq, arg, tx, 0])
        model.next += 1
    elif head is not None:
        if verb == "try":
            box.attempt(head.seq)
            model.entries[0][3] += 1
        else:
            tid = arg if verb == "ack" and head.action == "StartTransaction" and arg % 2 else None
            (box.acknowledged(head.seq, transaction_id=tid) if verb == "ack" else box.give_up(head.seq))
            model.entries.pop(0)
            model.settle(head.action, head.tx, tid)


def observed(box: Outbox, txs: tuple = ("s1", "s2")) -> tuple:
    bindings = {tx: box.bound(tx) for tx in txs if box.bound(tx) is not None}
    entries = []
    while (head := box.head()) is not None:
        entries.append((head.seq, head.action, head.tx, head.attempts))
        box.acknowledged(head.seq)
    return entries, bindings


@settings(max_examples=60, deadline=None)
@given(OPS, st.data())
def test_damage_never_loses_an_intact_record_before_it(ops: list[tuple], data: st.DataObject) -> None:
    with tempfile.TemporaryDirectory() as d, mock.patch.object(outbox_module, "COMPACT_EMPTY_BYTES", 1 << 30):
        path = os.path.join(d, "outbox")
        model = Model()
        with Outbox(path, compact_bytes=1 << 30) as box:
            views, ends = [model.view()], [os.path.getsize(path)]  # after each whole record
            for op in ops:
                size = os.path.getsize(path)
                run(box, model, op)
                if os.path.getsize(path) != size:
                    views.append(model.view())
                    ends.append(os.path.getsize(path))
        with open(path, "rb") as fh:
            whole = fh.read()
        how = data.draw(st.sampled_from(["truncate", "flip", "garbage", "zeros"]))
        at = data.draw(st.integers(0, len(whole) - 1))
        match how:
            case "truncate":
                damaged = whole[:at]
            case "flip":
                damaged = whole[:at] + bytes([whole[at] ^ data.draw(st.integers(1, 255))]) + whole[at + 1:]
            case "garbage":
                at = len(whole)
                damaged = whole + data.draw(st.binary(min_size=1, max_size=40))
            case "zeros":
                damaged = whole[:at] + bytes(len(whole) - at)
        with open(path, "wb") as fh:
            fh.write(damaged)
        # damage inside the magic or the first base record: the empty queue of views[0]
        expected = views[max((i for i, end in enumerate(ends) if end <= at), default=0)]
        with Outbox(path) as box:
            assert observed(box) == expected


NEAR_VALID = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda body, tail: MAGIC + encode(Base()) + frame(body) + tail, st.binary(min_size=1, max_size=200),
              st.binary(max_size=40)),
    st.builds(lambda seq, action, payload: MAGIC + encode(Added(seq, action, None, payload)),
              st.integers(1, 5), st.sampled_from(["MeterValues", "StartTransaction", "x\n"]),
              st.sampled_from([b"{}", b"[]", b"{", b'{"a":NaN}', b"1" * 50, b'{"transactionId":1}'])),
    st.builds(lambda body: MAGIC + frame(body), st.sampled_from([
        b'{"t":"ack","seq":1}', b'{"t":"base","next":0}', b'{"t":"drop","seqs":[]}', b'{"t":"nope"}',
        b'{"t":"base","next":1,"appended":0,"acked":0,"given_up":0,"dropped":0,"bindings":{"a":true},"ended":[]}',
        b'[' * 5000 + b']' * 5000])),
)


@settings(max_examples=200, deadline=None)
@given(NEAR_VALID)
def test_any_file_opens_and_the_queue_works_after_it(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "outbox")
        with open(path, "wb") as fh:
            fh.write(content)
        with Outbox(path) as box:
            seq = box.append("MeterValues", PAYLOADS["MeterValues"])
            assert len(box) >= 1
        with Outbox(path) as box:
            assert observed(box)[0][-1][0] == seq
