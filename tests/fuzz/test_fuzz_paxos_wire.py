"""Fuzz every decoder of the site's wire (issue 9): each raises only its own error type, on any input.

Paxos frames and bundles, JSON and binary client requests and replies, the Last Will, status and
telemetry payloads (`evnet.mqtt.decode_payload`), and the MQTT packet reader. Random bytes
rarely get past a MAC, so each decoder is also fed bodies signed with the test key: arbitrary
bytes, and valid messages with bytes changed, then signed again — what only a key holder with a
bug could send, and what must still be a `CodecError`, never another exception.
"""

from __future__ import annotations

import json
import socket
import typing

import paho.mqtt.client as mqtt
from hypothesis import given, settings
from hypothesis import strategies as st
from paho.mqtt.enums import CallbackAPIVersion

from evnet.mqtt import PayloadError, decode_payload, encode_payload
from evnet.mqtt.reader import MalformedPacketError, PacketReader
from evnet.mqtt.writer import remaining_length as varint
from firmware.paxos.core import messages as m
from firmware.paxos.core.batch import BatchError, Command, Stamp, decode_batch, encode_batch
from firmware.paxos.core.types import Accepted, Ballot
from firmware.paxos.wire.codec import BUNDLE, REPLIES, REQUESTS, TAGS, Codec, CodecError
from firmware.paxos.wire.fields import MAX_UINT

KEY = bytes(range(32))
CODEC = Codec("s", KEY)
FUZZ = settings(max_examples=300, deadline=None)

uints = st.integers(0, MAX_UINT)
names = st.text(max_size=8)
ballots = st.builds(Ballot, uints, names)
entries = st.lists(st.builds(m.Entry, uints, st.binary(max_size=16)), max_size=3).map(tuple)
# A valid message of every kind on the wire (TAGS), each field drawn by its type hint: a field added
# to a message, or a message added to TAGS, is fuzzed with no change here.
FIELDS = {
    str: names, bool: st.booleans(), int: uints, bytes: st.binary(max_size=32), Ballot: ballots,
    tuple[int, ...]: st.lists(uints, max_size=4).map(tuple),
    tuple[Accepted, ...]: st.lists(st.builds(Accepted, uints, ballots, st.binary(max_size=16)), max_size=3).map(tuple),
    tuple[m.Entry, ...]: entries,
}


def message(cls: type) -> st.SearchStrategy[m.Message]:
    hints = typing.get_type_hints(cls)
    return st.builds(cls, **{name: FIELDS[hints[name]] for name in cls.__dataclass_fields__})


MESSAGES = st.one_of(*(message(cls) for cls in TAGS))
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner,
                                                                                       max_size=4),
                           max_leaves=20)


@st.composite
def mutated(draw: st.DrawFn, valid: bytes) -> bytes:
    """`valid` with a few bytes changed, inserted or cut."""
    data = bytearray(valid)
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["set", "insert", "cut"]))
        i = draw(st.integers(0, max(0, len(data) - 1)))
        if op == "set" and data:
            data[i] = draw(st.integers(0, 255))
        elif op == "insert":
            data[i:i] = draw(st.binary(min_size=1, max_size=8))
        elif data:
            del data[i:i + draw(st.integers(1, 8))]
    return bytes(data)


def peer_bodies() -> st.SearchStrategy[bytes]:
    """Bodies of peer frames: arbitrary, with a valid head, or valid messages mutated."""
    return st.one_of(
        st.binary(max_size=64),
        st.tuples(st.sampled_from(range(len(TAGS))), st.binary(max_size=64)).map(lambda t: bytes((1, t[0])) + t[1]),
        MESSAGES.map(CODEC.encode_body).flatmap(mutated),
    )


def sign_json(text: bytes) -> bytes:
    return text[:-1] + b',"mac":"' + CODEC._json_mac(text[:-1] + b"}").encode() + b'"}'


def hostile_json() -> st.SearchStrategy[bytes]:
    """What makes `json.loads` itself raise something else than a JSONDecodeError: deep nesting, huge ints."""
    return st.one_of(st.integers(1, 12).map(lambda n: b'{"v":1,"a":' + b"[" * (n * 1000) + b"}"),
                     st.integers(4300, 6000).map(lambda n: b'{"v":1,"req":' + b"7" * n + b"}"))


def json_texts() -> st.SearchStrategy[bytes]:
    """JSON-ish texts: arbitrary bytes, any JSON value, objects shaped like our messages, mutated ones."""
    shaped = st.fixed_dictionaries({"v": st.sampled_from([1, 2, "1"]), "client": json_values, "req": json_values,
                                    "op": json_values, "args": json_values, "to": json_values,
                                    "replica": json_values, "event": st.sampled_from(["gone", "x"]),
                                    "leader": json_values, "result": json_values})
    requests = st.builds(lambda c, r, v: CODEC.encode_request(c, r, "put", {"key": "k", "value": v})[:-74] + b"}",
                         st.text(max_size=5) | st.sampled_from(["\ud800", "a/b", "x" * 65]),
                         st.integers(-5, 9) | st.integers(2**62, 2**65), json_values)
    return st.one_of(
        st.binary(max_size=64),
        hostile_json(),
        json_values.map(lambda v: encode_payload({"x": v})),
        shaped.map(lambda d: encode_payload(d)),
        requests,
        requests.flatmap(mutated),
    )


