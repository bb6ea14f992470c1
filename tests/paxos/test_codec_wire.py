"""The signed wire codec: every message round-trips; forged, foreign or damaged frames are refused."""

from __future__ import annotations

import hashlib
import hmac
import time

import pytest

from evnet.config.site_key import read_site_key
from firmware.paxos.core import messages as m
from firmware.paxos.core.batch import Command, Stamp, encode_batch
from firmware.paxos.core.canonical import dumps
from firmware.paxos.core.types import Accepted, Ballot
from firmware.paxos.wire.codec import (
    BUNDLE,
    MAC_SIZE,
    MAX_COMMAND,
    MAX_FRAMES,
    MAX_JSON_REQUEST,
    MAX_MESSAGE,
    TAGS,
    Codec,
    CodecError,
)
from firmware.paxos.wire.fields import MAX_UINT

KEY = bytes(range(32))
B = Ballot(7, "cp2")
SAMPLES = [
    m.Prepare("s", "cp1", B, 3),
    m.Promise("s", "cp1", B, (Accepted(3, Ballot(2, "cp3"), b"\x00val"), Accepted(4, B, b"")), 3, 1, 2**40 + 1, 9,
              2, 1),
    m.Accept("s", "cp2", B, (m.Entry(5, b"batch"), m.Entry(6, b"")), 4),
    m.AcceptReply("s", "cp3", B, (5, 6), 4),
    m.Commit("s", "cp2", B, (5, 6)),
    m.Heartbeat("s", "cp2", B, 7, 2**40 + 1, 12, 2**40 + 2, 9),
    m.HeartbeatReply("s", "cp1", B, 7, 2**40 + 2, 10, 2**40 + 1, 12),
    m.Nack("s", "cp1", B, Ballot(9, "cp3")),
    m.CatchUpRequest("s", "cp1", 0),
    m.CatchUpReply("s", "cp2", (m.Entry(0, b"x" * 1000),), 1),
    m.Snapshot("s", "cp2", 1024, 9000, 3000, bytes(range(32)), b"\xff" * 3000),
    m.ClientRequest("s", "client-é", 2**63 - 1, b'{"op":"get"}'),  # the largest integer taken
    m.Forward("s", "cp1", "c1", 1, b"{}"),
    m.ClientReply("s", "cp2", "c1", 1, b'"ok"'),
    m.PreVote("s", "cp3", Ballot(8, "cp3"), 2**40 + 3, 1),
    m.PreVoteReply("s", "cp1", 1, B, 2**40 + 3, 1),
    m.SnapshotRequest("s", "cp1", 1024, 6000, bytes(range(32))),
]


def test_every_message_type_has_a_tag_and_a_sample():
    assert set(TAGS) == set(m.MESSAGE_TYPES.values())
    assert {type(s) for s in SAMPLES} == set(TAGS)


@pytest.mark.parametrize("msg", SAMPLES, ids=lambda s: type(s).__name__)
def test_every_message_round_trips(msg):
    codec = Codec("s", KEY)
    assert codec.decode(codec.encode(msg)) == msg


def test_the_encoding_is_compact():
    frame = Codec("s", KEY).encode(m.AcceptReply("s", "cp3", B, (5,), 4))
    assert len(frame) < 80  # 2 + fields (~40) + 32 MAC; JSON with names would be ~3x that


@pytest.mark.parametrize("bad", ["other_key", "other_site", "flipped", "truncated", "empty"])
def test_forged_foreign_or_damaged_frames_are_refused_with_a_reason(bad):
    codec = Codec("s", KEY)
    frame = codec.encode(SAMPLES[1])
    if bad == "other_key":
        frame = Codec("s", bytes(32)).encode(SAMPLES[1])
    elif bad == "other_site":
        frame = Codec("t", KEY).encode(SAMPLES[1])
    elif bad == "flipped":
        frame = frame[:10] + bytes([frame[10] ^ 1]) + frame[11:]
    elif bad == "truncated":
        frame = frame[:-1]
    else:
        frame = b""
    with pytest.raises(CodecError) as err:
        codec.decode(frame)
    assert err.value.reason == ("malformed" if bad == "empty" else "mac")


def test_a_well_signed_but_malformed_frame_is_malformed_not_a_crash():
    codec = Codec("s", KEY)
    body = bytes((1, 0)) + b"\x00\x01"  # a Prepare cut short inside its first field
    with pytest.raises(CodecError, match="malformed: Prepare"):
        codec.decode(body + codec._mac(body))
    body = bytes((1, 200))
    with pytest.raises(CodecError, match="unknown message tag 200"):
        codec.decode(body + codec._mac(body))


