"""Home Assistant MQTT discovery for evnet's charge points, pure: what to publish for a charge point, and what a
command Home Assistant sends means as a site op.

The device-based form (one retained message per charge point on `homeassistant/device/<id>/config`,
with `dev`, `o` and `cmps`): Home Assistant reads evnet's own topics, so nothing is republished for it.
Availability comes from the charge point's retained `status` (its Last Will says DISCONNECTED: offline).
The switch stops and resumes the charge point (the site's `stop_cp`/`resume_cp`, as an operator).

The maximum-current number is the site's cap on the charge point (`set_cp_max`, docs/site.md): it shows the
cap from the site's state, or the registered maximum where there is none, and a value sent to it sets the
cap (6 A up to the registered maximum; the site refuses more). The site-wide limit (`set_limit`) is a number
on the site's own device (`site_device`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from evnet.topics import SiteTopics, ha_discovery

HA_PREFIX = "homeassistant"
STATUSES = ["AVAILABLE", "RESERVED", "CHARGING", "OUT_OF_ORDER", "FAULTED", "DISCONNECTED"]
ENTITIES = ("enabled", "max_current")        # the entities of a charge point that take commands
SITE = "_site"                               # the site device's place among charge point ids (none starts with _)
SITE_LIMIT = "site_limit"                    # the site device's one entity that takes commands
SITE_LIMIT_RANGE = (6.0, 2000.0)             # set_limit's range (docs/site.md)
CP_MAX_RANGE = (6.0, 80.0)                   # set_cp_max's (the site also refuses more than the registered maximum)


def _either(key: str, ticket_key: str) -> str:
    """A telemetry figure; the session's last message has only its ticket (`ticket_key`)."""
    return (f"{{{{ value_json.{key} if value_json.{key} is defined else "
            f"(value_json.ticket.{ticket_key} if value_json.ticket is defined else 0) }}}}")


def _live(key: str) -> str:
    """A live figure: 0 once the session's last message (no live figures in it) has come."""
    return f"{{{{ value_json.{key} if value_json.{key} is defined else 0 }}}}"


@dataclass(frozen=True)
class Identity:
    """What a charge point says about itself in its status (its configuration)."""

    location: str
    max_current_a: float


def device_id(site: str, cp: str | None = None) -> str:
    return f"evnet_{site}" if cp is None else f"evnet_{site}_{cp}"


def charge_point_device(topics: SiteTopics, cp: str, identity: Identity, sw: str,
                        ha_prefix: str = HA_PREFIX) -> tuple[str, dict[str, Any]]:
    """The discovery topic and payload (retained) of charge point `cp` of the site `topics` names."""
    site, uid = topics.site, device_id(topics.site, cp)
    status, telemetry = topics.cp_status(cp), topics.cp_telemetry(cp)

    def sensor(name: str, key: str, template: str, **kw: Any) -> dict[str, Any]:
        return {"p": "sensor", "name": name, "unique_id": f"{uid}_{key}", "state_topic": telemetry,
                "value_template": template, **kw}
    cmps = {
        "status": {"p": "sensor", "name": "Status", "unique_id": f"{uid}_status", "state_topic": status,
                   "device_class": "enum", "options": STATUSES, "value_template": "{{ value_json.status }}"},
        "power": sensor("Power", "power", _live("power_kw"), device_class="power", state_class="measurement",
                        unit_of_measurement="kW"),
        "energy": sensor("Session energy", "energy", _either("energy_kwh", "kwh"), device_class="energy",
                         state_class="total_increasing", unit_of_measurement="kWh"),
        "cost": sensor("Session cost", "cost", _either("cost_eur", "cost_eur"), device_class="monetary",
                       state_class="total", unit_of_measurement="EUR"),
        "current": sensor("Current", "current", _live("current_a"), device_class="current",
                          state_class="measurement", unit_of_measurement="A"),
        "limit": sensor("Current limit", "limit", _live("limit_a"), device_class="current",
                        state_class="measurement", unit_of_measurement="A"),
        "plugged": {"p": "binary_sensor", "name": "Plugged in", "unique_id": f"{uid}_plugged", "device_class": "plug",
                    "state_topic": topics.state,
                    "value_template": f"{{{{ 'ON' if value_json.charge_points['{cp}'].plugged else 'OFF' }}}}"},
        "enabled": {"p": "switch", "name": "In service", "unique_id": f"{uid}_enabled", "state_topic": status,
                    "command_topic": topics.ha_command(cp, "enabled"), "device_class": "switch",
                    "value_template": "{{ 'OFF' if value_json.status == 'OUT_OF_ORDER' else 'ON' }}"},
        "max_current": {"p": "number", "name": "Maximum current", "unique_id": f"{uid}_max_current",
                        "state_topic": topics.state, "command_topic": topics.ha_command(cp, "max_current"),
                        "value_template": (f"{{% set c = value_json.charge_points['{cp}'] %}}"
                                           "{{ c.cap_a if c.cap_a is defined and c.cap_a is not none "
                                           "else c.max_current_a }}"),
                        "device_class": "current",
                        "unit_of_measurement": "A", "min": 6, "max": identity.max_current_a, "step": 1,
                        "mode": "box"},
    }
    payload = {
        "dev": {"identifiers": [uid], "name": f"Charge point {cp}", "manufacturer": "evnet",
                "model": "EV charge point", "suggested_area": identity.location[:60] or None,
                "via_device": device_id(site)},
        "o": {"name": "evnet", "sw_version": sw},
        "availability": [{"topic": status,
                          "value_template": "{{ 'offline' if value_json.status == 'DISCONNECTED' else 'online' }}"}],
        "qos": 1,
        "cmps": cmps,
    }
    if payload["dev"]["suggested_area"] is None:
        del payload["dev"]["suggested_area"]
    return ha_discovery(ha_prefix, uid), payload


