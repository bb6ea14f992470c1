"""The pieces under the core: the slot value codec, the key-value machine, exactly-once application."""

from __future__ import annotations

import json

import pytest

from firmware.paxos import kv
from firmware.paxos.batch import NOOP, BatchError, Command, decode_batch, encode_batch
from firmware.paxos.dedup import Deduplicated


def test_a_batch_round_trips_and_a_noop_is_empty() -> None:
    batch = [Command("c1", 1, kv.put("k", "v")), Command("clé", 2**40, b""), Command("", 0, b"\x00\xff")]
    assert decode_batch(encode_batch(batch)) == batch
    assert encode_batch([]) != NOOP and decode_batch(NOOP) == []
    assert encode_batch(batch) == encode_batch(list(batch))  # deterministic


@pytest.mark.parametrize("bad", [b"\x00", b"\x00\x00\x00\x01", encode_batch([Command("c", 1, b"abc")])[:-1],
                                 encode_batch([Command("c", 1, b"abc")]) + b"x", b"\x00\x00\x00\x01\x00\x02\xff\xfe"])
def test_a_malformed_batch_is_an_error(bad: bytes) -> None:
    with pytest.raises(BatchError):
        decode_batch(bad)


def test_the_kv_machine_answers_put_get_cas() -> None:
    m = kv.KVMachine()
    answers = [json.loads(m.apply(c)) for c in (kv.get("k"), kv.cas("k", None, "a"), kv.cas("k", None, "b"),
                                                kv.put("k", {"n": 1}), kv.get("k"), kv.cas("k", {"n": 1}, "c"))]
    assert answers == [None, True, False, "ok", {"n": 1}, True]
    copy = kv.KVMachine()
    copy.restore(m.snapshot())
    assert copy.data == {"k": "c"}


@pytest.mark.parametrize("bad", [b"not json", b'{"op": "put"}', b'{"op": "drop", "key": "k"}',
                                 b'{"op": "get", "key": 1}'])
def test_a_malformed_command_changes_nothing_and_says_why(bad: bytes) -> None:
    m = kv.KVMachine()
    assert "error" in json.loads(m.apply(bad)) and m.data == {}


def test_a_request_is_applied_once_and_the_table_survives_a_snapshot() -> None:
    d = Deduplicated(kv.KVMachine())
    assert d.apply("c1", 1, kv.cas("k", None, 1)) == (b"true", True)
    assert d.apply("c1", 1, kv.cas("k", None, 1)) == (b"true", False)  # the first answer, not applied again
    assert d.apply("c1", 2, kv.put("k", 2)) == (b'"ok"', True)
    assert d.apply("c1", 1, kv.cas("k", None, 1))[1] is False  # stale: never applied
    restored = Deduplicated(kv.KVMachine())
    restored.restore(d.snapshot())
    assert restored.cached("c1", 2) == b'"ok"' and restored.machine.data == {"k": 2}
    assert restored.apply("c1", 2, kv.put("k", 3)) == (b'"ok"', False)


def test_every_message_type_is_registered_by_name_and_carries_site_and_sender() -> None:
    import dataclasses

    from firmware.paxos import messages

    assert len(messages.MESSAGE_TYPES) == 17
    for name, cls in messages.MESSAGE_TYPES.items():
        fields = [f.name for f in dataclasses.fields(cls)]
        assert cls.__name__ == name and fields[:2] == ["site", "sender"], name
