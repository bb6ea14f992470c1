"""Home Assistant discovery, pure: every key published is one Home Assistant documents for its platform, the
templates give what Home Assistant would show for evnet's real messages (rendered with Jinja2, as Home
Assistant renders them), and each command means the site op it should."""

from __future__ import annotations

import json
from typing import Any

import pytest
from jinja2 import Environment, StrictUndefined

from central_broker.homeassistant.discovery import (
    SITE,
    Action,
    Identity,
    Refused,
    charge_point_device,
    command,
    site_device,
)
from evnet.mqtt import encode_payload
from evnet.topics import SiteTopics
from firmware.engine.metering import Ticket

# The keys Home Assistant documents, by platform (2025.x). Sources:
#   https://www.home-assistant.io/integrations/mqtt/#device-discovery-payload  (device-based discovery: the
#       shared options and the abbreviations dev, o, cmps, p)
#   https://www.home-assistant.io/integrations/sensor.mqtt/#configuration-variables
#   https://www.home-assistant.io/integrations/binary_sensor.mqtt/#configuration-variables
#   https://www.home-assistant.io/integrations/switch.mqtt/#configuration-variables
#   https://www.home-assistant.io/integrations/number.mqtt/#configuration-variables
COMMON = {"availability", "availability_mode", "availability_template", "availability_topic", "default_entity_id",
          "device", "enabled_by_default", "encoding", "entity_category", "entity_picture", "icon",
          "json_attributes_template", "json_attributes_topic", "name", "object_id", "payload_available",
          "payload_not_available", "platform", "qos", "unique_id"}
PLATFORMS = {
    "sensor": COMMON | {"device_class", "expire_after", "force_update", "last_reset_value_template", "options",
                        "suggested_display_precision", "state_class", "state_topic", "unit_of_measurement",
                        "value_template"},
    "binary_sensor": COMMON | {"device_class", "expire_after", "force_update", "off_delay", "payload_off",
                               "payload_on", "state_topic", "value_template"},
    "switch": COMMON | {"command_template", "command_topic", "device_class", "optimistic", "payload_off",
                        "payload_on", "retain", "state_off", "state_on", "state_topic", "value_template"},
    "number": COMMON | {"command_template", "command_topic", "device_class", "max", "min", "mode", "optimistic",
                        "payload_reset", "retain", "state_topic", "step", "unit_of_measurement", "value_template"},
}
DEVICE = {"configuration_url", "connections", "hw_version", "identifiers", "manufacturer", "model", "model_id",
          "name", "serial_number", "suggested_area", "sw_version", "via_device"}
ORIGIN = {"name", "sw_version", "support_url"}
AVAILABILITY = {"payload_available", "payload_not_available", "topic", "value_template"}
# The device payload's own level: device, origin, the components, and the options components may share.
SHARED = {"availability", "availability_mode", "availability_template", "availability_topic", "payload_available",
          "payload_not_available", "state_topic", "command_topic", "encoding", "qos"}
ABBREVIATIONS = {"dev": "device", "o": "origin", "cmps": "components", "p": "platform"}
DEVICE_CLASSES = {"sensor": {"enum", "power", "energy", "monetary", "current"}, "binary_sensor": {"plug"},
                  "switch": {"switch", "outlet"}, "number": {"current"}}
STATE_CLASSES = {"measurement", "total", "total_increasing"}

TOPICS = SiteTopics("evnet", "s1")


def full(key: str) -> str:
    return ABBREVIATIONS.get(key, key)


def payloads() -> list[dict[str, Any]]:
    return [charge_point_device(TOPICS, "cp1", Identity("Bay 1", 32.0), "0.1.0")[1], site_device(TOPICS, "0.1.0")[1]]


@pytest.mark.parametrize("payload", payloads(), ids=["charge_point", "site"])
def test_every_key_published_is_documented_for_its_platform(payload: dict[str, Any]) -> None:
    top = {full(k) for k in payload}
    assert {"device", "origin", "components"} <= top and top - {"device", "origin", "components"} <= SHARED
    assert {full(k) for k in payload["dev"]} <= DEVICE and {full(k) for k in payload["o"]} <= ORIGIN
    for a in payload.get("availability", []):
        assert set(a) <= AVAILABILITY
    for name, cmp in payload["cmps"].items():
        platform = cmp["p"]
        keys = {full(k) for k in cmp}
        assert keys <= PLATFORMS[platform], (name, keys - PLATFORMS[platform])
        assert cmp["unique_id"].startswith(payload["dev"]["identifiers"][0])
        assert cmp.get("device_class") is None or cmp["device_class"] in DEVICE_CLASSES[platform]
        assert cmp.get("state_class") is None or cmp["state_class"] in STATE_CLASSES
        assert "state_topic" in cmp or "state_topic" in payload
    assert json.loads(json.dumps(payload)) == payload  # plain JSON


