"""Home Assistant in Central, end to end: a real site of three (tests/sites.py) on a real Mosquitto, Central as
`evnet central` runs it with `[central] homeassistant = true` and its own operator key, and Home Assistant played
by a plain MQTT client: it finds every charge point's device retained, and its switch stops a charging point
through the site (Central's event log says so, and where the order came from), then resumes it; its number caps
the point at the site (`set_cp_max`), and a cap the site refuses is said in the log."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from evnet.mqtt import MqttLink
from firmware.site import new_private_key, public_key_b64
from firmware.site.client import SiteClient
from hal.pilot import EvLoad

from ..central.conftest import start_central
from ..engine.conftest import wait_for
from ..sites import SITE, add_people

DEVICES = {f"homeassistant/device/evnet_s1{cp}/config" for cp in ("", "_cp1", "_cp2", "_cp3")}


def test_central_runs_home_assistant_whose_switch_stops_and_resumes_a_charge_point(site, mosquitto,
                                                                                   tmp_path: Path) -> None:
    cfg = site["cp1"].cfg
    wait_for(lambda: all(c.machine.state.cps[c.cp].registered for c in site.values()), timeout=20,
             what="every charge point registered")
    operator, keys = add_people(site["cp1"], ["D1"])
    key = new_private_key()
    with SiteClient(cfg.mqtt, SITE, principal="op1", key=operator, timeout=10.0) as op:
        op.add_principal("central", "operator", public_key_b64(key))
    rig = start_central(tmp_path, mosquitto.url, site=SITE, key=key, homeassistant=True)
    ha_link = MqttLink(cfg.mqtt, "homeassistant-test")
    configs: dict[str, dict] = {}
    lock = threading.Lock()

    def on_config(topic: str, payload: bytes) -> None:
        with lock:
            configs[topic] = json.loads(payload)

    def events(kind: str) -> list[str]:
        with rig.central.lock:
            return [e["text"] for e in rig.central.view.events if e["kind"] == kind]
    try:
        assert rig.central.ha is not None
        wait_for(lambda: len(rig.central.ha.known) == 3, timeout=20, what="Central heard the three charge points")
        assert ha_link.start(10)  # Home Assistant comes later: it finds the devices retained
        ha_link.subscribe("homeassistant/device/+/config", on_config, qos=1, wait=10)
        wait_for(lambda: set(configs) == DEVICES, timeout=20, what="the site's and three charge points' devices")
        switch = configs["homeassistant/device/evnet_s1_cp2/config"]["cmps"]["enabled"]

        with SiteClient(cfg.mqtt, SITE, principal="D1", key=keys["D1"], timeout=10.0) as d1:
            assert d1.request_charge(at="cp2")["cp"] == "cp2"
        ev = site["cp2"].evse.cable.ev
        ev.set_load(EvLoad.B)
        ev.set_load(EvLoad.C)
        ev.set_current(6.0)
        wait_for(lambda: site["cp2"].evse.core.status == "CHARGING", timeout=20, what="cp2 charging")

        ha_link.publish(switch["command_topic"], b"OFF", qos=1)  # Home Assistant: the switch off
        wait_for(lambda: site["cp2"].evse.core.status == "OUT_OF_ORDER", timeout=20, what="cp2 out of order")
        wait_for(lambda: not site["cp1"].machine.state.sessions, timeout=20,
                 what="cp2's session closed at the site with its ticket")
        wait_for(lambda: any("stop cp=cp2 (from Home Assistant)" in t for t in events("operator")), timeout=10,
                 what="the stop in Central's event log")
        assert rig.central.ha.results[-1][:2] == (SITE, "stop") and rig.central.ha.results[-1][2]["ok"]

        ha_link.publish(switch["command_topic"], b"ON", qos=1)
        wait_for(lambda: site["cp2"].evse.core.status != "OUT_OF_ORDER", timeout=20, what="cp2 back in service")
        wait_for(lambda: any("resume cp=cp2 (from Home Assistant)" in t for t in events("operator")), timeout=10,
                 what="the resume in Central's event log")
        ha_link.publish(switch["command_topic"].replace("/cp2/", "/cp9/"), b"OFF", qos=1)
        wait_for(lambda: any("cp=cp9 (from Home Assistant)" in t for t in events("operator_refused")), timeout=10,
                 what="a stop of a charge point the site does not have, refused and said in the log")

        number = configs["homeassistant/device/evnet_s1_cp2/config"]["cmps"]["max_current"]
        ha_link.publish(number["command_topic"], b"10", qos=1)  # the maximum-current number: the site's cap
        wait_for(lambda: site["cp1"].machine.state.cps["cp2"].cap_da == 100, timeout=20, what="cp2 capped at 10 A")
        wait_for(lambda: any("cap cp=cp2 max_current_a=10.0 (from Home Assistant)" in t for t in events("operator")),
                 timeout=10, what="the cap in Central's event log")
        ha_link.publish(number["command_topic"], b"40", qos=1)  # above cp2's registered 16 A: the site refuses
        wait_for(lambda: any("cap cp=cp2 max_current_a=40.0 (from Home Assistant): bad_field" in t
                             for t in events("operator_refused")), timeout=10, what="the refused cap in the log")
        assert site["cp1"].machine.state.cps["cp2"].cap_da == 100
        done = ["stop", "resume", "stop", "cap", "cap"]  # its thread notes a result after Central logged it
        wait_for(lambda: [r[1] for r in rig.central.ha.results] == done, timeout=10, what="every command's result")
    finally:
        ha_link.stop()
        rig.stop()


def test_home_assistant_is_off_unless_central_is_configured_for_it(tmp_path: Path, mosquitto) -> None:
    rig = start_central(tmp_path, mosquitto.url, site=SITE)
    try:
        assert rig.central.ha is None
    finally:
        rig.stop()
