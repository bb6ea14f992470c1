"""Topic names are the public contract: the status table of docs/architecture.md, spelled once."""

from __future__ import annotations

from evnet.config import parse_config
from evnet.topics import SiteTopics, central_status, cp_identity, ha_discovery


def test_topics_follow_the_design_table() -> None:
    t = SiteTopics("evnet", "demo")
    assert t.cp_status("cp1") == "evnet/demo/cp/cp1/status"
    assert t.cp_telemetry("cp1") == "evnet/demo/cp/cp1/telemetry"
    assert t.cp_monitor("cp1") == "evnet/demo/cp/cp1/monitor"
    assert t.cp_all() == "evnet/demo/cp/+/#"
    assert t.paxos("cp2") == "evnet/demo/paxos/cp2"
    assert t.request == "evnet/demo/request"
    assert t.reply("app-7") == "evnet/demo/reply/app-7"
    assert t.state == "evnet/demo/state"
    assert central_status("evnet") == "evnet/central/status"
    assert t.ha_command("cp1", "enabled") == "evnet/demo/ha/cp1/enabled/set"
    assert t.ha_command() == "evnet/demo/ha/+/+/set"
    assert ha_discovery("homeassistant", "evnet_demo_cp1") == "homeassistant/device/evnet_demo_cp1/config"


def test_prefix_and_identity_come_from_the_configuration() -> None:
    cfg = parse_config({"charge_point": {"id": "bay1", "site": "s1", "price_eur_kwh": 0.35, "max_current_a": 16,
                                         "location": "Bay 1"},
                        "site": {"members": ["bay1"], "limit_a": 32, "key_file": "k"},
                        "mqtt": {"prefix": "acme/ev"}})
    assert SiteTopics.of(cfg).cp_status("bay1") == "acme/ev/s1/cp/bay1/status"
    assert cp_identity(cfg) == {"cp": "bay1", "location": "Bay 1", "price_eur_kwh": 0.35, "max_current_a": 16.0}
