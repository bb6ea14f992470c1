"""Bytes to a typed command, once, checking every field: the machine's only door.

The wire form (UTF-8 JSON object, at most MAX_COMMAND_BYTES):
    member:  {"op": OP, "args": {...}}
    signed:  {"op": OP, "args": {...}, "by": ID, "seq": N, "site": SITE, "sig": BASE64}
`args` may be left out when the command has none. Currents are amps (JSON numbers, 0.1 A
resolution), meter readings Wh (integers), prices euros per kWh. Anything else, a missing or
unknown field included, is refused with `bad_field` naming the field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from firmware.site import commands as c
from firmware.site.errors import SiteError
from firmware.site.params import (
    CP_ID_RE,
    MAX_COMMAND_BYTES,
    MAX_LIST,
    MAX_SEQ,
    MAX_TEXT,
    PRINCIPAL_ID_RE,
    SESSION_ID_RE,
    SITE_ID_RE,
    da,
)

Parser = Callable[[str, Any], Any]
REQUIRED = object()


@dataclass(frozen=True)
class Signed:
    """The signature part of a principal's request; `body` is what the signature covers."""

    by: str
    seq: int
    site: str
    sig: str
    body: dict[str, Any]


@dataclass(frozen=True)
class Decoded:
    command: c.Command
    signed: Signed | None


def _bad(name: str, expect: str, value: Any) -> SiteError:
    shown = json.dumps(value)[:40] if not isinstance(value, str) else repr(value[:40])
    return SiteError("bad_field", f"{name}: expected {expect}, got {shown}", field=name)


def ident(regex: Any, what: str) -> Parser:
    def parse(name: str, v: Any) -> str:
        if not isinstance(v, str) or not regex.match(v):
            raise _bad(name, what, v)
        return v
    return parse


def integer(lo: int, hi: int) -> Parser:
    def parse(name: str, v: Any) -> int:
        if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
            raise _bad(name, f"an integer from {lo} to {hi}", v)
        return v
    return parse


def number(lo: float, hi: float, scale: Callable[[float], int], unit: str) -> Parser:
    def parse(name: str, v: Any) -> int:
        if not isinstance(v, int | float) or isinstance(v, bool) or not math.isfinite(v) or not lo <= v <= hi:
            raise _bad(name, f"a number of {unit} from {lo} to {hi}", v)
        return scale(v)
    return parse


def boolean(name: str, v: Any) -> bool:
    if not isinstance(v, bool):
        raise _bad(name, "true or false", v)
    return v


def text(name: str, v: Any) -> str:
    if not isinstance(v, str) or len(v) > MAX_TEXT or not v.isprintable():
        raise _bad(name, f"printable text of at most {MAX_TEXT} characters", v)
    return v


def choice(*options: Any) -> Parser:
    def parse(name: str, v: Any) -> Any:
        if isinstance(v, bool) or v not in options:
            raise _bad(name, "one of " + ", ".join(map(str, options)), v)
        return v
    return parse


def optional(parser: Parser) -> Parser:
    def parse(name: str, v: Any) -> Any:
        return None if v is None else parser(name, v)
    return parse


def id_list(item: Parser) -> Parser:
    def parse(name: str, v: Any) -> tuple[str, ...]:
        if not isinstance(v, list) or not 1 <= len(v) <= MAX_LIST:
            raise _bad(name, f"a list of 1 to {MAX_LIST} ids", v)
        ids = tuple(item(name, x) for x in v)
        if len(set(ids)) != len(ids):
            raise _bad(name, "ids without repeats", v)
        return ids
    return parse


def cps_or_all(name: str, v: Any) -> tuple[str, ...] | None:
    return None if v == "all" else (CP(name, v),)


CP = ident(CP_ID_RE, "a charge point id")
PRINCIPAL = ident(PRINCIPAL_ID_RE, "a driver or operator id")
SESSION = ident(SESSION_ID_RE, "a session id (letters, digits, _ . : -, at most 64)")
AMPS = number(0, 80, da, "amps")
WH = integer(0, 10**12)
BASE64_RE = re.compile(r"^[A-Za-z0-9+/]{1,86}={0,2}$")