def site_device(topics: SiteTopics, sw: str, ha_prefix: str = HA_PREFIX) -> tuple[str, dict[str, Any]]:
    """The site's own device: its limit (a number: `set_limit`) and what it draws now."""
    uid = device_id(topics.site)
    lo, hi = SITE_LIMIT_RANGE
    return ha_discovery(ha_prefix, uid), {
        "dev": {"identifiers": [uid], "name": f"Site {topics.site}", "manufacturer": "evnet",
                "model": "EV charging site"},
        "o": {"name": "evnet", "sw_version": sw},
        "state_topic": topics.state,
        "qos": 1,
        "cmps": {
            "limit": {"p": "number", "name": "Site current limit", "unique_id": f"{uid}_limit",
                      "command_topic": topics.ha_command(SITE, SITE_LIMIT),
                      "value_template": "{{ value_json.limit_a }}",
                      "device_class": "current", "unit_of_measurement": "A", "min": lo, "max": hi, "step": 1,
                      "mode": "box"},
            "drawing": {"p": "sensor", "name": "Drawing", "unique_id": f"{uid}_drawing", "device_class": "current",
                        "state_class": "measurement", "unit_of_measurement": "A",
                        "value_template": "{{ value_json.drawing_a }}"},
        },
    }


# ------------------------------------------------------------------------------- commands

@dataclass(frozen=True)
class Action:
    """An operator control of Central's (`Central.act(site, action, args)`: `stop`, `resume`, `limit`, `cap`),
    which runs the site op (`stop_cp`, `resume_cp`, `set_limit`, `set_cp_max`) with Central's operator credential."""

    action: str
    args: dict[str, Any]


@dataclass(frozen=True)
class Refused:
    """The command means nothing the site can do: `why`, in one line."""

    why: str


MAX_COMMAND = 32  # bytes: "ON", "OFF", a number


def command(cp: str, entity: str, payload: bytes) -> Action | Refused:
    """What Home Assistant's `payload` on `ha_command(cp, entity)` asks of Central (`cp` SITE: the site device)."""
    if len(payload) > MAX_COMMAND:
        return Refused(f"a command of {len(payload)} bytes, at most {MAX_COMMAND}")
    text = payload.decode("ascii", "replace").strip()
    match cp, entity, text:
        case "_site", "site_limit", _:
            amps = _number(text)
            lo, hi = SITE_LIMIT_RANGE
            if amps is None or not lo <= amps <= hi:
                return Refused(f"site limit {text[:16]!r}: expected a number of amps from {lo:g} to {hi:g}")
            return Action("limit", {"limit_a": round(amps, 1)})
        case "_site", _, _:
            return Refused(f"the site has no entity {entity[:32]!r}")
        case _, "enabled", "ON":
            return Action("resume", {"cp": cp})
        case _, "enabled", "OFF":
            return Action("stop", {"cp": cp})
        case _, "enabled", _:
            return Refused(f"switch {cp}: expected ON or OFF, got {text[:16]!r}")
        case _, "max_current", _:
            amps = _number(text)
            lo, hi = CP_MAX_RANGE
            if amps is None or not lo <= amps <= hi:
                return Refused(f"{cp}'s maximum current {text[:16]!r}: expected a number of amps from {lo:g} to {hi:g}")
            return Action("cap", {"cp": cp, "max_current_a": round(amps, 1)})
    return Refused(f"{cp} has no entity {entity[:32]!r}")


def _number(text: str) -> float | None:
    try:
        v = float(text)
    except ValueError:
        return None
    return v if math.isfinite(v) else None