def client_frames(kind: int) -> st.SearchStrategy[bytes]:
    """Binary client frames of `kind` (requests or replies), valid or mutated, unsigned."""
    if kind == REQUESTS:
        valid = st.builds(lambda s, t, rs: CODEC.encode_requests(s, t, rs)[:-32], names, st.none() | names,
                          st.lists(st.tuples(names, st.integers(0, 2**64 - 1), st.binary(max_size=16)), max_size=3))
    else:
        valid = st.builds(lambda ld, rs: CODEC.encode_replies(ld, rs)[:-32], names,
                          st.lists(st.builds(m.ClientReply, st.just("s"), names, names, st.integers(0, 2**64 - 1),
                                             st.binary(max_size=16)), max_size=3))
    return st.one_of(st.binary(max_size=64).map(lambda b: bytes((kind, 1)) + b), valid, valid.flatmap(mutated))


# ------------------------------------------------------------------ Paxos frames and bundles

@FUZZ
@given(st.binary(max_size=200))
def test_decode_and_unbundle_raise_only_codec_error_on_any_bytes(data: bytes) -> None:
    for decode in (CODEC.decode, CODEC.unbundle):
        try:
            decode(data)
        except CodecError:
            pass


@FUZZ
@given(peer_bodies())
def test_a_signed_peer_frame_of_any_body_decodes_or_is_a_codec_error(body: bytes) -> None:
    try:
        msg = CODEC.decode(body + CODEC._mac(body))
    except CodecError:
        return
    assert CODEC.decode(CODEC.encode(msg)) == msg  # what decodes, encodes again (no integer out of range)


@FUZZ
@given(st.lists(peer_bodies(), max_size=5), st.binary(max_size=16))
def test_a_signed_bundle_of_any_bodies_and_any_tail_raises_only_codec_error(bodies: list[bytes], tail: bytes) -> None:
    data = bytes((BUNDLE,)) + b"".join(len(b).to_bytes(4, "big") + b for b in bodies) + tail
    try:
        got = CODEC.unbundle(data + CODEC._bundle_mac(data))
    except CodecError:
        return
    for body in got:
        try:
            CODEC.decode_body(body)
        except CodecError:
            pass


@FUZZ
@given(st.lists(MESSAGES, min_size=1, max_size=6))
def test_every_message_round_trips_through_seal_and_unbundle(msgs: list[m.Message]) -> None:
    payloads = CODEC.seal([CODEC.encode_body(msg) for msg in msgs])
    assert [CODEC.decode_body(b) for p in payloads for b in CODEC.unbundle(p)] == msgs


# ------------------------------------------------------------------ the client topics

@FUZZ
@given(st.one_of(st.binary(max_size=200), json_texts(), client_frames(REQUESTS), client_frames(REPLIES)))
def test_client_decoders_raise_only_codec_error_on_any_bytes(data: bytes) -> None:
    for decode in (CODEC.decode_request, CODEC.decode_requests, CODEC.decode_reply, CODEC.decode_replies,
                   CODEC.decode_gone):
        try:
            decode(data)
        except CodecError:
            pass
    assert Codec.claimed_session(data) is None or Codec.claimed_session(data).isascii()


@FUZZ
@given(json_texts())
def test_signed_json_of_any_text_decodes_or_is_a_codec_error_and_what_decodes_can_be_batched(text: bytes) -> None:
    signed = sign_json(text)
    try:
        request, _ = CODEC.decode_request(signed)
    except CodecError:
        pass
    else:  # A2: anything a replica takes in, its leader can put in a batch
        assert 0 <= request.req <= MAX_UINT
        encode_batch(Stamp(1, "a", 0), [Command(request.sender, request.req, request.command)])
    for decode in (CODEC.decode_reply, CODEC.decode_replies, CODEC.decode_gone):
        try:
            decode(signed)
        except CodecError:
            pass


@FUZZ
@given(st.one_of(client_frames(REQUESTS), client_frames(REPLIES)))
def test_signed_binary_client_frames_decode_or_are_a_codec_error(body: bytes) -> None:
    signed = body + CODEC._client_mac(body)
    try:
        _, _, requests = CODEC.decode_requests(signed)
    except CodecError:
        pass
    else:
        assert all(0 <= r.req <= MAX_UINT for r in requests)
        encode_batch(Stamp(1, "a", 0), [Command(r.sender, r.req, r.command) for r in requests])
    try:
        CODEC.decode_replies(signed)
    except CodecError:
        pass


