"""Open requests (no site key): their wire form, and the admission check the core asks before they take a slot."""

from __future__ import annotations

import json

import pytest

from firmware.paxos.core import kv
from firmware.paxos.core import messages as m
from firmware.paxos.core.replica import Replica
from firmware.paxos.wire.codec import MAX_JSON_REQUEST, Codec, CodecError

CODEC = Codec("s", bytes(range(32)))
COMMAND = b'{"args":{},"by":"D01","op":"whoami","seq":5,"sig":"AA==","site":"s"}'


def test_an_open_request_round_trips_unkeyed_with_its_command_canonical():
    data = Codec.encode_open_request("D01", 7, COMMAND)
    req, to = CODEC.decode_open_request(data)
    assert req == m.ClientRequest("s", "D01", 7, COMMAND, keyed=False) and to is None
    spaced = json.dumps({"v": 1, "client": "D01", "req": 7, "to": "cp2", "command": json.loads(COMMAND)}, indent=2)
    req, to = CODEC.decode_open_request(spaced.encode())
    assert req.command == COMMAND and to == "cp2"  # the command is re-serialised canonically


@pytest.mark.parametrize(("data", "reason"), [
    (b"{" * 10_000 + b"}" * 10_000, "too_big"),
    (b"[" * 5000 + b"]" * 5000, "malformed"),  # deep nesting under the cap: RecursionError caught
    (b'{"v": 1, "client": "D01", "req": 1, "command": {"a": [' + b"[" * 3000 + b"]" * 3000 + b']}}', "malformed"),
    (b"\xff\xfe", "malformed"),
    (b"[1]", "malformed"),
    (b'{"v": 2, "client": "D01", "req": 1, "command": {}}', "version"),
    (b'{"v": 1, "client": "D 01", "req": 1, "command": {}}', "malformed"),
    (b'{"v": 1, "client": "D01", "req": -1, "command": {}}', "malformed"),
    (b'{"v": 1, "client": "D01", "req": 1.5, "command": {}}', "malformed"),
    (b'{"v": 1, "client": "D01", "req": 1, "command": "x"}', "malformed"),
    (b'{"v": 1, "client": "D01", "req": 1, "command": {}, "to": 3}', "malformed"),
    (b'{"v": 1, "client": "D01", "req": 1, "command": {}, "extra": 3}', "malformed"),
    (b'{"v": 1, "client": "D01", "req": 1, "command": {"x": "' + b"a" * 9000 + b'"}}', "malformed"),
    (b'{"v": 1, "client": "D01", "req": 1, "command": {"x": NaN}}', "malformed"),
])
def test_a_bad_open_request_is_a_codec_error_with_its_reason(data, reason):
    assert len(data) > MAX_JSON_REQUEST or reason != "too_big"
    with pytest.raises(CodecError) as e:
        CODEC.decode_open_request(data)
    assert e.value.reason == reason


def test_a_keyed_json_request_is_recognised_by_its_tail_and_a_bad_mac_stays_a_mac_drop():
    keyed = CODEC.encode_request("c1", 5, "get", {"key": "k"})
    assert CODEC.is_signed_json(keyed) and not CODEC.is_signed_json(Codec.encode_open_request("c1", 5, COMMAND))
    with pytest.raises(CodecError) as e:
        CODEC.decode_request(keyed.replace(b'"req":5', b'"req":6'))
    assert e.value.reason == "mac"
    assert CODEC.decode_request(keyed)[0].keyed is True


def test_an_open_client_reads_a_reply_without_the_key_and_a_forged_one_as_well():
    reply = CODEC.encode_reply(m.ClientReply("s", "cp1", "D01", 7, b'{"ok":true}'))
    got = Codec.decode_reply_unverified(reply)
    assert got["result"] == {"ok": True} and got["leader"] == "cp1" and "mac" not in got
    with pytest.raises(CodecError):
        Codec.decode_reply_unverified(b'{"v":1,"client":3,"req":1}')


# ------------------------------------------------------------------ the core's admission check


def leader(admit=None) -> Replica:
    r = Replica("a", ["a"], "s", kv.KVMachine(), admit=admit)
    now = 0.0
    while not r.is_leader:
        now += 0.1
        r.tick(now)
        r.ready()
    return r


def test_an_open_request_refused_by_admission_is_answered_at_once_and_takes_no_slot():
    asked = []

    def admit(client: str, command: bytes) -> str | None:
        asked.append((client, command))
        return None if command == kv.put("k", 1) else '{"error":"bad_signature","reason":"not yours"}'

    r = leader(admit)
    upto = r.learner.chosen_upto
    r.propose("D01", 1, kv.put("k", 2), 10.0, keyed=False)
    out = r.ready()
    assert [(x.client, x.req, json.loads(x.result)["error"]) for x in out.replies] == [("D01", 1, "bad_signature")]
    assert r.learner.chosen_upto == upto and r.refused == 1 and not out.accepted
    r.propose("D01", 2, kv.put("k", 1), 10.0, keyed=False)
    out = r.ready()
    assert [(x.req, x.result) for x in out.replies] == [(2, b"\"ok\"")] and r.learner.chosen_upto == upto + 1
    r.propose("cp9", 3, kv.put("k", 3), 10.0)  # keyed: the site key vouched for it, no admission
    assert r.ready().replies[0].result == b"\"ok\"" and len(asked) == 2
    r.propose("D01", 2, kv.put("k", 1), 10.0, keyed=False)  # a retry of an applied request: its first answer
    assert r.ready().replies[0].result == b"\"ok\"" and len(asked) == 2


def test_without_an_admission_check_open_requests_are_dropped_unanswered():
    r = leader()
    upto = r.learner.chosen_upto
    r.propose("D01", 1, kv.put("k", 2), 10.0, keyed=False)
    out = r.ready()
    assert not out.replies and r.learner.chosen_upto == upto and r.refused == 1


def test_a_follower_passes_an_open_request_on_unjudged_its_state_may_lag_the_leaders():
    r = Replica("b", ["a", "b", "c"], "s", kv.KVMachine(), admit=lambda client, command: '{"error":"replayed"}')
    r.propose("D01", 1, kv.put("k", 2), 0.0, keyed=False)
    assert not r.ready().replies and r.refused == 0 and [c.client for c in r.queue] == ["D01"]
