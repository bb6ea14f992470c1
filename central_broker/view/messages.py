"""What Central and the driver app hear, decoded and checked: bytes from the broker in, typed messages out (the
only door of both, and of Home Assistant's adapter).

Every field is size-capped and range-checked here, before the view sees it: a message that fails
is `BadMessage(reason)` (the caller drops it, counts it and logs it with its topic). A message on a
topic Central does not read, or a binary frame on `request`/`reply` (the clients' compact form,
docs/paxos.md), is `None`: nothing wrong, nothing to show.

    msg = decode("evnet", "evnet/demo/cp/cp1/status", payload)   # CpStatus | Telemetry | ... | None

Each message names its site (`msg.site`): a reader of one site (the driver app) ignores the others.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from evnet.mqtt import PayloadError, decode_payload

STATUSES = ("AVAILABLE", "RESERVED", "CHARGING", "OUT_OF_ORDER", "FAULTED", "DISCONNECTED")
ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")           # sites and charge points
PRINCIPAL_RE = re.compile(r"^[A-Za-z0-9._@:-]{1,64}$")       # drivers, operators, client ids
SESSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
MAX_TEXT = 200            # any free text shown (location, fault, reason)
MAX_BYTES = {"status": 4096, "telemetry": 16384, "monitor": 8192, "request": 16384, "reply": 16384,
             "state": 1 << 20}
MAX_CPS_PER_SITE = 64     # the site machine holds 16; a state naming more is not a site's
MAX_TICKETS = 100         # the state carries at most one ack_tickets' worth


class BadMessage(ValueError):  # noqa: N818 - reads as what it is
    """A message that failed its checks: `reason` is short and stable (it keys the folded log line)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class CpStatus:
    site: str
    cp: str
    status: str
    location: str | None
    price_eur_kwh: float | None
    max_current_a: float | None
    fault: str | None
    source: str | None
    ts: float | None


@dataclass(frozen=True)
class Ticket:
    """A session's ticket: the site's (from its state) or the engine's (its last telemetry, which alone has the
    price, the duration and the end)."""

    site: str
    session: str
    cp: str
    driver: str | None
    kwh: float
    eur: float
    reason: str
    body: dict[str, Any]   # the ticket as it came (checked, capped), kept in the registry
    price_eur_kwh: float | None = None
    duration_s: float | None = None
    end_ts: float | None = None


@dataclass(frozen=True)
class Telemetry:
    site: str
    cp: str
    session: str | None
    driver: str | None
    power_kw: float | None
    energy_kwh: float | None
    cost_eur: float | None
    current_a: float | None
    limit_a: float | None
    limit_reason: str | None
    ts: float | None
    ticket: Ticket | None   # the session's last message carries its (engine's) ticket


@dataclass(frozen=True)
class MonitorEvent:
    site: str
    cp: str
    event: str
    fault: str | None


@dataclass(frozen=True)
class SiteCp:
    """One charge point as the site's state shows it."""

    cp: str
    status: str
    location: str
    price_eur_kwh: float
    grant_a: float
    limit_reason: str | None
    driver: str | None


@dataclass(frozen=True)
class Held:
    """A reservation at a charge point, or a driver's request waiting there for the EV (site time, ms)."""

    cp: str
    driver: str
    expires_ms: int


@dataclass(frozen=True)
class SiteSession:
    """A session in progress as the site's state shows it."""

    session: str
    cp: str
    driver: str | None
    energy_wh: int
    stop_requested: str | None


@dataclass(frozen=True)
class SiteState:
    site: str
    slot: int
    limit_a: float
    drawing_a: float
    cps: tuple[SiteCp, ...]
    reservations: tuple[Held, ...]
    tickets: tuple[Ticket, ...]
    tickets_waiting: int
    sessions: tuple[SiteSession, ...] = ()
    waiting: tuple[Held, ...] = ()


@dataclass(frozen=True)
class Request:
    """Someone asked the site for something (an open request: the principal and its signed op)."""

    site: str
    client: str
    req: int
    op: str
    by: str | None
    args: dict[str, Any]


@dataclass(frozen=True)
class Reply:
    site: str
    client: str
    req: int
    result: dict[str, Any]


Message = CpStatus | Telemetry | MonitorEvent | SiteState | Request | Reply


# ---------------------------------------------------------------------- field checks

def _text(body: dict[str, Any], key: str, limit: int = MAX_TEXT) -> str | None:
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or len(v) > limit:
        raise BadMessage("bad_field", f"{key}: expected a string of at most {limit} characters")
    return v


def _ident(body: dict[str, Any], key: str, pattern: re.Pattern[str], required: bool = False) -> str | None:
    v = body.get(key)
    if v is None and not required:
        return None
    if not isinstance(v, str) or not pattern.match(v):
        raise BadMessage("bad_field", f"{key}: not a valid id")
    return v


def _num(body: dict[str, Any], key: str, lo: float, hi: float, required: bool = False) -> float | None:
    v = body.get(key)
    if v is None and not required:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or not lo <= v <= hi:
        raise BadMessage("bad_field", f"{key}: expected a number from {lo:g} to {hi:g}")
    return float(v)


