"""The wire forms of Paxos messages, each signed with HMAC-SHA256 under the site key.

Replica to replica (the internal inbox topics): a compact binary frame, packed field by field
from the message dataclass's own type hints (`fields.py`), so a field added to a message needs no
codec change as long as its type is one of those there:

    frame  = body mac:32                  body = version:u8 tag:u8 fields...
    bundle = 0xB2 (len:u32 body)* mac:32  several messages for one peer in one MQTT message
    mac    = HMAC(key, "evnet-paxos\0" site "\0" body)  or, for a bundle, under "evnet-bundle\0" site "\0"

Clients (the public `request` and `reply` topics): JSON objects carrying `"v": 1` and a hex
`mac` — the public form, for any tool — or, from this project's own client, binary frames that
cost a fraction of the JSON's Python work at both ends and carry the requests and replies of
several logical clients sharing one connection (a session):

    json     = the JSON text of the other fields (ours is canonical: sorted keys, no spaces, ASCII)
               with `,"mac":"<64 hex>"}` in place of its closing brace;
               mac = HMAC(key, "evnet-json\0" site "\0" that text, closing brace included)
    requests = 0xC1 version:u8 session:str to:str n:u16 (client:str req:u64 command:bytes)* mac:32
    replies  = 0xC2 version:u8 leader:str n:u16 (client:str req:u64 stale:u8 result:bytes)* mac:32

(str = len:u16 utf-8, bytes = len:u32; `to` "" = whoever leads; mac = HMAC(key,
"evnet-client\0" site "\0" everything before it).) Replies to a binary request go, one
message per session per Ready, to `reply/{session}`.

Drivers and operators hold no site key: their requests come **open**, a JSON object without the
MAC whose `command` is the signed site request itself (`decode_open_request`, `keyed=False`):

    open     = {"v": 1, "client": id, "req": n, "command": {...}, "to": null}

Its replies are signed JSON like any other, which such a client cannot check (the broker's ACL is
its wall). A JSON request that ends with a MAC field is keyed, and a bad MAC there is a `mac` drop.

This is the site's trust boundary. Every decoder checks, in this order: the size (nothing over
MAX_MESSAGE is even hashed), the MAC over the raw bytes as they came (nothing is parsed or
unpacked before it), then the form: counts and lengths against the bytes there, integers up to
MAX_UINT, client ids, commands up to MAX_COMMAND. It raises only `CodecError`, whose `reason`
the transport counts ("too_big", "mac", "malformed", "version").
"""

from __future__ import annotations

import hmac
import json
import re
import struct
from typing import Any

from firmware.paxos.core import messages as m
from firmware.paxos.core.canonical import dumps
from firmware.paxos.core.sizes import MAC_SIZE, MAX_BODY, MAX_COMMAND, MAX_MESSAGE
from firmware.paxos.wire.fields import MAX_UINT, U16, U32, In, Out, plan
from firmware.paxos.wire.mac import Mac

VERSION = 1
BUNDLE = 0xB2  # first byte of a message that carries several bodies (a frame starts with VERSION)
# Wire tags: append only, never reorder (a tag is on the wire in every frame).
TAGS: tuple[type, ...] = (m.Prepare, m.Promise, m.Accept, m.AcceptReply, m.Commit, m.Heartbeat, m.HeartbeatReply,
                          m.Nack, m.CatchUpRequest, m.CatchUpReply, m.Snapshot, m.ClientRequest, m.Forward,
                          m.ClientReply, m.PreVote, m.PreVoteReply, m.SnapshotRequest)
REQUESTS, REPLIES = 0xC1, 0xC2  # first byte of the binary client frames (JSON starts with "{")
_REQ_HEAD, _REPLY_HEAD = struct.Struct(">QI"), struct.Struct(">QBI")

# Size caps (sizes.py). A message (any payload: a frame, a bundle, a client frame, a snapshot
# chunk, a reply) is at most MAX_MESSAGE, the broker's `message_size_limit` too; a bundle holds at
# most MAX_FRAMES bodies; a client's command at most MAX_COMMAND bytes, so a slot of `max_batch`
# (64) commands still fits one message; a JSON request at most MAX_JSON_REQUEST.
MAX_FRAMES = 1024
MAX_JSON_REQUEST = 2 * MAX_COMMAND
CLIENT_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")  # client and session ids (a topic level)
_MAC_FIELD = b',"mac":"'
_OPEN_FIELDS = frozenset(("v", "client", "req", "command", "to"))
_JSON_TAIL = len(_MAC_FIELD) + 2 * MAC_SIZE + 2  # ,"mac":"<64 hex>"}
_PLANS = {cls: (tag, plan(cls)) for tag, cls in enumerate(TAGS)}


