"""OCPP-J framing (the RPC of OCPP 1.6J and 2.0.1 over a websocket), both directions, checked against the schemas.

A frame from the CSMS is size-capped, parsed once and its payload validated against the OCPP JSON schema of
its action (the `ocpp` package's schemas) before the core sees it; anything else becomes a `BadFrame`, with the
CallError to send back when the CSMS waits for an answer. Frames we send are validated too: a payload of ours
that breaks the schema is our bug, and raises rather than reaching the CSMS.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ocpp.messages
from ocpp.exceptions import OCPPError
from ocpp.messages import Call, CallError, CallResult, unpack

MAX_FRAME = 64 * 1024  # OCPP messages are small; a larger frame is refused before parsing
VERSIONS = ("1.6", "2.0.1")
SUBPROTOCOL = {"1.6": "ocpp1.6", "2.0.1": "ocpp2.0.1"}
UID_MAX = 36
_SCHEMAS = Path(ocpp.messages.__file__).parent


@dataclass(frozen=True)
class CallIn:
    """A request of the CSMS, its payload valid for its action."""

    uid: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class ResultIn:
    """The CSMS's answer to our call `uid` (of `action`), valid for it."""

    uid: str
    action: str
    payload: dict[str, Any]


@dataclass(frozen=True)
class ErrorIn:
    """The CSMS refused our call `uid`, or its answer was not valid."""

    uid: str
    action: str
    code: str
    description: str


@dataclass(frozen=True)
class BadFrame:
    """Dropped: `reply` is the CallError to send back (a request we cannot take), or None."""

    detail: str
    reply: str | None = None


Incoming = CallIn | ResultIn | ErrorIn | BadFrame


def decode(raw: str | bytes, version: str, action_of: Callable[[str], str | None]) -> Incoming:
    """One frame from the CSMS. `action_of(uid)`: the action of our call in flight with that id, or None."""
    if len(raw) > MAX_FRAME:
        return BadFrame(f"frame of {len(raw)} bytes (at most {MAX_FRAME})")
    try:
        msg = unpack(raw)
    except OCPPError as exc:
        return BadFrame(f"{exc.code}: {str(exc.details)[:120]}")
    except (ValueError, TypeError, RecursionError) as exc:
        return BadFrame(f"not an OCPP-J frame: {type(exc).__name__}")
    if not isinstance(msg.unique_id, str) or not 0 < len(msg.unique_id) <= UID_MAX:
        return BadFrame(f"bad message id {str(msg.unique_id)[:40]!r}")
    match msg:
        case Call():
            return _call(msg, version)
        case CallResult():
            action = action_of(msg.unique_id)
            if action is None:
                return BadFrame(f"an answer to {msg.unique_id!r}, which we did not send or no longer wait for")
            if not isinstance(msg.payload, dict):
                return ErrorIn(msg.unique_id, action, "FormationViolation", "the answer is not a JSON object")
            why = invalid(CallResult(msg.unique_id, msg.payload, action), version)
            if why is not None:
                return ErrorIn(msg.unique_id, action, "FormationViolation", why)
            return ResultIn(msg.unique_id, action, msg.payload)
        case CallError():
            action = action_of(msg.unique_id)
            if action is None:
                return BadFrame(f"an error for {msg.unique_id!r}, which we did not send or no longer wait for")
            return ErrorIn(msg.unique_id, action, str(msg.error_code)[:40], str(msg.error_description)[:200])
    return BadFrame("unknown message type")


def _call(msg: Call, version: str) -> Incoming:
    if not isinstance(msg.action, str) or not msg.action.isidentifier() or len(msg.action) > 60:
        return BadFrame("bad action", error_frame(msg.unique_id, "FormationViolation", "bad action"))
    if not isinstance(msg.payload, dict):
        return BadFrame(f"{msg.action}: payload not an object",
                        error_frame(msg.unique_id, "FormationViolation", "the payload must be a JSON object"))
    if not _has_schema(msg.action, version):
        return BadFrame(f"unknown action {msg.action}",
                        error_frame(msg.unique_id, "NotImplemented", f"{msg.action} is not an OCPP {version} action"))
    why = invalid(Call(msg.unique_id, msg.action, msg.payload), version)
    if why is not None:
        code = why.split(":", 1)[0]
        return BadFrame(f"{msg.action}: {why}", error_frame(msg.unique_id, code, why[len(code) + 2:][:200]))
    return CallIn(msg.unique_id, msg.action, msg.payload)


def _has_schema(action: str, version: str) -> bool:
    """Whether `action` is a request of this version (a schema exists). Not `get_validator`: it caches what it
    reads, and the 1.6 schedules must be read with decimals by the package's own check."""
    name = action if version == "1.6" else f"{action}Request"
    return (_SCHEMAS / ("v" + version.replace(".", "")) / "schemas" / f"{name}.json").is_file()


def invalid(message: Call | CallResult, version: str) -> str | None:
    """Why `message`'s payload breaks its schema ("Code: cause"), or None. Validates a copy: the 1.6 schedules
    are checked with decimals, as the `ocpp` package does, without changing the payload the core gets."""
    copy = type(message).__new__(type(message))
    copy.__dict__.update(message.__dict__, payload=json.loads(json.dumps(message.payload)))
    try:
        from ocpp.messages import _validate_payload  # the package's one check (sync), schema per action
        _validate_payload(copy, version)
    except OCPPError as exc:
        cause = exc.details.get("cause") if isinstance(exc.details, dict) else exc.details
        return f"{exc.code}: {str(cause)[:200]}"
    return None


def call_frame(uid: str, action: str, payload: dict[str, Any], version: str) -> str:
    """Our request; ValueError if its payload breaks the schema (a bug of ours, never sent)."""
    msg = Call(uid, action, payload)
    why = invalid(msg, version)
    if why is not None:
        raise ValueError(f"our {action} breaks the OCPP {version} schema: {why}")
    return msg.to_json()


def result_frame(uid: str, action: str, payload: dict[str, Any], version: str) -> str:
    """Our answer to the CSMS's `action`; ValueError if it breaks the schema."""
    msg = CallResult(uid, payload, action)
    why = invalid(msg, version)
    if why is not None:
        raise ValueError(f"our answer to {action} breaks the OCPP {version} schema: {why}")
    return msg.to_json()


def error_frame(uid: str, code: str, description: str, details: dict[str, Any] | None = None) -> str:
    return CallError(uid, code, description, details or {}).to_json()
