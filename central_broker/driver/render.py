"""The driver app's words: each thing it shows as one line of text for a person, or one JSON object for a script.

Every JSON line carries `event`: `point` (one per charge point), `answer` (the site's answer to a
request), `started`, `session` (this driver's session now, or `none`), `ticket`, `closed`, `lapsed`.
"""

from __future__ import annotations

import json
from typing import Any

from central_broker.driver.view import MySession, Point
from central_broker.view.messages import Ticket

COLOURS = {"AVAILABLE": "green", "RESERVED": "green", "CHARGING": "green", "OUT_OF_ORDER": "dark_orange",
           "FAULTED": "red", "DISCONNECTED": "grey50"}
LEGENDS = {"OUT_OF_ORDER": "Out of Order"}


def as_json(event: str, body: dict[str, Any]) -> str:
    return json.dumps({"event": event, **body}, sort_keys=True)


def _money(v: float | None, unit: str, digits: int = 2) -> str:
    return "-" if v is None else f"{v:.{digits}f} {unit}"


def point_line(p: Point) -> str:
    """`cp2  AVAILABLE     Bay 2  0.30 €/kWh` with rich markup for the status's colour."""
    status = LEGENDS.get(p.status, p.status)
    extra = f"  fault {p.fault}" if p.fault else ""
    return (f"{p.cp:<8} [{COLOURS.get(p.status, 'white')}]{status:<14}[/]"
            f"{p.location[:40]:<40} {_money(p.price_eur_kwh, '€/kWh')}{extra}")


def answer_line(op: str, result: dict[str, Any], where: Point | None) -> str:
    match op:
        case "request_charge":
            cp = result.get("cp")
            place = f"{cp} ({where.location}, {_money(where.price_eur_kwh, '€/kWh')})" if where else str(cp)
            wait = result.get("expires_in_ms")
            line = f"Charge at {place}: plug in" + (f" within {int(wait) // 1000} s" if isinstance(wait, int) else "")
            if result.get("redirect_reason"):
                asked = result.get("redirected_from") or "anywhere"
                line += f"  (redirected from {asked}: {result['redirect_reason']})"
            return line
        case "stop_charge" if result.get("withdrawn"):
            return f"Your request waiting at {result['withdrawn']} is withdrawn."
        case "stop_charge":
            return f"Stopping your session {result.get('session')} at {result.get('cp')}: its ticket follows."
    return json.dumps(result, sort_keys=True)


def session_line(s: MySession | None) -> str:
    if s is None:
        return "No session."
    where = f"{s.cp} ({s.location})" if s.location else s.cp
    if s.phase == "waiting":
        line = f"Waiting for your EV at {where}"
    else:
        line = (f"{s.phase.capitalize()} at {where}: {_money(s.energy_kwh, 'kWh', 3)}  {_money(s.cost_eur, '€')}  "
                f"{_money(s.power_kw, 'kW')}" + (f"  limited: {s.limit_reason}" if s.limit_reason else ""))
    if s.redirect is not None:
        line += f"  (redirected from {s.redirect.asked or 'anywhere'}: {s.redirect.reason})"
    return line


def ticket_line(t: Ticket | None) -> str:
    if t is None:
        return "No ticket yet."
    minutes = (t.duration_s or 0.0) / 60
    return (f"Ticket {t.session} at {t.cp}: {t.kwh:.3f} kWh x {_money(t.price_eur_kwh, '€/kWh')} = {t.eur:.2f} €, "
            f"{minutes:.1f} min ({t.reason})")


def ticket_json(t: Ticket) -> dict[str, Any]:
    """The driver app's JSON form of a ticket (docs/driver.md), also its ticket file's."""
    return {"cp": t.cp, "session": t.session, "driver": t.driver, "kwh": t.kwh, "cost_eur": t.eur,
            "price_eur_kwh": t.price_eur_kwh, "reason": t.reason, "duration_s": t.duration_s or 0.0,
            "end_ts": t.end_ts or 0.0}