def test_client_requests_and_replies_are_signed_json():
    codec = Codec("s", KEY)
    data = codec.encode_request("c1", 5, "put", {"key": "k", "value": [1, "x"]}, to="cp2")
    assert data.startswith(b"{") and b'"v":1' in data
    req, to = codec.decode_request(data)
    assert (req.sender, req.req, to) == ("c1", 5, "cp2")
    assert req.command == b'{"key":"k","op":"put","value":[1,"x"]}'
    with pytest.raises(CodecError, match="mac"):
        codec.decode_request(data.replace(b'"req":5', b'"req":6'))
    with pytest.raises(CodecError, match="mac"):
        Codec("s", bytes(32)).decode_request(data)
    reply = codec.decode_reply(codec.encode_reply(m.ClientReply("s", "cp2", "c1", 5, b'"ok"')))
    assert (reply["client"], reply["req"], reply["result"], reply["leader"], reply["stale"]) == ("c1", 5, "ok", "cp2",
                                                                                                False)


def test_binary_requests_and_replies_of_a_session_round_trip_and_are_signed():
    codec = Codec("s", KEY)
    data = codec.encode_requests("sess", "cp2", [("c1", 5, b'{"op":"get"}'), ("c2", 9, b"")])
    assert data[0] == 0xC1
    session, to, reqs = codec.decode_requests(data)
    assert (session, to) == ("sess", "cp2")
    assert reqs == [m.ClientRequest("s", "c1", 5, b'{"op":"get"}'), m.ClientRequest("s", "c2", 9, b"")]
    assert codec.decode_requests(codec.encode_requests("sess", None, []))[1:] == (None, [])
    for forged in (data[:10] + bytes((data[10] ^ 1,)) + data[11:], Codec("s", bytes(32)).encode_requests("x", None, []),
                   Codec("other-site", KEY).encode_requests("x", None, [])):
        with pytest.raises(CodecError) as err:
            codec.decode_requests(forged)
        assert err.value.reason == "mac"
    body = bytes((0xC1, 1)) + b"\x00\x01"  # well signed, cut short inside the session id
    with pytest.raises(CodecError, match="malformed"):
        codec.decode_requests(body + codec._client_mac(body))
    # a peer frame's MAC never verifies as a client frame (another domain), nor the other way round
    with pytest.raises(CodecError):
        codec.decode(data)
    replies = codec.decode_replies(codec.encode_replies("cp2", [m.ClientReply("s", "cp2", "c1", 5, b'"ok"'),
                                                                m.ClientReply("s", "cp2", "c2", 9, b"")]))
    assert [(r["client"], r["req"], r["result"], r["leader"], r["stale"]) for r in replies] == [
        ("c1", 5, "ok", "cp2", False), ("c2", 9, None, "cp2", True)]
    json_reply = codec.encode_reply(m.ClientReply("s", "cp2", "c1", 5, b"true"))
    assert codec.decode_replies(json_reply)[0]["result"] is True  # the JSON form is still understood
    with pytest.raises(CodecError, match="mac"):
        Codec("s", bytes(32)).decode_replies(codec.encode_replies("cp2", []))


def test_the_site_key_file_is_hex_or_raw_and_long_enough(tmp_path):
    (tmp_path / "hex").write_text("00" * 32 + "\n")
    assert read_site_key(str(tmp_path / "hex")) == bytes(32)
    (tmp_path / "raw").write_bytes(b"\xff" * 20)
    assert read_site_key(str(tmp_path / "raw")) == b"\xff" * 20
    (tmp_path / "short").write_text("abcd")
    with pytest.raises(ValueError, match="at least 16 bytes"):
        read_site_key(str(tmp_path / "short"))


