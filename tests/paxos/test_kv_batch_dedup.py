"""The pieces under the core: the slot value codec, the key-value machine, exactly-once application."""

from __future__ import annotations

import json

import pytest

from firmware.paxos.core import kv
from firmware.paxos.core.batch import NOOP, BatchError, Command, Stamp, decode_batch, encode_batch
from firmware.paxos.core.context import Context
from firmware.paxos.core.dedup import Deduplicated

STAMP = Stamp(3, "b", 812_345)
CTX = Context("c1", False, (3, "b"), 812_345)


def test_a_batch_round_trips_and_a_noop_is_empty() -> None:
    batch = [Command("c1", 1, kv.put("k", "v")), Command("clé", 2**40, b"", keyed=False), Command("", 0, b"\x00\xff")]
    assert decode_batch(encode_batch(STAMP, batch)) == (STAMP, batch)
    assert encode_batch(STAMP, []) != NOOP and decode_batch(NOOP) == (None, [])
    assert encode_batch(STAMP, batch) == encode_batch(STAMP, list(batch))  # deterministic


ONE = encode_batch(STAMP, [Command("c", 1, b"abc")])
HEAD = len(encode_batch(STAMP, []))


@pytest.mark.parametrize("bad", [b"\x00", ONE[:HEAD - 5], ONE[:-1], ONE + b"x", ONE[:HEAD] + b"\x01\x00\x02\xff\xfe",
                                 ONE[:HEAD] + b"\x02" + ONE[HEAD + 1:],
                                 ONE[:HEAD - 12] + (2**62 + 1).to_bytes(8, "big") + ONE[HEAD - 4:]])
def test_a_malformed_batch_is_an_error(bad: bytes) -> None:
    with pytest.raises(BatchError):
        decode_batch(bad)


def test_the_kv_machine_answers_put_get_cas() -> None:
    m = kv.KVMachine()
    answers = [json.loads(m.apply(c, CTX)) for c in (kv.get("k"), kv.cas("k", None, "a"), kv.cas("k", None, "b"),
                                                kv.put("k", {"n": 1}), kv.get("k"), kv.cas("k", {"n": 1}, "c"))]
    assert answers == [None, True, False, "ok", {"n": 1}, True]
    copy = kv.KVMachine()
    copy.restore(m.snapshot())
    assert copy.data == {"k": "c"}


@pytest.mark.parametrize("bad", [b"not json", b'{"op": "put"}', b'{"op": "drop", "key": "k"}',
                                 b'{"op": "get", "key": 1}'])
def test_a_malformed_command_changes_nothing_and_says_why(bad: bytes) -> None:
    m = kv.KVMachine()
    assert "error" in json.loads(m.apply(bad, CTX)) and m.data == {}


def test_a_request_is_applied_once_and_the_table_survives_a_snapshot() -> None:
    d = Deduplicated(kv.KVMachine())
    assert d.apply(Command("c1", 1, kv.cas("k", None, 1)), STAMP) == (b"true", True)
    assert d.apply(Command("c1", 1, kv.cas("k", None, 1)), STAMP) == (b"true", False)  # the first answer
    assert d.apply(Command("c1", 2, kv.put("k", 2)), STAMP) == (b'"ok"', True)
    assert d.apply(Command("c1", 1, kv.cas("k", None, 1)), STAMP)[1] is False  # stale: never applied
    restored = Deduplicated(kv.KVMachine())
    restored.restore(d.snapshot())
    assert restored.cached("c1", 2) == b'"ok"' and restored.machine.data == {"k": 2}
    assert restored.apply(Command("c1", 2, kv.put("k", 3)), STAMP) == (b'"ok"', False)


class Recorder(kv.KVMachine):
    """The key-value machine, noting the context of each command and forgetting whom it is told to."""

    def __init__(self) -> None:
        super().__init__()
        self.contexts: list[Context] = []
        self.forget: tuple[str, ...] = ()

    def apply(self, command: bytes, ctx: Context) -> bytes:
        self.contexts.append(ctx)
        return super().apply(command, ctx)

    def forgotten(self) -> tuple[str, ...]:
        return self.forget


def test_the_machine_is_told_the_stamp_and_whether_the_site_key_vouched_and_forgets_with_it() -> None:
    machine = Recorder()
    d = Deduplicated(machine)
    d.apply(Command("a", 1, kv.put("k", 1)), STAMP)
    d.apply(Command("app", 1, kv.put("k", 2), keyed=False), Stamp(4, "a", 5))
    assert machine.contexts == [Context("a", True, (3, "b"), 812_345), Context("app", False, (4, "a"), 5)]
    machine.forget = ("app", "a")
    d.apply(Command("a", 2, kv.put("k", 3)), STAMP)  # forgets app's entry (and never the sender's own)
    assert d.cached("app", 1) is None and d.cached("a", 2) == b'"ok"'


def test_every_message_type_is_registered_by_name_and_carries_site_and_sender() -> None:
    import dataclasses

    from firmware.paxos.core import messages

    assert len(messages.MESSAGE_TYPES) == 17
    for name, cls in messages.MESSAGE_TYPES.items():
        fields = [f.name for f in dataclasses.fields(cls)]
        assert cls.__name__ == name and fields[:2] == ["site", "sender"], name