class CodecError(ValueError):
    """A frame that is not a valid, authentic message; `reason` is a short counter name."""

    def __init__(self, reason: str, detail: str) -> None:
        self.reason = reason
        super().__init__(f"{reason}: {detail}")


def _check_size(data: bytes | memoryview, limit: int, what: str) -> None:
    if len(data) > limit:
        raise CodecError("too_big", f"{what} of {len(data)} bytes, more than the {limit} allowed")


def _client_id(v: Any, what: str) -> str:
    if not (isinstance(v, str) and CLIENT_ID_RE.fullmatch(v)):
        raise CodecError("malformed", f"{what} {str(v)[:80]!r} is not 1 to 64 of A-Z a-z 0-9 _ . : -")
    return v


def _req(v: Any) -> int:
    if type(v) is not int or not 0 <= v <= MAX_UINT:
        raise CodecError("malformed", f"req {str(v)[:30]} is not an integer from 0 to {MAX_UINT}")
    return v


def _command(c: bytes) -> bytes:
    if len(c) > MAX_COMMAND:
        raise CodecError("malformed", f"a command of {len(c)} bytes, more than the {MAX_COMMAND} allowed")
    return c


def _json_result(raw: bytes) -> Any:
    """A state machine's result as JSON (None for a stale retry's empty answer)."""
    try:
        return json.loads(raw) if raw else None
    except (ValueError, RecursionError):  # not UTF-8 or not JSON, an int of 5,000 digits, deep nesting
        return {"error": "result is not JSON", "raw": raw.decode("latin-1")}


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