def test_a_bundle_carries_several_messages_under_one_mac_checked_before_unpacking():
    codec = Codec("s", KEY)
    bodies = [codec.encode_body(msg) for msg in SAMPLES[:4]]
    assert codec.seal(bodies[:1]) == [codec.encode(SAMPLES[0])]  # one message travels as a frame of its own
    (bundle,) = codec.seal(bodies)
    assert [codec.decode_body(b) for b in codec.unbundle(bundle)] == SAMPLES[:4]
    with pytest.raises(CodecError, match="mac"):
        Codec("s", bytes(32)).unbundle(bundle)
    with pytest.raises(CodecError, match="mac"):
        codec.unbundle(bundle[:-1])
    # A bundle whose frame lengths run past its end and whose MAC is wrong is refused for its MAC:
    # the lengths were never read.
    broken = bytes((BUNDLE,)) + b"\xff\xff\xff\xff" + bytes(MAC_SIZE)
    with pytest.raises(CodecError) as err:
        codec.unbundle(broken)
    assert err.value.reason == "mac"
    signed = bytes((BUNDLE,)) + b"\xff\xff\xff\xff"
    with pytest.raises(CodecError, match="runs past the end"):
        codec.unbundle(signed + codec._bundle_mac(signed))
    with pytest.raises(CodecError, match="one frame was expected"):
        codec.decode(bundle)


