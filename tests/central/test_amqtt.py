"""Central and a real site on the embedded amqtt broker (MQTT 3.1.1 only): what `evnet central` starts where
Mosquitto is missing. The same checks as on Mosquitto, through Central's own API instead of a browser."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from firmware.site import new_private_key, public_key_b64
from firmware.site.credentials import private_key_pem
from hil_tests.site_rig import SITE, SiteRig

from .conftest import start_central, until

pytestmark = pytest.mark.slow


def test_a_site_and_central_work_over_amqtt(tmp_path: Path, amqtt_broker) -> None:
    rig = SiteRig(tmp_path, amqtt_broker.url, mqtt_version="3.1.1")  # amqtt has no MQTT 5
    key = new_private_key()
    (tmp_path / "central.pem").write_bytes(private_key_pem(key))
    central = None
    try:
        rig.start()
        rig.add_people(1)
        assert rig.operator("add_principal", {"id": "central", "role": "operator",
                                              "key": public_key_b64(key)}).get("ok")
        central = start_central(tmp_path, amqtt_broker.url, key=key, mqtt_version="3.1.1")
        c = central.central

        def status(cp: str) -> str:
            with c.lock:
                return c.view.cps[(SITE, cp)].to_json()["status"] if (SITE, cp) in c.view.cps else "?"

        until(lambda: all(status(cp) == "AVAILABLE" for cp in ("cp1", "cp2", "cp3")), 60, "three points available")
        rig.request_charge("D1", "cp1")
        rig.plug_ev("cp1")
        until(lambda: status("cp1") == "CHARGING", 60, "cp1 charging")
        assert c.act(SITE, "stop", {"cp": "cp1"})["ok"]
        until(lambda: status("cp1") == "OUT_OF_ORDER", 30, "cp1 out of order")
        until(lambda: [t for t in c.registry.tickets(SITE) if t["cp"] == "cp1" and t["acked"]], 30,
              "cp1's ticket kept and acknowledged")
        assert c.act(SITE, "resume", {"cp": "cp1"})["ok"]
        until(lambda: status("cp1") == "AVAILABLE", 30, "cp1 back")
        limit = c.act(SITE, "limit", {"limit_a": 10})  # three fallbacks of 6 A need 18
        assert (limit["ok"], limit["error"]) == (False, "below_fallbacks")  # the site's refusal, shown
        rig.signal("cp3", signal.SIGKILL)
        until(lambda: status("cp3") == "DISCONNECTED", 40, "cp3's Last Will")
    finally:
        if central is not None:
            central.stop()
        rig.close()