def _int(body: dict[str, Any], key: str, lo: int, hi: int) -> int:
    v = body.get(key)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise BadMessage("bad_field", f"{key}: expected an integer from {lo} to {hi}")
    return v


def _obj(body: dict[str, Any], key: str) -> dict[str, Any]:
    v = body.get(key)
    if not isinstance(v, dict):
        raise BadMessage("bad_field", f"{key}: expected an object")
    return v


def _list(body: dict[str, Any], key: str, cap: int) -> list[Any]:
    v = body.get(key, [])
    if not isinstance(v, list) or len(v) > cap:
        raise BadMessage("bad_field", f"{key}: expected a list of at most {cap}")
    return v


TS_MAX = 1e11  # Unix seconds, with room for a fast domain clock


# ---------------------------------------------------------------------- per topic

def _status(site: str, cp: str, b: dict[str, Any]) -> CpStatus:
    status = b.get("status")
    if status not in STATUSES:
        raise BadMessage("bad_status", repr(status)[:40])
    return CpStatus(site, cp, status, _text(b, "location"), _num(b, "price_eur_kwh", 0, 10),
                    _num(b, "max_current_a", 0, 80), _text(b, "fault"), _text(b, "source", 32),
                    _num(b, "ts", 0, TS_MAX))


def ticket_of(site: str, t: Any, engine: bool) -> Ticket:
    """A ticket from the site's state (`session`, `kwh`, `eur`) or an engine's telemetry (`session_id`, `cost_eur`)."""
    if not isinstance(t, dict) or len(t) > 32:
        raise BadMessage("bad_field", "ticket: expected an object")
    session = _ident(t, "session_id" if engine else "session", SESSION_RE, required=True)
    cp = _ident(t, "cp", ID_RE, required=True)
    kwh = _num(t, "kwh", 0, 1e6, required=True)
    eur = _num(t, "cost_eur" if engine else "eur", 0, 1e7, required=True)
    body = {k: v for k, v in t.items() if isinstance(k, str) and len(k) <= 32 and
            (v is None or isinstance(v, bool | int | float) or (isinstance(v, str) and len(v) <= MAX_TEXT))}
    duration = _num(t, "duration_s", 0, 1e9)
    if not engine and isinstance(t.get("start_ms"), int) and isinstance(t.get("end_ms"), int):
        duration = max(0, min(t["end_ms"] - t["start_ms"], 10**12)) / 1000  # site time: only the length means much
    return Ticket(site, session, cp, _ident(t, "driver", PRINCIPAL_RE),  # type: ignore[arg-type]
                  kwh, eur, _text(t, "reason") or "", body,  # type: ignore[arg-type]
                  _num(t, "price_eur_kwh", 0, 10), duration, _num(t, "end_ts", 0, TS_MAX))


def _telemetry(site: str, cp: str, b: dict[str, Any]) -> Telemetry:
    ticket = ticket_of(site, b["ticket"], engine=True) if b.get("final") is True and "ticket" in b else None
    if ticket is not None and ticket.cp != cp:
        raise BadMessage("wrong_cp", "ticket: of another charge point")
    if ticket is not None and b.get("session") is not None and ticket.session != b.get("session"):
        raise BadMessage("bad_field", "ticket: of another session")
    return Telemetry(site, cp, _ident(b, "session", SESSION_RE), _ident(b, "driver", PRINCIPAL_RE),
                     _num(b, "power_kw", -1000, 1000), _num(b, "energy_kwh", 0, 1e6), _num(b, "cost_eur", 0, 1e7),
                     _num(b, "current_a", 0, 1000), _num(b, "limit_a", 0, 1000), _text(b, "limit_reason", 40),
                     _num(b, "ts", 0, TS_MAX), ticket)


def _monitor(site: str, cp: str, b: dict[str, Any]) -> MonitorEvent:
    event = _text(b, "event", 40)
    if event is None:
        raise BadMessage("bad_field", "event: missing")
    return MonitorEvent(site, cp, event, _text(b, "fault"))


def _site_cp(cp: Any, b: Any) -> SiteCp:
    if not isinstance(cp, str) or not ID_RE.match(cp) or not isinstance(b, dict):
        raise BadMessage("bad_field", "charge_points: expected ids to objects")
    status = b.get("status")
    if status not in STATUSES:
        raise BadMessage("bad_status", repr(status)[:40])
    return SiteCp(cp, status, _text(b, "location") or "", _num(b, "price_eur_kwh", 0, 10) or 0.0,
                  _num(b, "grant_a", 0, 2000) or 0.0, _text(b, "limit_reason", 40), _ident(b, "driver", PRINCIPAL_RE))