def test_bundles_are_split_to_fit_the_message_and_frame_caps():
    codec = Codec("s", KEY)
    small = codec.encode_body(SAMPLES[5])
    many = codec.seal([small] * (MAX_FRAMES * 2 + 1))
    assert len(many) == 3 and sum(len(codec.unbundle(p)) for p in many) == MAX_FRAMES * 2 + 1
    big = codec.encode_body(m.CatchUpReply("s", "cp2", (m.Entry(1, b"x" * (MAX_MESSAGE // 2)),), 2))
    payloads = codec.seal([big, big, small])
    assert len(payloads) == 2 and all(len(p) <= MAX_MESSAGE for p in payloads)
    with pytest.raises(CodecError, match="too_big"):
        codec.encode_body(m.CatchUpReply("s", "cp2", (m.Entry(1, b"x" * MAX_MESSAGE),), 2))


def _signed(codec: Codec, text: bytes) -> bytes:
    """`text` signed as a key holder would sign it: the MAC suffix in place of its last byte."""
    return text[:-1] + b',"mac":"' + codec._json_mac(text[:-1] + b"}").encode() + b'"}'


@pytest.mark.parametrize("decode", ["decode_request", "decode_reply", "decode_replies", "decode_gone"])
def test_a_json_message_is_authenticated_on_its_raw_bytes_before_it_is_parsed(decode):
    codec = Codec("s", KEY)
    deep = b"[" * 100_000  # json.loads raises RecursionError on it (issue 9, A1)
    for junk in (deep, deep + b',"mac":"' + b"0" * 64 + b'"}', b'{"v":1,"mac":"' + b"0" * 64 + b'"}', b"", b"\xff"):
        with pytest.raises(CodecError) as err:
            getattr(codec, decode)(junk)
        assert err.value.reason in ("mac", "malformed", "too_big")
    # Signed by a key holder, still no other exception: nesting too deep, a number too long for int()
    for text in (b'{"a":' + b"[" * 10_000 + b"}", b'{"v":1,"req":' + b"9" * 5000 + b"}", b"[1,2,3]"):
        with pytest.raises(CodecError, match="malformed"):
            getattr(codec, decode)(_signed(codec, text))


def test_the_json_wire_form_is_unchanged_and_any_json_text_signed_on_its_bytes_is_taken():
    codec = Codec("s", KEY)
    body = {"v": 1, "client": "c1", "req": 5, "op": "get", "args": {"key": "k"}, "to": None}
    canon = dumps(body)
    data = codec.encode_request("c1", 5, "get", {"key": "k"})
    mac = hmac.new(KEY, b"evnet-json\0s\0" + canon, hashlib.sha256).hexdigest()  # as docs/mqtt-api.md says
    assert data == canon[:-1] + b',"mac":"' + mac.encode() + b'"}'
    spaced = b'{"v": 1, "client": "c1", "req": 5, "op": "get", "args": {"key": "k"}}'  # not canonical: fine
    assert codec.decode_request(_signed(codec, spaced))[0].req == 5
    with pytest.raises(CodecError, match="mac"):  # the MAC is over the bytes: any change breaks it
        codec.decode_request(data.replace(b'"req":5', b'"req": 5'))


@pytest.mark.parametrize("req", [2**64, 2**63, -1, True, 1.0, "1"])
def test_a_signed_request_whose_req_is_out_of_range_is_refused_at_decode(req):
    codec = Codec("s", KEY)
    with pytest.raises(CodecError, match="malformed: req"):
        codec.decode_request(codec.encode_request("c1", req, "get", {"key": "k"}))  # type: ignore[arg-type]
    request, _ = codec.decode_request(codec.encode_request("c1", MAX_UINT, "get", {"key": "k"}))
    encode_batch(Stamp(1, "a", 0), [Command(request.sender, request.req, request.command)])  # as the leader does


def test_binary_and_json_requests_apply_the_same_caps():
    codec = Codec("s", KEY)
    big = "x" * MAX_COMMAND
    for data in (codec.encode_request("c1", 1, "put", {"key": "k", "value": big}),
                 codec.encode_requests("sess", None, [("c1", 1, big.encode() + b"!")])):
        with pytest.raises(CodecError) as err:
            codec.decode_replies(data) if data[0] == 0xC2 else (
                codec.decode_requests(data) if data[0] == 0xC1 else codec.decode_request(data))
        assert err.value.reason in ("too_big", "malformed")
    for bad_id in ("", "a/b", "#", "x" * 65, "é", "c\n"):
        with pytest.raises(CodecError, match="client id"):
            codec.decode_request(codec.encode_request(bad_id, 1, "get", {}))
        with pytest.raises(CodecError, match="client id"):
            codec.decode_requests(codec.encode_requests("sess", None, [(bad_id, 1, b"{}")]))
    with pytest.raises(CodecError, match="session id"):
        codec.decode_requests(codec.encode_requests("a+b", None, []))
    body = bytes((0xC1, 1)) + b"\x00\x01s\x00\x00\x00\x01\x00\x01c" + (2**64 - 1).to_bytes(8, "big") + bytes(4)
    with pytest.raises(CodecError, match="malformed: req"):
        codec.decode_requests(body + codec._client_mac(body))
    with pytest.raises(CodecError, match="too_big"):
        codec.decode_request(b"{" * (MAX_JSON_REQUEST + 1))


def test_a_peer_frame_with_an_integer_beyond_the_range_is_malformed():
    codec = Codec("s", KEY)
    body = bytearray(codec.encode_body(m.Heartbeat("s", "cp2", Ballot(7, "cp2"), 9, 1, 1, 0, 0)))
    body[-8:] = (2**64 - 1).to_bytes(8, "big")  # echo_seq = 2**64 - 1: beyond MAX_UINT
    with pytest.raises(CodecError, match="out of range"):
        codec.decode(bytes(body) + codec._mac(bytes(body)))
    head = codec.encode_body(m.AcceptReply("s", "cp1", Ballot(1, "x"), (), 0))[:-12]  # up to the slots' count
    body = head + b"\xff\xff\xff\xff" + bytes(8)
    with pytest.raises(CodecError, match="items announced"):  # 4 billion slots announced, none there
        codec.decode(body + codec._mac(body))


def test_nothing_over_the_message_cap_is_even_hashed():
    codec = Codec("s", KEY)
    huge = bytes((BUNDLE,)) + b"\x00\x00\x00\x00" * (32 * 2**20 // 4)  # 32 MB of empty frames (issue 9, A3)
    t = time.process_time()
    for decode in (codec.unbundle, codec.decode, codec.decode_requests, codec.decode_replies, codec.decode_reply):
        with pytest.raises(CodecError) as err:
            decode(huge)
        assert err.value.reason == "too_big"
    assert time.process_time() - t < 0.1  # a safety net: it was 0.65 s of CPU per MB


def test_a_forged_bundle_at_the_cap_costs_one_hash():
    codec = Codec("s", KEY)
    forged = bytes((BUNDLE,)) + b"\x00\x00\x00\x00" * ((MAX_MESSAGE - 1 - MAC_SIZE) // 4) + bytes(MAC_SIZE)
    t = time.process_time()
    for _ in range(10):
        with pytest.raises(CodecError, match="mac"):
            codec.unbundle(forged)
    assert (time.process_time() - t) / 10 < 0.05  # a safety net: ~1-3 ms for a hash of 1 MB
    signed = forged[:-MAC_SIZE]
    with pytest.raises(CodecError, match=f"more than {MAX_FRAMES} frames"):  # a key holder's, still bounded
        codec.unbundle(signed + codec._bundle_mac(signed))


def test_a_bad_mac_request_names_its_session_unverified_only_if_it_could_be_one():
    codec = Codec("s", KEY)
    assert Codec.claimed_session(Codec("s", bytes(32)).encode_requests("app-7", None, [])) == "app-7"
    assert Codec.claimed_session(b"\xc1\x01\x00\x03a/b") is None
    assert Codec.claimed_session(codec.encode_request("c1", 1, "get", {})) is None  # JSON: not read at all
