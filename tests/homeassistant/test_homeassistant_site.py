"""Home Assistant discovery end to end: a real site of three (tests/sites.py) on a real Mosquitto, the adapter
as Central runs it with an operator's credential, and Home Assistant played by a plain MQTT client: it finds
every charge point's device retained, and its switch stops a charging point through the site, then resumes it."""

from __future__ import annotations

import json
import threading

from central_broker.homeassistant import HomeAssistant
from evnet.mqtt import MqttLink
from firmware.site.client import SiteClient
from hal.pilot import EvLoad

from ..engine.conftest import wait_for
from ..sites import SITE, add_people


def test_the_in_service_switch_stops_and_resumes_a_real_charge_point_through_the_site(site) -> None:
    cfg = site["cp1"].cfg
    wait_for(lambda: all(c.machine.state.cps[c.cp].registered for c in site.values()), timeout=20,
             what="every charge point registered")
    operator, keys = add_people(site["cp1"], ["D1"])
    central = MqttLink(cfg.mqtt, "central-test")
    ha_link = MqttLink(cfg.mqtt, "homeassistant-test")
    configs: dict[str, dict] = {}
    lock = threading.Lock()

    def on_config(topic: str, payload: bytes) -> None:
        with lock:
            configs[topic] = json.loads(payload)

    with SiteClient(cfg.mqtt, SITE, principal="op1", key=operator, timeout=10.0) as op:
        ha = HomeAssistant(cfg.mqtt.prefix, [SITE], act=lambda _site, name, args: op.call(name, args))
        try:
            assert central.start(10) and ha_link.start(10)
            ha.start(central)
            ha_link.subscribe("homeassistant/device/+/config", on_config, qos=1, wait=10)
            wait_for(lambda: len(configs) == 4, timeout=20, what="the site's and three charge points' devices")
            assert set(configs) == {f"homeassistant/device/evnet_s1{cp}/config" for cp in ("", "_cp1", "_cp2", "_cp3")}
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
            assert ha.results[-1][:2] == (SITE, "stop_cp") and "error" not in ha.results[-1][2]

            ha_link.publish(switch["command_topic"], b"ON", qos=1)
            wait_for(lambda: site["cp2"].evse.core.status != "OUT_OF_ORDER", timeout=20, what="cp2 back in service")
            ha_link.publish(switch["command_topic"].replace("enabled", "max_current"), b"10", qos=1)
            wait_for(lambda: sum(ha.dropped.values()) >= 1, timeout=10, what="the cap command refused")
            assert [r[1] for r in ha.results] == ["stop_cp", "resume_cp"]  # nothing was sent for the cap
        finally:
            ha.stop()
            ha_link.stop()
            central.stop()
