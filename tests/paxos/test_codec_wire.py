"""The signed wire codec: every message round-trips; forged, foreign or damaged frames are refused."""

from __future__ import annotations

import pytest

from evnet.config.site_key import read_site_key
from firmware.paxos import messages as m
from firmware.paxos.codec import TAGS, Codec, CodecError
from firmware.paxos.types import Accepted, Ballot

KEY = bytes(range(32))
B = Ballot(7, "cp2")
SAMPLES = [
    m.Prepare("s", "cp1", B, 3),
    m.Promise("s", "cp1", B, (Accepted(3, Ballot(2, "cp3"), b"\x00val"), Accepted(4, B, b"")), 3, 1, 2**40 + 1, 9),
    m.Accept("s", "cp2", B, (m.Entry(5, b"batch"), m.Entry(6, b"")), 4),
    m.AcceptReply("s", "cp3", B, (5, 6), 4),
    m.Commit("s", "cp2", B, (5, 6)),
    m.Heartbeat("s", "cp2", B, 7, 2**40 + 1, 12, 2**40 + 2, 9),
    m.HeartbeatReply("s", "cp1", B, 7, 2**40 + 2, 10, 2**40 + 1, 12),
    m.Nack("s", "cp1", B, Ballot(9, "cp3")),
    m.CatchUpRequest("s", "cp1", 0),
    m.CatchUpReply("s", "cp2", (m.Entry(0, b"x" * 1000),), 1),
    m.Snapshot("s", "cp2", 1024, b"\xff" * 3000),
    m.ClientRequest("s", "client-é", 2**63, b'{"op":"get"}'),
    m.Forward("s", "cp1", "c1", 1, b"{}"),
    m.ClientReply("s", "cp2", "c1", 1, b'"ok"'),
    m.PreVote("s", "cp3", Ballot(8, "cp3"), 2**40 + 3, 1),
    m.PreVoteReply("s", "cp1", 1, B, 2**40 + 3, 1),
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


def test_a_bundle_carries_several_frames_each_with_its_own_mac():
    codec = Codec("s", KEY)
    frames = [codec.encode(msg) for msg in SAMPLES[:4]]
    assert Codec.bundle(frames[:1]) == frames[0]  # one frame travels as itself
    assert [codec.decode(f) for f in Codec.unbundle(Codec.bundle(frames))] == SAMPLES[:4]
    forged = Codec.bundle([frames[0], Codec("s", bytes(32)).encode(SAMPLES[1])])
    good, bad = Codec.unbundle(forged)
    assert codec.decode(good) == SAMPLES[0]
    with pytest.raises(CodecError, match="mac"):
        codec.decode(bad)
    with pytest.raises(CodecError, match="runs past the end"):
        Codec.unbundle(Codec.bundle(frames)[:-1])