def open_requests() -> st.SearchStrategy[bytes]:
    """Open requests (no MAC: anyone on the broker may send one): valid, shaped and mutated."""
    valid = st.builds(lambda c, r, cmd: Codec.encode_open_request(c, r, encode_payload(cmd)),
                      st.text(max_size=5) | st.sampled_from(["D01", "\ud800", "a/b", "x" * 65]),
                      st.integers(-5, 9) | st.integers(2**62, 2**65),
                      st.dictionaries(st.text(max_size=5), json_values, max_size=4))
    shaped = st.fixed_dictionaries({"v": st.sampled_from([1, 2, "1", None]), "client": json_values,
                                    "req": json_values, "command": json_values, "to": json_values})
    return st.one_of(valid, valid.flatmap(mutated), shaped.map(lambda d: encode_payload(d)), json_texts(),
                     hostile_json())


@FUZZ
@given(open_requests())
def test_the_open_request_decoder_raises_only_codec_error_and_what_it_takes_can_be_batched(data: bytes) -> None:
    try:
        request, to = CODEC.decode_open_request(data)
    except CodecError:
        return
    assert request.keyed is False and 0 <= request.req <= MAX_UINT and (to is None or isinstance(to, str))
    assert json.loads(request.command) is not None  # canonical JSON the machine can parse
    encode_batch(Stamp(1, "a", 0), [Command(request.sender, request.req, request.command, request.keyed)])
    try:
        Codec.decode_reply_unverified(data)
    except CodecError:
        pass


# ------------------------------------------------------------------ status and telemetry payloads

@FUZZ
@given(st.one_of(st.binary(max_size=200), json_values.map(lambda v: encode_payload({"x": v})),
                 json_values.map(lambda v: json.dumps(v).encode()), hostile_json()))
def test_decode_payload_raises_only_payload_error(data: bytes) -> None:
    try:
        body = decode_payload(data)
    except PayloadError:
        return
    assert isinstance(body, dict) and body["v"] == 1


# ------------------------------------------------------------------ the MQTT packet reader


@st.composite
def packet_streams(draw: st.DrawFn) -> list[bytes]:
    """A broker's byte stream cut anywhere: PUBLISHes (on our topics or not, of any size), other bytes."""
    stream = b""
    for _ in range(draw(st.integers(0, 5))):
        if draw(st.booleans()):
            stream += draw(st.binary(max_size=40))
            continue
        topic = draw(st.sampled_from([b"a", b"evnet/s/paxos/cp1", b"\xff\xfe", b""]))
        props = draw(st.binary(max_size=3))
        body = len(topic).to_bytes(2, "big") + topic + varint(len(props)) + props + draw(st.binary(max_size=150))
        length = max(0, len(body) + draw(st.integers(-3, 3)))  # sometimes not what follows
        stream += bytes((0x30 | draw(st.integers(0, 15)),)) + varint(length) + body
    cuts = sorted(draw(st.lists(st.integers(0, len(stream)), max_size=5)))
    return [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]


@FUZZ
@given(st.one_of(st.lists(st.binary(max_size=300), max_size=6), packet_streams()), st.sampled_from([64, 100_000]))
def test_the_packet_reader_raises_only_malformed_packet_error_on_any_bytes(chunks: list[bytes], cap: int) -> None:
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="fuzz", protocol=mqtt.MQTTv5)

    def strict(topic: str, payload: bytes) -> None:  # a handler that fails on most inputs
        CODEC.unbundle(payload)
    reader = PacketReader(client, {"a": strict, "evnet/s/paxos/cp1": strict}, max_packet=cap)
    ours, broker = socket.socketpair()
    ours.setblocking(False)
    try:
        for chunk in chunks:
            if chunk:
                broker.sendall(chunk)
            try:
                reader.read(ours)
            except MalformedPacketError:
                return  # the connection would be closed: nothing more to read on it
    finally:
        ours.close()
        broker.close()


@FUZZ
@given(st.binary(max_size=200), st.integers(0, 2**62), st.text(max_size=8), st.integers(0, 2**62),
       st.lists(st.tuples(st.text(max_size=8), st.integers(0, MAX_UINT), st.binary(max_size=16), st.booleans()),
                max_size=4), st.integers(0, 400), st.integers(0, 255))
def test_a_slot_value_decodes_or_is_a_batch_error_and_a_batch_round_trips(
        junk: bytes, rnd: int, node: str, now_ms: int, commands: list[tuple[str, int, bytes, bool]],
        at: int, byte: int) -> None:
    """A slot's value comes from a peer (or the disk): whatever it holds (random, cut short, one byte changed),
    decoding raises only BatchError."""
    batch = [Command(*c) for c in commands]
    value = encode_batch(Stamp(rnd, node, now_ms), batch)
    assert decode_batch(value) == (Stamp(rnd, node, now_ms), batch)
    i = at % (len(value) + 1)
    for bad in (junk, value[:i], value[:i] + bytes([byte]) + value[i + 1:]):
        try:
            decode_batch(bad)
        except BatchError:
            pass
