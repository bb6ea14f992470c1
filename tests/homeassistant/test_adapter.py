"""The adapter's routing of Home Assistant's commands, with `act` a recorder standing in for `Central.act`: every
site when Central watches every site, only its own sites otherwise, anything else dropped and counted."""

from __future__ import annotations

import threading
from typing import Any

from central_broker.homeassistant import HomeAssistant
from evnet.config import MqttConfig
from evnet.mqtt import MqttLink

from ..engine.conftest import wait_for


def _adapter(sites: list[str]) -> tuple[HomeAssistant, list[tuple[str, str, dict[str, Any]]]]:
    acted: list[tuple[str, str, dict[str, Any]]] = []
    done = threading.Lock()

    def act(site: str, action: str, args: dict[str, Any]) -> dict[str, Any]:
        with done:
            acted.append((site, action, args))
        return {"ok": True, "result": {}}
    ha = HomeAssistant("evnet", sites, act=act)
    ha.start(MqttLink(MqttConfig(url="mqtt://127.0.0.1:1"), "ha-unit"))  # never connects: commands fed by hand
    return ha, acted


def test_watching_every_site_a_command_of_any_site_reaches_central() -> None:
    ha, acted = _adapter([])
    try:
        ha.on_command("evnet/x1/ha/cp1/enabled/set", b"OFF")
        ha.on_command("evnet/x2/ha/_site/site_limit/set", b"40")
        wait_for(lambda: len(acted) == 2, timeout=5, what="both commands acted on")
        assert acted == [("x1", "stop", {"cp": "cp1"}), ("x2", "limit", {"limit_a": 40.0})]
    finally:
        ha.stop()


def test_a_command_of_another_site_or_topic_is_dropped_and_counted() -> None:
    ha, acted = _adapter(["s1"])
    try:
        for topic in ("evnet/s2/ha/cp1/enabled/set", "evnet/s1/ha/cp1/nope/set", "evnet/s1/ha/CP!/enabled/set",
                      "other/s1/ha/cp1/enabled/set"):
            ha.on_command(topic, b"OFF")
        ha.on_command("evnet/s1/ha/cp1/enabled/set", b"OFF")
        wait_for(lambda: len(acted) == 1, timeout=5, what="the one good command acted on")
        assert acted == [("s1", "stop", {"cp": "cp1"})]
        assert sum(ha.dropped.values()) == 4
    finally:
        ha.stop()