def _state(site: str, b: dict[str, Any]) -> SiteState:
    if b.get("site", site) != site:
        raise BadMessage("wrong_site", f"a state of {str(b.get('site'))[:40]!r} on {site}'s topic")
    cps = _obj(b, "charge_points")
    if len(cps) > MAX_CPS_PER_SITE:
        raise BadMessage("too_many", f"{len(cps)} charge points")
    tickets = tuple(ticket_of(site, t, engine=False) for t in _list(b, "tickets", MAX_TICKETS))
    sessions = tuple(SiteSession(_ident(r, "session", SESSION_RE, True), _ident(r, "cp", ID_RE, True),  # type: ignore[arg-type]
                                 _ident(r, "driver", PRINCIPAL_RE), _int(r, "energy_wh", 0, 1 << 40),
                                 _text(r, "stop_requested", 40)) for r in _rows(b, "sessions"))
    return SiteState(site, _int(b, "slot", 0, 1 << 62), _num(b, "limit_a", 0, 2000, True) or 0.0,
                     _num(b, "drawing_a", 0, 100_000) or 0.0, tuple(_site_cp(k, v) for k, v in cps.items()),
                     _held(b, "reservations"), tickets, _int(b, "tickets_waiting", 0, 1 << 31), sessions,
                     _held(b, "waiting"))


def _rows(b: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """A list of objects, at most one per charge point (reservations, waiting requests, sessions)."""
    rows = _list(b, key, MAX_CPS_PER_SITE)
    if not all(isinstance(r, dict) for r in rows):
        raise BadMessage("bad_field", f"{key}: expected objects")
    return rows


def _held(b: dict[str, Any], key: str) -> tuple[Held, ...]:
    return tuple(Held(_ident(r, "cp", ID_RE, True), _ident(r, "driver", PRINCIPAL_RE, True),  # type: ignore[arg-type]
                      _int(r, "expires_ms", 0, 1 << 62)) for r in _rows(b, key))


def _request(site: str, b: dict[str, Any]) -> Request:
    client = _ident(b, "client", PRINCIPAL_RE, True)
    req = _int(b, "req", 0, (1 << 63) - 1)
    if "command" in b:  # open: a driver's or operator's signed command
        cmd = _obj(b, "command")
        op, by, args = cmd.get("op"), _ident(cmd, "by", PRINCIPAL_RE), cmd.get("args", {})
    else:               # keyed: a member-role tool's
        op, by, args = b.get("op"), None, b.get("args", {})
        if isinstance(args, dict) and isinstance(args.get("args"), dict):
            args = args["args"]
    if not isinstance(op, str) or not 0 < len(op) <= 32 or not isinstance(args, dict) or len(args) > 16:
        raise BadMessage("bad_field", "command: expected an op and its args")
    shown = {k: v for k, v in args.items() if k != "key" and isinstance(k, str) and len(k) <= 32
             and (v is None or isinstance(v, bool | int | float) or (isinstance(v, str) and len(v) <= 80)
                  or (isinstance(v, list) and len(v) <= 100))}
    return Request(site, client, req, op, by, shown)  # type: ignore[arg-type]


def _reply(site: str, client: str, b: dict[str, Any]) -> Reply:
    result = _obj(b, "result")
    shown = {k: v for k, v in list(result.items())[:32] if isinstance(k, str) and len(k) <= 32 and
             (v is None or isinstance(v, bool | int | float) or (isinstance(v, str) and len(v) <= MAX_TEXT))}
    return Reply(site, client, _int(b, "req", 0, (1 << 63) - 1), shown)


def decode(prefix: str, topic: str, payload: bytes) -> Message | None:
    """The message on `topic`, checked; None for a topic Central does not show; `BadMessage` if it fails."""
    if not topic.startswith(prefix + "/"):
        return None
    parts = topic[len(prefix) + 1:].split("/")
    match parts:
        case [site, "cp", cp, kind] if kind in ("status", "telemetry", "monitor"):
            pass
        case [site, "state"]:
            kind, cp = "state", ""
        case [site, "request"]:
            kind, cp = "request", ""
        case [site, "reply", client]:
            kind, cp = "reply", client
        case _:
            return None
    if not ID_RE.match(site) or (kind in ("status", "telemetry", "monitor") and not ID_RE.match(cp)):
        raise BadMessage("bad_topic", topic[:120])
    if len(payload) > MAX_BYTES[kind]:
        raise BadMessage("too_big", f"{len(payload)} bytes on {kind}, at most {MAX_BYTES[kind]}")
    if kind in ("request", "reply") and not payload.startswith(b"{"):
        return None  # a binary client frame (docs/paxos.md): not ours to read
    try:
        body = decode_payload(payload)
    except PayloadError as exc:
        raise BadMessage("not_json", str(exc)[:120]) from None
    if kind in ("status", "telemetry", "monitor") and body.get("cp", cp) != cp:
        raise BadMessage("wrong_cp", f"a message of {str(body.get('cp'))[:40]!r} on {cp}'s topic")
    match kind:
        case "status":
            return _status(site, cp, body)
        case "telemetry":
            return _telemetry(site, cp, body)
        case "monitor":
            return _monitor(site, cp, body)
        case "state":
            return _state(site, body)
        case "request":
            return _request(site, body)
        case _:
            if not PRINCIPAL_RE.match(cp):
                raise BadMessage("bad_topic", topic[:120])
            return _reply(site, cp, body)
