"""The wire forms of Paxos messages, each signed with HMAC-SHA256 under the site key.

Replica to replica (the internal inbox topics): a compact binary frame, packed field by
field from the message dataclass's own type hints, so a field added to a message needs no
codec change as long as its type is one of those below:

    frame = version:u8 tag:u8 fields... mac:32      mac = HMAC(key, "evnet-paxos\\0" site "\\0" version..fields)
    bundle = 0xB1 (len:u32 frame)*                  several frames for one peer in one MQTT message

Clients (the public `request` and `reply` topics): JSON objects carrying `"v": 1` and a hex
`mac` over the canonical JSON of the other fields (sorted keys, no spaces, ASCII) — the public
form, for any tool — or, from this project's own client, binary frames that cost a fraction of
the JSON's Python work at both ends (no re-serialising to verify a MAC) and carry the requests
and replies of several logical clients sharing one connection (a session):

    requests = 0xC1 version:u8 session:str to:str n:u16 (client:str req:u64 command:bytes)* mac:32
    replies  = 0xC2 version:u8 leader:str n:u16 (client:str req:u64 stale:u8 result:bytes)* mac:32

(str = len:u16 utf-8, bytes = len:u32; `to` "" = whoever leads; mac = HMAC(key,
"evnet-client\0" site "\0" everything before it).) Replies to a binary request go, one
message per session per Ready, to `reply/{session}`.

The MAC is checked before anything else is parsed; a frame that fails is a `CodecError`
whose `reason` the transport counts ("mac", "malformed", "version").
"""

from __future__ import annotations

import hmac
import json
import struct
import typing
from collections.abc import Callable
from typing import Any

from firmware.paxos import messages as m
from firmware.paxos.canonical import dumps
from firmware.paxos.mac import Mac
from firmware.paxos.types import Accepted, Ballot

VERSION = 1
BUNDLE = 0xB1  # first byte of a message that carries several frames (a frame starts with VERSION)
MAC_SIZE = 32
# Wire tags: append only, never reorder (a tag is on the wire in every frame).
TAGS: tuple[type, ...] = (m.Prepare, m.Promise, m.Accept, m.AcceptReply, m.Commit, m.Heartbeat, m.HeartbeatReply,
                          m.Nack, m.CatchUpRequest, m.CatchUpReply, m.Snapshot, m.ClientRequest, m.Forward,
                          m.ClientReply, m.PreVote, m.PreVoteReply)
_U8, _U16, _U32, _U64 = struct.Struct(">B"), struct.Struct(">H"), struct.Struct(">I"), struct.Struct(">Q")
REQUESTS, REPLIES = 0xC1, 0xC2  # first byte of the binary client frames (JSON starts with "{")
_REQ_HEAD, _REPLY_HEAD = struct.Struct(">QI"), struct.Struct(">QBI")


