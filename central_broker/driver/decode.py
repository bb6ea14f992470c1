"""What the driver app hears, checked: bytes from the broker in, typed messages out (the app's only door).

The app reads three kinds of topic of its site: each charge point's `status` (retained) and
`telemetry` (live figures; the last one carries the ticket), and the site's retained `state`.
Every field is size-capped and range-checked here; a message that fails is `BadMessage(reason)`,
which the view drops, counts and logs with its topic. A topic the app does not read is `None`.

    msg = decode("evnet", "demo", "evnet/demo/cp/cp1/telemetry", payload)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from evnet.mqtt import PayloadError, decode_payload

STATUSES = ("AVAILABLE", "RESERVED", "CHARGING", "OUT_OF_ORDER", "FAULTED", "DISCONNECTED")
CP_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
DRIVER_RE = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
SESSION_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
MAX_TEXT = 120          # a location (the site takes 120 characters), a reason, a fault
MAX_BYTES = {"status": 4096, "telemetry": 8192, "state": 1 << 20}
MAX_CPS = 64            # the site holds 16; a state naming more is not a site's
MAX_ROWS = 256          # sessions, waiting requests, reservations: one each per charge point
TS_MAX = 1e11           # Unix seconds, with room for a fast domain clock
MS_MAX = 1 << 62


class BadMessage(ValueError):  # noqa: N818 - reads as what it is
    """A message that failed its checks: `reason` is short and stable (it keys the folded log line)."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason, self.detail = reason, detail


@dataclass(frozen=True)
class CpStatus:
    """`cp/{cp}/status`: what the charge point's engine (or its monitor, or its Last Will) says it is."""

    cp: str
    status: str
    location: str | None
    price_eur_kwh: float | None
    max_current_a: float | None
    fault: str | None


@dataclass(frozen=True)
class Ticket:
    """A session's ticket as the engine published it with its last telemetry (docs/mqtt-api.md)."""

    cp: str
    session: str
    driver: str
    kwh: float
    cost_eur: float
    price_eur_kwh: float
    reason: str
    duration_s: float
    end_ts: float

    def to_json(self) -> dict[str, Any]:
        return {"cp": self.cp, "session": self.session, "driver": self.driver, "kwh": self.kwh,
                "cost_eur": self.cost_eur, "price_eur_kwh": self.price_eur_kwh, "reason": self.reason,
                "duration_s": self.duration_s, "end_ts": self.end_ts}


@dataclass(frozen=True)
class Telemetry:
    """`cp/{cp}/telemetry` while a session charges; `ticket` on its last (`final`) message."""

    cp: str
    session: str
    driver: str | None
    power_kw: float | None
    energy_kwh: float | None
    cost_eur: float | None
    current_a: float | None
    limit_a: float | None
    limit_reason: str | None
    ticket: Ticket | None


@dataclass(frozen=True)
class SiteCp:
    """One charge point as the site's state shows it."""

    cp: str
    status: str
    location: str
    price_eur_kwh: float
    limit_reason: str | None


@dataclass(frozen=True)
class SiteSession:
    session: str
    cp: str
    driver: str | None
    energy_wh: int
    stop_requested: str | None


@dataclass(frozen=True)
class Held:
    """A driver's request waiting at a charge point for the EV, or a reservation there."""

    cp: str
    driver: str
    expires_ms: int


@dataclass(frozen=True)
class SiteState:
    """The site's retained `state` (docs/mqtt-api.md), as far as a driver reads it."""

    slot: int
    now_ms: int
    cps: dict[str, SiteCp]
    sessions: tuple[SiteSession, ...]
    waiting: tuple[Held, ...]
    reservations: tuple[Held, ...]


Message = CpStatus | Telemetry | SiteState


# ---------------------------------------------------------------------- field checks

def _text(body: dict[str, Any], key: str, limit: int = MAX_TEXT) -> str | None:
    v = body.get(key)
    if v is None:
        return None
    if not isinstance(v, str) or len(v) > limit:
        raise BadMessage("bad_field", f"{key}: expected a string of at most {limit} characters")
    return v


def _id(body: dict[str, Any], key: str, pattern: re.Pattern[str], required: bool = False) -> str | None:
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