def test_the_charge_points_components_are_the_ones_asked_for() -> None:
    topic, p = charge_point_device(TOPICS, "cp1", Identity("Bay 1", 32.0), "0.1.0")
    assert topic == "homeassistant/device/evnet_s1_cp1/config"
    c = p["cmps"]
    assert {k: v["p"] for k, v in c.items()} == {
        "status": "sensor", "power": "sensor", "energy": "sensor", "cost": "sensor", "current": "sensor",
        "limit": "sensor", "plugged": "binary_sensor", "enabled": "switch", "max_current": "number"}
    assert (c["power"]["unit_of_measurement"], c["energy"]["unit_of_measurement"]) == ("kW", "kWh")
    assert c["energy"]["state_class"] == "total_increasing" and c["cost"]["device_class"] == "monetary"
    assert c["current"]["unit_of_measurement"] == c["limit"]["unit_of_measurement"] == "A"
    assert c["max_current"]["max"] == 32.0 and c["enabled"]["command_topic"] == "evnet/s1/ha/cp1/enabled/set"
    assert p["availability"][0]["topic"] == "evnet/s1/cp/cp1/status"


def render(template: str, body: dict[str, Any]) -> str:
    """As Home Assistant renders a value template: `value_json` is the message's JSON."""
    return Environment(undefined=StrictUndefined).from_string(template).render(value_json=body).strip()


def test_the_templates_give_what_home_assistant_should_show_for_evnets_messages() -> None:
    _, p = charge_point_device(TOPICS, "cp1", Identity("Bay 1", 32.0), "0.1.0")
    c = p["cmps"]
    status = json.loads(encode_payload({"cp": "cp1", "location": "Bay 1", "price_eur_kwh": 0.3, "max_current_a": 32.0,
                                        "status": "OUT_OF_ORDER", "fault": None, "ts": 1.0}))
    will = {**status, "status": "DISCONNECTED"}
    avail = p["availability"][0]["value_template"]
    assert (render(avail, status), render(avail, will)) == ("online", "offline")
    assert render(c["status"]["value_template"], status) == "OUT_OF_ORDER"
    assert render(c["enabled"]["value_template"], status) == "OFF"
    assert render(c["enabled"]["value_template"], {**status, "status": "CHARGING"}) == "ON"
    capped = {"v": 1, "slot": 3, "limit_a": 63.0, "charge_points": {"cp1": {"max_current_a": 32.0, "cap_a": 10.0}}}
    assert render(c["max_current"]["value_template"], capped) == "10.0"
    uncapped = {**capped, "charge_points": {"cp1": {"max_current_a": 32.0, "cap_a": None}}}
    assert render(c["max_current"]["value_template"], uncapped) == "32.0"
    older = {**capped, "charge_points": {"cp1": {"max_current_a": 32.0}}}  # a site from before the cap
    assert render(c["max_current"]["value_template"], older) == "32.0"
    live = {"v": 1, "cp": "cp1", "session": "cp1-1", "driver": "D1", "power_kw": 7.2, "energy_kwh": 1.5,
            "cost_eur": 0.45, "current_a": 10.0, "limit_a": 16.0, "limit_reason": "cp_max", "ts": 2.0}
    got = {k: render(c[k]["value_template"], live) for k in ("power", "energy", "cost", "current", "limit")}
    assert got == {"power": "7.2", "energy": "1.5", "cost": "0.45", "current": "10.0", "limit": "16.0"}
    ticket = Ticket("cp1", "cp1-1", "D1", 1.0, 60.0, 0.0, 2.5, 0.3, "unplugged").to_dict()
    final = {"v": 1, "cp": "cp1", "session": "cp1-1", "final": True, "ticket": ticket, "ts": 3.0}
    got = {k: render(c[k]["value_template"], final) for k in ("power", "energy", "cost", "current", "limit")}
    assert got == {"power": "0", "energy": "2.5", "cost": "0.75", "current": "0", "limit": "0"}
    state = {"v": 1, "slot": 3, "limit_a": 63.0, "drawing_a": 10.0,
             "charge_points": {"cp1": {"plugged": True}, "cp2": {"plugged": False}}}
    assert render(c["plugged"]["value_template"], state) == "ON"
    _, s = site_device(TOPICS, "0.1.0")
    assert render(s["cmps"]["limit"]["value_template"], state) == "63.0"


def test_a_command_means_the_central_action_it_should_or_is_refused_in_one_line() -> None:
    assert command("cp2", "enabled", b"OFF") == Action("stop", {"cp": "cp2"})
    assert command("cp2", "enabled", b"ON") == Action("resume", {"cp": "cp2"})
    assert command(SITE, "site_limit", b"50") == Action("limit", {"limit_a": 50.0})
    for cp, entity, payload in (("cp2", "enabled", b"maybe"), ("cp2", "enabled", b"ON" * 40),
                                (SITE, "site_limit", b"nan"), (SITE, "site_limit", b"5"), (SITE, "enabled", b"ON"),
                                ("cp2", "max_current", b"5"), ("cp2", "max_current", b"inf"), ("cp2", "nope", b"1"),
                                ("cp2", "enabled", b"\xff")):
        got = command(cp, entity, payload)
        assert isinstance(got, Refused) and "\n" not in got.why, (cp, entity, payload)
    assert command("cp2", "max_current", b"16") == Action("cap", {"cp": "cp2", "max_current_a": 16.0})