class CodecError(ValueError):
    """A frame that is not a valid, authentic message; `reason` is a short counter name."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


# ------------------------------------------------------------------ binary field packing

class _Out:
    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def uint(self, v: int) -> None:
        if v < 0:
            raise ValueError(f"negative integer {v} cannot be sent")
        self.parts.append(_U64.pack(v))

    def str(self, v: str) -> None:
        b = v.encode()
        self.parts.append(_U16.pack(len(b)) + b)

    def bytes(self, v: bytes) -> None:
        self.parts.append(_U32.pack(len(v)) + v)


class _In:
    def __init__(self, data: memoryview) -> None:
        self.data, self.pos = data, 0

    def _take(self, n: int) -> memoryview:
        if self.pos + n > len(self.data):
            raise ValueError("frame ends inside a field")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def uint(self) -> int:
        return _U64.unpack(self._take(8))[0]

    def str(self) -> str:
        return bytes(self._take(_U16.unpack(self._take(2))[0])).decode()

    def bytes(self) -> bytes:
        return bytes(self._take(_U32.unpack(self._take(4))[0]))


def _ballot_enc(o: _Out, b: Ballot) -> None:
    o.uint(b.round)
    o.str(b.node)


def _ballot_dec(i: _In) -> Ballot:
    return Ballot(i.uint(), i.str())


def _seq(enc: Callable[[_Out, Any], None], dec: Callable[[_In], Any]) -> tuple[Callable, Callable]:
    def e(o: _Out, items: tuple) -> None:
        o.parts.append(_U32.pack(len(items)))
        for x in items:
            enc(o, x)

    def d(i: _In) -> tuple:
        (n,) = _U32.unpack(i._take(4))
        return tuple(dec(i) for _ in range(n))
    return e, d


def _accepted_enc(o: _Out, a: Accepted) -> None:
    o.uint(a.slot)
    _ballot_enc(o, a.ballot)
    o.bytes(a.value)


def _accepted_dec(i: _In) -> Accepted:
    return Accepted(i.uint(), _ballot_dec(i), i.bytes())


def _entry_enc(o: _Out, e: m.Entry) -> None:
    o.uint(e.slot)
    o.bytes(e.value)


def _entry_dec(i: _In) -> m.Entry:
    return m.Entry(i.uint(), i.bytes())


_FIELD_CODECS: dict[Any, tuple[Callable, Callable]] = {
    str: (_Out.str, _In.str),
    int: (_Out.uint, _In.uint),
    bytes: (_Out.bytes, _In.bytes),
    Ballot: (_ballot_enc, _ballot_dec),
    tuple[int, ...]: _seq(_Out.uint, _In.uint),
    tuple[Accepted, ...]: _seq(_accepted_enc, _accepted_dec),
    tuple[m.Entry, ...]: _seq(_entry_enc, _entry_dec),
}


def _plan(cls: type) -> list[tuple[str, Callable, Callable]]:
    hints = typing.get_type_hints(cls)
    plan = []
    for name in cls.__dataclass_fields__:
        tp = hints[name]
        if tp not in _FIELD_CODECS:
            raise TypeError(f"{cls.__name__}.{name}: no wire form for type {tp}")
        plan.append((name, *_FIELD_CODECS[tp]))
    return plan


_PLANS = {cls: (tag, _plan(cls)) for tag, cls in enumerate(TAGS)}


def _json_result(raw: bytes) -> Any:
    """A state machine's result as JSON (None for a stale retry's empty answer)."""
    try:
        return json.loads(raw) if raw else None
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"error": "result is not JSON", "raw": raw.decode("latin-1")}


class Codec:
    """Encode, sign, verify and decode the messages of one site under its key."""

    def __init__(self, site: str, key: bytes) -> None:
        self.site = site
        self._mac = Mac(key, b"evnet-paxos\0" + site.encode() + b"\0").digest
        self._client_mac = Mac(key, b"evnet-client\0" + site.encode() + b"\0").digest
        self._json_mac = Mac(key, b"evnet-json\0" + site.encode() + b"\0").hexdigest

    def encode(self, msg: m.Message) -> bytes:
        tag, plan = _PLANS[type(msg)]
        out = _Out()
        out.parts.append(bytes((VERSION, tag)))
        for name, enc, _ in plan:
            enc(out, getattr(msg, name))
        body = b"".join(out.parts)
        return body + self._mac(body)

    def decode(self, frame: bytes) -> m.Message:
        if len(frame) < 2 + MAC_SIZE:
            raise CodecError("malformed", f"frame of {len(frame)} bytes is too short")
        view = memoryview(frame)
        body, mac = view[:-MAC_SIZE], view[-MAC_SIZE:]
        if not hmac.compare_digest(self._mac(body), mac):
            raise CodecError("mac", "bad MAC (another site's key, or tampered)")
        if body[0] != VERSION:
            raise CodecError("version", f"wire version {body[0]}, expected {VERSION}")
        if body[1] >= len(TAGS):
            raise CodecError("malformed", f"unknown message tag {body[1]}")
        cls = TAGS[body[1]]
        i = _In(body[2:])
        try:
            fields = {name: dec(i) for name, _, dec in _PLANS[cls][1]}
        except (ValueError, struct.error, UnicodeDecodeError) as e:
            raise CodecError("malformed", f"{cls.__name__}: {e}") from None
        if i.pos != len(i.data):
            raise CodecError("malformed", f"{cls.__name__}: {len(i.data) - i.pos} trailing bytes")
        return cls(**fields)

    # ------------------------------------------------------------ several frames in one publish

    @staticmethod
    def bundle(frames: list[bytes]) -> bytes:
        """Frames for one peer in one MQTT message: `BUNDLE (len:u32 frame)*`; each frame keeps its own MAC."""
        if len(frames) == 1:
            return frames[0]
        return bytes((BUNDLE,)) + b"".join(_U32.pack(len(f)) + f for f in frames)

    @staticmethod
    def unbundle(payload: bytes) -> list[bytes]:
        """The frames in one MQTT message (a bundle, or a single frame)."""
        if payload[:1] != bytes((BUNDLE,)):
            return [payload]
        frames, pos = [], 1
        while pos < len(payload):
            if pos + 4 > len(payload):
                raise CodecError("malformed", "bundle ends inside a frame length")
            (n,) = _U32.unpack_from(payload, pos)
            if pos + 4 + n > len(payload):
                raise CodecError("malformed", f"bundle frame of {n} bytes runs past the end")
            frames.append(payload[pos + 4:pos + 4 + n])
            pos += 4 + n
        return frames

    # ------------------------------------------------------------ the public JSON topics

    def _sign_json(self, body: dict[str, Any]) -> bytes:
        canon = dumps(body)
        mac = self._json_mac(canon)
        return canon[:-1] + b',"mac":"' + mac.encode() + b'"}'  # body is never empty: it has "v"

    def _verify_json(self, data: bytes) -> dict[str, Any]:
        try:
            body = json.loads(data)
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise CodecError("malformed", f"not UTF-8 JSON: {e}") from None
        if not isinstance(body, dict) or not isinstance(body.get("mac"), str):
            raise CodecError("malformed", "expected a JSON object with a \"mac\"")
        mac = body.pop("mac")
        good = self._json_mac(dumps(body))
        if not hmac.compare_digest(good, mac):
            raise CodecError("mac", "bad MAC on a JSON message")
        if body.get("v") != VERSION:
            raise CodecError("version", f"\"v\": {body.get('v')!r}, expected {VERSION}")
        return body

    def encode_request(self, client: str, req: int, op: str, args: dict[str, Any], to: str | None = None) -> bytes:
        """A client's request: `op` and `args` become the command `{"op": op, **args}` (canonical JSON)."""
        return self._sign_json({"v": VERSION, "client": client, "req": req, "op": op, "args": args, "to": to})

    def decode_request(self, data: bytes) -> tuple[m.ClientRequest, str | None]:
        """The request and the replica it was addressed to (None: whoever leads)."""
        b = self._verify_json(data)
        client, req, op, args, to = b.get("client"), b.get("req"), b.get("op"), b.get("args"), b.get("to")
        if not (isinstance(client, str) and client and isinstance(req, int) and req >= 0 and isinstance(op, str)
                and isinstance(args, dict) and (to is None or isinstance(to, str))):
            raise CodecError("malformed", "a request needs client (str), req (int >= 0), op (str), args (object)")
        command = dumps({**args, "op": op})
        return m.ClientRequest(self.site, client, req, command), to

    def encode_reply(self, reply: m.ClientReply) -> bytes:
        result = _json_result(reply.result)
        return self._sign_json({"v": VERSION, "client": reply.client, "req": reply.req, "result": result,
                                "leader": reply.sender, "stale": not reply.result})

    # ------------------------------------------------------------ the binary client frames

    def encode_requests(self, session: str, to: str | None, requests: list[tuple[str, int, bytes]]) -> bytes:
        """Binary requests `(client, req, command)` of one session; `command` is the state machine's bytes."""
        s, t = session.encode(), (to or "").encode()
        parts = [bytes((REQUESTS, VERSION)), _U16.pack(len(s)), s, _U16.pack(len(t)), t, _U16.pack(len(requests))]
        for client, req, command in requests:
            c = client.encode()
            parts += [_U16.pack(len(c)), c, _REQ_HEAD.pack(req, len(command)), command]
        body = b"".join(parts)
        return body + self._client_mac(body)

    def _verify_client(self, data: bytes, kind: int) -> _In:
        if len(data) < 2 + MAC_SIZE or data[0] != kind:
            raise CodecError("malformed", f"a client frame of {len(data)} bytes")
        view = memoryview(data)
        if not hmac.compare_digest(self._client_mac(view[:-MAC_SIZE]), view[-MAC_SIZE:]):
            raise CodecError("mac", "bad MAC on a client frame")
        if data[1] != VERSION:
            raise CodecError("version", f"client frame version {data[1]}, expected {VERSION}")
        i = _In(view[:-MAC_SIZE])
        i.pos = 2
        return i

    def decode_requests(self, data: bytes) -> tuple[str, str | None, list[m.ClientRequest]]:
        """`(session, to, requests)` of a binary request frame (`to` None: whoever leads)."""
        i = self._verify_client(data, REQUESTS)
        try:
            session, to = i.str(), i.str()
            reqs = []
            for _ in range(_U16.unpack(i._take(2))[0]):
                client = i.str()
                req, n = _REQ_HEAD.unpack(i._take(_REQ_HEAD.size))
                reqs.append(m.ClientRequest(self.site, client, req, bytes(i._take(n))))
        except (ValueError, struct.error, UnicodeDecodeError) as e:
            raise CodecError("malformed", f"binary requests: {e}") from None
        if i.pos != len(i.data):
            raise CodecError("malformed", f"binary requests: {len(i.data) - i.pos} trailing bytes")
        return session, to or None, reqs

    def encode_replies(self, leader: str, replies: list[m.ClientReply]) -> bytes:
        """One binary message with the replies for the clients of one session."""
        ld = leader.encode()
        parts = [bytes((REPLIES, VERSION)), _U16.pack(len(ld)), ld, _U16.pack(len(replies))]
        for r in replies:
            c = r.client.encode()
            parts += [_U16.pack(len(c)), c, _REPLY_HEAD.pack(r.req, not r.result, len(r.result)), r.result]
        body = b"".join(parts)
        return body + self._client_mac(body)

    def decode_replies(self, data: bytes) -> list[dict[str, Any]]:
        """The replies in a message, binary or JSON, as `decode_reply`'s dicts (`result` parsed from JSON)."""
        if data[:1] != bytes((REPLIES,)):
            return [self.decode_reply(data)]
        i = self._verify_client(data, REPLIES)
        try:
            leader = i.str()
            out = []
            for _ in range(_U16.unpack(i._take(2))[0]):
                client = i.str()
                req, stale, n = _REPLY_HEAD.unpack(i._take(_REPLY_HEAD.size))
                out.append({"client": client, "req": req, "result": _json_result(bytes(i._take(n))),
                            "leader": leader, "stale": bool(stale)})
        except (ValueError, struct.error, UnicodeDecodeError) as e:
            raise CodecError("malformed", f"binary replies: {e}") from None
        return out

    def gone_body(self, replica: str, epoch: int) -> dict[str, Any]:
        """The signed body of a replica's Last Will (published by the broker when its connection dies).

        `epoch` names that connection (liveness.py): a Will of an older connection, replayed, is stale."""
        body = {"v": VERSION, "replica": replica, "event": "gone", "epoch": epoch}
        return {**body, "mac": json.loads(self._sign_json(body))["mac"]}

    def decode_gone(self, data: bytes) -> tuple[str, int]:
        """Which replica's connection died, and that connection's epoch: a hint only (a paused process
        keeps its connection)."""
        b = self._verify_json(data)
        replica, epoch = b.get("replica"), b.get("epoch")
        if b.get("event") != "gone" or not isinstance(replica, str) or type(epoch) is not int \
                or not 0 < epoch < 1 << 64:
            raise CodecError("malformed", "a Last Will needs event 'gone', replica (str) and epoch (int, 1 to 2**64-1)")
        return replica, epoch

    def decode_reply(self, data: bytes) -> dict[str, Any]:
        """`client`, `req`, `result` (JSON), `leader` (who answered), `stale` (an older request's retry)."""
        b = self._verify_json(data)
        if not (isinstance(b.get("client"), str) and isinstance(b.get("req"), int)):
            raise CodecError("malformed", "a reply needs client (str) and req (int)")
        return b