class Codec:
    """Encode, sign, verify and decode the messages of one site under its key."""

    def __init__(self, site: str, key: bytes) -> None:
        self.site = site
        self._mac = Mac(key, b"evnet-paxos\0" + site.encode() + b"\0").digest
        self._bundle_mac = Mac(key, b"evnet-bundle\0" + site.encode() + b"\0").digest
        self._client_mac = Mac(key, b"evnet-client\0" + site.encode() + b"\0").digest
        self._json_mac = Mac(key, b"evnet-json\0" + site.encode() + b"\0").hexdigest

    # ------------------------------------------------------------ replica to replica

    def encode_body(self, msg: m.Message) -> bytes:
        """`msg` unsigned, for `seal`; CodecError("too_big") if it could never travel."""
        tag, fields = _PLANS[type(msg)]
        out = Out()
        out.parts.append(bytes((VERSION, tag)))
        for name, enc, _ in fields:
            enc(out, getattr(msg, name))
        body = b"".join(out.parts)
        _check_size(body, MAX_BODY, f"a {type(msg).__name__}")
        return body

    def encode(self, msg: m.Message) -> bytes:
        """One message as a signed frame of its own."""
        body = self.encode_body(msg)
        return body + self._mac(body)

    def seal(self, bodies: list[bytes]) -> list[bytes]:
        """Bodies for one peer as MQTT messages: a frame if one, else bundles of at most MAX_MESSAGE, MAX_FRAMES."""
        if len(bodies) == 1:
            return [bodies[0] + self._mac(bodies[0])]
        out: list[bytes] = []
        parts: list[bytes] = [bytes((BUNDLE,))]
        size = 1 + MAC_SIZE
        for body in bodies:
            if len(parts) > 2 * MAX_FRAMES or size + 4 + len(body) > MAX_MESSAGE:
                out.append(self._signed_bundle(parts))
                parts, size = [bytes((BUNDLE,))], 1 + MAC_SIZE
            parts += [U32.pack(len(body)), body]
            size += 4 + len(body)
        out.append(self._signed_bundle(parts))
        return out

    def _signed_bundle(self, parts: list[bytes]) -> bytes:
        data = b"".join(parts)
        return data + self._bundle_mac(data)

    def unbundle(self, payload: bytes) -> list[memoryview]:
        """The authentic bodies of one MQTT message (a frame or a bundle), for `decode_body`.

        Size first, then the MAC over the raw bytes: a forged bundle costs one hash, never an unpacking.
        """
        _check_size(payload, MAX_MESSAGE, "a message")
        if len(payload) < 2 + MAC_SIZE:
            raise CodecError("malformed", f"a message of {len(payload)} bytes is too short")
        view = memoryview(payload)
        signed, mac = view[:-MAC_SIZE], view[-MAC_SIZE:]
        if payload[0] != BUNDLE:
            if not hmac.compare_digest(self._mac(signed), mac):
                raise CodecError("mac", "bad MAC (another site's key, or tampered)")
            return [signed]
        if not hmac.compare_digest(self._bundle_mac(signed), mac):
            raise CodecError("mac", "bad MAC on a bundle (another site's key, or tampered)")
        bodies, pos, end = [], 1, len(signed)
        while pos < end:
            if len(bodies) == MAX_FRAMES:
                raise CodecError("malformed", f"a bundle of more than {MAX_FRAMES} frames")
            if pos + 4 > end:
                raise CodecError("malformed", "bundle ends inside a frame length")
            (n,) = U32.unpack_from(signed, pos)
            if pos + 4 + n > end:
                raise CodecError("malformed", f"bundle frame of {n} bytes runs past the end")
            bodies.append(signed[pos + 4:pos + 4 + n])
            pos += 4 + n
        return bodies

    def decode_body(self, body: bytes | memoryview) -> m.Message:
        """The message in an authentic body (from `unbundle`)."""
        if len(body) < 2:
            raise CodecError("malformed", f"a frame of {len(body)} bytes")
        if body[0] != VERSION:
            raise CodecError("version", f"wire version {body[0]}, expected {VERSION}")
        if body[1] >= len(TAGS):
            raise CodecError("malformed", f"unknown message tag {body[1]}")
        cls = TAGS[body[1]]
        i = In(memoryview(body)[2:])
        try:
            fields = {name: dec(i) for name, _, dec in _PLANS[cls][1]}
        except (ValueError, struct.error) as e:  # UnicodeDecodeError is a ValueError
            raise CodecError("malformed", f"{cls.__name__}: {e}") from None
        if i.left:
            raise CodecError("malformed", f"{cls.__name__}: {i.left} trailing bytes")
        return cls(**fields)

    def decode(self, frame: bytes) -> m.Message:
        """The message in a frame of its own (not a bundle)."""
        bodies = self.unbundle(frame)
        if len(bodies) != 1:
            raise CodecError("malformed", f"a bundle of {len(bodies)} where one frame was expected")
        return self.decode_body(bodies[0])

    # ------------------------------------------------------------ the public JSON topics

    def _sign_json(self, body: dict[str, Any]) -> bytes:
        canon = dumps(body)
        mac = self._json_mac(canon)
        return canon[:-1] + b',"mac":"' + mac.encode() + b'"}'  # body is never empty: it has "v"

    @staticmethod
    def signed_json(signed: dict[str, Any]) -> bytes:
        """The wire form of a body signed as a dict (its "mac" among the fields, as `gone_body` gives it).

        The same bytes `_sign_json` makes: the MAC is checked on them as they come, so a signed
        body must travel in exactly this form (not re-serialised, e.g. by `encode_payload`).
        """
        rest = {k: v for k, v in signed.items() if k != "mac"}
        return dumps(rest)[:-1] + b',"mac":"' + str(signed["mac"]).encode() + b'"}'

    def _verify_json(self, data: bytes) -> dict[str, Any]:
        """The body of a signed JSON message, its MAC checked on the raw bytes before any parsing."""
        _check_size(data, MAX_MESSAGE, "a JSON message")
        if len(data) < _JSON_TAIL + 2 or data[-_JSON_TAIL:-_JSON_TAIL + len(_MAC_FIELD)] != _MAC_FIELD \
                or data[-2:] != b'"}':
            raise CodecError("malformed", 'a signed JSON message ends with ,"mac":"<64 hex digits>"}')
        view = memoryview(data)
        good = self._json_mac(view[:-_JSON_TAIL], b"}").encode()
        if not hmac.compare_digest(good, view[-2 - 2 * MAC_SIZE:-2]):
            raise CodecError("mac", "bad MAC on a JSON message")
        try:
            body = json.loads(data)
        except (ValueError, RecursionError) as e:  # authentic, so a key holder's bug: still not our end
            raise CodecError("malformed", f"not UTF-8 JSON: {type(e).__name__}: {str(e)[:100]}") from None
        if not isinstance(body, dict):
            raise CodecError("malformed", "expected a JSON object")
        del body["mac"]
        if body.get("v") != VERSION:
            raise CodecError("version", f"\"v\": {str(body.get('v'))[:20]}, expected {VERSION}")
        return body

    def encode_request(self, client: str, req: int, op: str, args: dict[str, Any], to: str | None = None) -> bytes:
        """A client's request: `op` and `args` become the command `{"op": op, **args}` (canonical JSON)."""
        return self._sign_json({"v": VERSION, "client": client, "req": req, "op": op, "args": args, "to": to})

    def decode_request(self, data: bytes) -> tuple[m.ClientRequest, str | None]:
        """The request and the replica it was addressed to (None: whoever leads)."""
        _check_size(data, MAX_JSON_REQUEST, "a JSON request")
        b = self._verify_json(data)
        client, req, op, args, to = b.get("client"), b.get("req"), b.get("op"), b.get("args"), b.get("to")
        if not (isinstance(op, str) and isinstance(args, dict) and (to is None or isinstance(to, str))):
            raise CodecError("malformed", "a request needs client (str), req (int >= 0), op (str), args (object)")
        try:
            command = dumps({**args, "op": op})
        except (ValueError, RecursionError) as e:
            raise CodecError("malformed", f"args: {type(e).__name__}") from None
        return m.ClientRequest(self.site, _client_id(client, "client id"), _req(req), _command(command)), to

    def is_signed_json(self, data: bytes) -> bool:
        """True if `data` ends as a signed JSON message does (its MAC is checked by the decoder)."""
        return data[-_JSON_TAIL:-_JSON_TAIL + len(_MAC_FIELD)] == _MAC_FIELD and data[-2:] == b'"}'

    def decode_open_request(self, data: bytes) -> tuple[m.ClientRequest, str | None]:
        """An open request (no site MAC): `{"v": 1, "client", "req", "command": {...}, "to"}`.

        A driver's or operator's: only the Ed25519 signature inside the command vouches for it, so
        it comes out `keyed=False` and the replica's admission check, then the machine, judge it.
        """
        _check_size(data, MAX_JSON_REQUEST, "an open request")
        try:
            b = json.loads(data, parse_constant=_no_constant)
        except (ValueError, RecursionError) as e:  # not UTF-8, not JSON, an int of 5,000 digits, deep nesting
            raise CodecError("malformed", f"not UTF-8 JSON: {type(e).__name__}: {str(e)[:100]}") from None
        if not isinstance(b, dict):
            raise CodecError("malformed", "expected a JSON object")
        if b.get("v") != VERSION:
            raise CodecError("version", f"\"v\": {str(b.get('v'))[:20]}, expected {VERSION}")
        unknown = sorted(set(b) - _OPEN_FIELDS)
        if unknown:
            raise CodecError("malformed", f"unknown fields {str(unknown[:5])[:100]}")
        command, to = b.get("command"), b.get("to")
        if not (isinstance(command, dict) and (to is None or isinstance(to, str))):
            raise CodecError("malformed", "an open request needs client (str), req (int >= 0), command (object)")
        try:
            raw = dumps(command)
        except (ValueError, RecursionError) as e:
            raise CodecError("malformed", f"command: {type(e).__name__}") from None
        client = _client_id(b.get("client"), "client id")
        return m.ClientRequest(self.site, client, _req(b.get("req")), _command(raw), keyed=False), to

    @staticmethod
    def encode_open_request(client: str, req: int, command: bytes, to: str | None = None) -> bytes:
        """An open request carrying `command` (the JSON object of a signed site request)."""
        return dumps({"v": VERSION, "client": client, "req": req, "command": json.loads(command), "to": to})

    @staticmethod
    def decode_reply_unverified(data: bytes) -> dict[str, Any]:
        """A reply as an open client (no site key) reads it: parsed, its MAC not checked.

        Such a client cannot tell the site's answer from a forgery; the broker's ACL, by which only
        the site's members may write `reply/{client}`, is what it trusts."""
        _check_size(data, MAX_MESSAGE, "a reply")
        try:
            b = json.loads(data)
        except (ValueError, RecursionError) as e:
            raise CodecError("malformed", f"not UTF-8 JSON: {type(e).__name__}: {str(e)[:100]}") from None
        if not (isinstance(b, dict) and isinstance(b.get("client"), str) and isinstance(b.get("leader", ""), str)):
            raise CodecError("malformed", "a reply needs client (str), req (int) and leader (str)")
        if b.get("v") != VERSION:
            raise CodecError("version", f"\"v\": {str(b.get('v'))[:20]}, expected {VERSION}")
        _req(b.get("req"))
        b.pop("mac", None)
        return b

    def encode_reply(self, reply: m.ClientReply) -> bytes:
        result = _json_result(reply.result)
        return self._sign_json({"v": VERSION, "client": reply.client, "req": reply.req, "result": result,
                                "leader": reply.sender, "stale": not reply.result})

    # ------------------------------------------------------------ the binary client frames

    def encode_requests(self, session: str, to: str | None, requests: list[tuple[str, int, bytes]]) -> bytes:
        """Binary requests `(client, req, command)` of one session; `command` is the state machine's bytes."""
        s, t = session.encode(), (to or "").encode()
        parts = [bytes((REQUESTS, VERSION)), U16.pack(len(s)), s, U16.pack(len(t)), t, U16.pack(len(requests))]
        for client, req, command in requests:
            c = client.encode()
            parts += [U16.pack(len(c)), c, _REQ_HEAD.pack(req, len(command)), command]
        body = b"".join(parts)
        return body + self._client_mac(body)

    def _verify_client(self, data: bytes, kind: int) -> In:
        _check_size(data, MAX_MESSAGE, "a client frame")
        if len(data) < 2 + MAC_SIZE or data[0] != kind:
            raise CodecError("malformed", f"a client frame of {len(data)} bytes")
        view = memoryview(data)
        if not hmac.compare_digest(self._client_mac(view[:-MAC_SIZE]), view[-MAC_SIZE:]):
            raise CodecError("mac", "bad MAC on a client frame")
        if data[1] != VERSION:
            raise CodecError("version", f"client frame version {data[1]}, expected {VERSION}")
        i = In(view[:-MAC_SIZE])
        i.pos = 2
        return i

    @staticmethod
    def claimed_session(data: bytes) -> str | None:
        """The session a binary request frame names, NOT verified: only to tell a client its key is wrong."""
        if len(data) < 4 or data[0] != REQUESTS:
            return None
        session = data[4:4 + ((data[2] << 8) | data[3])].decode("ascii", errors="replace")
        return session if CLIENT_ID_RE.fullmatch(session) else None

    def decode_requests(self, data: bytes) -> tuple[str, str | None, list[m.ClientRequest]]:
        """`(session, to, requests)` of a binary request frame (`to` None: whoever leads)."""
        i = self._verify_client(data, REQUESTS)
        try:
            session, to = _client_id(i.str(), "session id"), i.str()
            reqs = []
            for _ in range(i.u16()):
                client = _client_id(i.str(), "client id")
                req, n = _REQ_HEAD.unpack(i.take(_REQ_HEAD.size))
                reqs.append(m.ClientRequest(self.site, client, _req(req), _command(bytes(i.take(n)))))
        except CodecError:
            raise
        except (ValueError, struct.error) as e:  # UnicodeDecodeError is a ValueError
            raise CodecError("malformed", f"binary requests: {e}") from None
        if i.left:
            raise CodecError("malformed", f"binary requests: {i.left} trailing bytes")
        return session, to or None, reqs

    def encode_replies(self, leader: str, replies: list[m.ClientReply]) -> bytes:
        """One binary message with the replies for the clients of one session."""
        ld = leader.encode()
        parts = [bytes((REPLIES, VERSION)), U16.pack(len(ld)), ld, U16.pack(len(replies))]
        for r in replies:
            c = r.client.encode()
            parts += [U16.pack(len(c)), c, _REPLY_HEAD.pack(r.req, not r.result, len(r.result)), r.result]
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
            for _ in range(i.u16()):
                client = i.str()
                req, stale, n = _REPLY_HEAD.unpack(i.take(_REPLY_HEAD.size))
                out.append({"client": client, "req": _req(req), "result": _json_result(bytes(i.take(n))),
                            "leader": leader, "stale": bool(stale)})
        except CodecError:
            raise
        except (ValueError, struct.error) as e:  # UnicodeDecodeError is a ValueError
            raise CodecError("malformed", f"binary replies: {e}") from None
        if i.left:
            raise CodecError("malformed", f"binary replies: {i.left} trailing bytes")
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
        if not (isinstance(b.get("client"), str) and isinstance(b.get("leader", ""), str)):
            raise CodecError("malformed", "a reply needs client (str), req (int) and leader (str)")
        _req(b.get("req"))
        return b