# op -> (command class, [(field, parser, default)]): the fields in the class's order.
OPS: dict[str, tuple[type, list[tuple[str, Parser, Any]]]] = {
    "register": (c.Register, [("cp", CP, REQUIRED), ("location", text, ""),
                              ("price_eur_kwh", number(0, 10, lambda v: round(v * 1_000_000), "euros"), REQUIRED),
                              ("max_current_a", number(6, 80, da, "amps"), REQUIRED),
                              ("phases", choice(1, 3), 3)]),
    "report": (c.Report, [("cp", CP, REQUIRED), ("plugged", boolean, REQUIRED), ("drawn_a", AMPS, REQUIRED),
                          ("ev_max_a", optional(AMPS), None), ("health", choice("ok", "degraded"), "ok"),
                          ("fault", optional(ident(CP_ID_RE, "a fault code")), None)]),
    "clear_fault": (c.ClearFault, [("cp", CP, REQUIRED)]),
    "renew": (c.Renew, [("cp", CP, REQUIRED)]),
    "ack_grant": (c.AckGrant, [("cp", CP, REQUIRED), ("seq", integer(0, MAX_SEQ), REQUIRED)]),
    "start_session": (c.StartSession, [("cp", CP, REQUIRED), ("session", SESSION, REQUIRED),
                                       ("meter_wh", WH, REQUIRED), ("driver", optional(PRINCIPAL), None)]),
    "checkpoint": (c.Checkpoint, [("cp", CP, REQUIRED), ("session", SESSION, REQUIRED), ("meter_wh", WH, REQUIRED)]),
    "stop_session": (c.StopSession, [("cp", CP, REQUIRED), ("session", SESSION, REQUIRED),
                                     ("meter_wh", WH, REQUIRED), ("reason", choice(*c.STOP_REASONS), REQUIRED)]),
    "close_lost": (c.CloseLost, [("cp", CP, REQUIRED)]),
    "expire": (c.Expire, []),
    "forget_quiet": (c.ForgetQuiet, [("quiet_ms", integer(60_000, 10**11), REQUIRED)]),
    "remote_start": (c.RemoteStart, [("cp", CP, REQUIRED), ("token", PRINCIPAL, REQUIRED),
                                     ("timeout_s", optional(number(1, 3600, lambda v: round(v * 1000), "seconds")),
                                      None)]),
    "remote_stop": (c.RemoteStop, [("cp", CP, REQUIRED), ("session", SESSION, REQUIRED)]),
    "remote_reserve": (c.RemoteReserve, [("cp", CP, REQUIRED), ("token", PRINCIPAL, REQUIRED),
                                         ("duration_s", number(1, 86_400, lambda v: round(v * 1000), "seconds"),
                                          REQUIRED)]),
    "remote_cancel_reservation": (c.RemoteCancelReservation, [("cp", CP, REQUIRED)]),
    "charging_limits": (c.ChargingLimits, [("cp", CP, REQUIRED), ("max_a", optional(AMPS), None),
                                           ("default_a", optional(AMPS), None), ("session_a", optional(AMPS), None)]),
    "request_charge": (c.RequestCharge, [("at", optional(CP), None)]),
    "reserve": (c.Reserve, [("at", CP, REQUIRED),
                            ("duration_s", optional(number(60, 86_400, lambda v: round(v * 1000), "seconds")), None)]),
    "cancel_reservation": (c.CancelReservation, []),
    "stop_charge": (c.StopCharge, []),
    "stop_cp": (c.StopCp, [("cp", cps_or_all, REQUIRED)]),
    "resume_cp": (c.ResumeCp, [("cp", cps_or_all, REQUIRED)]),
    "set_limit": (c.SetLimit, [("limit_a", number(6, 2000, da, "amps"), REQUIRED)]),
    "set_priority": (c.SetPriority, [("cp", CP, REQUIRED), ("priority", integer(0, 9), REQUIRED)]),
    "set_cp_max": (c.SetCpMax, [("cp", CP, REQUIRED),
                                ("max_current_a", optional(number(6, 80, da, "amps")), REQUIRED)]),
    "add_principal": (c.AddPrincipal, [("id", PRINCIPAL, REQUIRED), ("role", choice(*c.ROLES), REQUIRED),
                                       ("key", ident(BASE64_RE, "a base64 Ed25519 public key"), REQUIRED)]),
    "remove_principal": (c.RemovePrincipal, [("id", PRINCIPAL, REQUIRED)]),
    "ack_tickets": (c.AckTickets, [("sessions", id_list(SESSION), REQUIRED)]),
    "whoami": (c.WhoAmI, []),
}

SIGNED_KEYS = {"by", "seq", "site", "sig"}


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise ValueError("a key appears twice")
    return obj


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(command: bytes) -> dict[str, Any]:
    if len(command) > MAX_COMMAND_BYTES:
        raise SiteError("too_large", f"{len(command)} bytes; the site takes at most {MAX_COMMAND_BYTES}")
    try:
        obj = json.loads(command.decode("utf-8"), object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except (ValueError, RecursionError) as exc:
        raise SiteError("malformed", f"not a JSON object: {str(exc)[:80]}") from None
    if not isinstance(obj, dict):
        raise SiteError("malformed", "the command must be a JSON object")
    return obj


def decode(command: bytes) -> Decoded:
    obj = parse_json(command)
    op = obj.get("op")
    if not isinstance(op, str) or op not in OPS:
        raise SiteError("unknown_op", f"no command {str(op)[:40]!r}; the site knows " + ", ".join(sorted(OPS)))
    extra = set(obj) - {"op", "args"} - SIGNED_KEYS
    if extra:
        raise _bad(sorted(extra)[0], "no such field", obj[sorted(extra)[0]])
    signed = None
    if SIGNED_KEYS & set(obj):
        missing = sorted(SIGNED_KEYS - set(obj))
        if missing:
            raise _bad(missing[0], "a value (a signed request has by, seq, site and sig)", None)
        signed = Signed(by=PRINCIPAL("by", obj["by"]), seq=integer(1, MAX_SEQ)("seq", obj["seq"]),
                        site=ident(SITE_ID_RE, "a site id")("site", obj["site"]),
                        sig=ident(BASE64_RE, "a base64 signature")("sig", obj["sig"]),
                        body={k: v for k, v in obj.items() if k != "sig"})
    return Decoded(_command(op, obj.get("args", {})), signed)


def _command(op: str, args: Any) -> c.Command:
    cls, spec = OPS[op]
    if not isinstance(args, dict):
        raise _bad("args", "a JSON object", args)
    unknown = set(args) - {name for name, _, _ in spec}
    if unknown:
        name = sorted(unknown)[0]
        raise _bad(name, f"no such field for {op}", args[name])
    values = []
    for name, parse, default in spec:
        if name not in args:
            if default is REQUIRED:
                raise _bad(name, "a value (it is required)", None)
            values.append(default)
        else:
            values.append(parse(name, args[name]))
    return cls(*values)