def _rows(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    v = body.get(key, [])
    if not isinstance(v, list) or len(v) > MAX_ROWS or not all(isinstance(r, dict) for r in v):
        raise BadMessage("bad_field", f"{key}: expected a list of at most {MAX_ROWS} objects")
    return v


# ---------------------------------------------------------------------- per topic

def _status(cp: str, b: dict[str, Any]) -> CpStatus:
    status = b.get("status")
    if status not in STATUSES:
        raise BadMessage("bad_status", repr(status)[:40])
    return CpStatus(cp, status, _text(b, "location"), _num(b, "price_eur_kwh", 0, 10),
                    _num(b, "max_current_a", 0, 80), _text(b, "fault"))


def ticket_of(cp: str, t: Any) -> Ticket:
    """A ticket as the engine writes it (`session_id`, `cost_eur`, ...), checked."""
    if not isinstance(t, dict) or len(t) > 32:
        raise BadMessage("bad_field", "ticket: expected an object")
    if t.get("cp") != cp:
        raise BadMessage("wrong_cp", "ticket: of another charge point")
    return Ticket(cp, _id(t, "session_id", SESSION_RE, True), _id(t, "driver", DRIVER_RE, True),  # type: ignore[arg-type]
                  _num(t, "kwh", 0, 1e6, True), _num(t, "cost_eur", 0, 1e7, True),  # type: ignore[arg-type]
                  _num(t, "price_eur_kwh", 0, 10, True), _text(t, "reason") or "",  # type: ignore[arg-type]
                  _num(t, "duration_s", 0, 1e9) or 0.0, _num(t, "end_ts", 0, TS_MAX) or 0.0)


def _telemetry(cp: str, b: dict[str, Any]) -> Telemetry:
    session = _id(b, "session", SESSION_RE, True)
    ticket = ticket_of(cp, b.get("ticket")) if b.get("final") is True else None
    if ticket is not None and ticket.session != session:
        raise BadMessage("bad_field", "ticket: of another session")
    return Telemetry(cp, session, _id(b, "driver", DRIVER_RE), _num(b, "power_kw", -1000, 1000),  # type: ignore[arg-type]
                     _num(b, "energy_kwh", 0, 1e6), _num(b, "cost_eur", 0, 1e7), _num(b, "current_a", 0, 1000),
                     _num(b, "limit_a", 0, 1000), _text(b, "limit_reason", 40), ticket)


def _site_cp(cp: Any, b: Any) -> SiteCp:
    if not isinstance(cp, str) or not CP_RE.match(cp) or not isinstance(b, dict):
        raise BadMessage("bad_field", "charge_points: expected ids to objects")
    status = b.get("status")
    if status not in STATUSES:
        raise BadMessage("bad_status", repr(status)[:40])
    return SiteCp(cp, status, _text(b, "location") or "", _num(b, "price_eur_kwh", 0, 10) or 0.0,
                  _text(b, "limit_reason", 40))


def _held(r: dict[str, Any]) -> Held:
    return Held(_id(r, "cp", CP_RE, True), _id(r, "driver", DRIVER_RE, True),  # type: ignore[arg-type]
                _int(r, "expires_ms", -MS_MAX, MS_MAX))


def _state(site: str, b: dict[str, Any]) -> SiteState:
    if b.get("site", site) != site:
        raise BadMessage("wrong_site", f"a state of {str(b.get('site'))[:40]!r} on {site}'s topic")
    cps = b.get("charge_points")
    if not isinstance(cps, dict) or len(cps) > MAX_CPS:
        raise BadMessage("bad_field", f"charge_points: expected an object of at most {MAX_CPS}")
    sessions = tuple(SiteSession(_id(r, "session", SESSION_RE, True), _id(r, "cp", CP_RE, True),  # type: ignore[arg-type]
                                 _id(r, "driver", DRIVER_RE), _int(r, "energy_wh", 0, 1 << 40),
                                 _text(r, "stop_requested", 40)) for r in _rows(b, "sessions"))
    return SiteState(_int(b, "slot", 0, MS_MAX), _int(b, "now_ms", -MS_MAX, MS_MAX),
                     {k: _site_cp(k, v) for k, v in cps.items()}, sessions,
                     tuple(_held(r) for r in _rows(b, "waiting")), tuple(_held(r) for r in _rows(b, "reservations")))


def decode(prefix: str, site: str, topic: str, payload: bytes) -> Message | None:
    """The message on `topic`, checked; None for a topic the driver app does not read; `BadMessage` if it fails."""
    base = f"{prefix}/{site}/"
    if not topic.startswith(base):
        return None
    match topic[len(base):].split("/"):
        case ["cp", cp, kind] if kind in ("status", "telemetry"):
            if not CP_RE.match(cp):
                raise BadMessage("bad_topic", topic[:120])
        case ["state"]:
            kind, cp = "state", ""
        case _:
            return None
    if len(payload) > MAX_BYTES[kind]:
        raise BadMessage("too_big", f"{len(payload)} bytes on {kind}, at most {MAX_BYTES[kind]}")
    try:
        body = decode_payload(payload)
    except PayloadError as exc:
        raise BadMessage("not_json", str(exc)[:120]) from None
    if kind != "state" and body.get("cp", cp) != cp:
        raise BadMessage("wrong_cp", f"a message of {str(body.get('cp'))[:40]!r} on {cp}'s topic")
    match kind:
        case "status":
            return _status(cp, body)
        case "telemetry":
            return _telemetry(cp, body)
    return _state(site, body)
