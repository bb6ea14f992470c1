"""Black-box fixtures: a charge point seen only through its cable, its meter and the broker.

In CI the charge point is a real `evnet evse` process on the mock HAL (mock pins, the
simulated meter on a known port, a virtual cable over TCP). With `--rig FILE`, the tests
drive the charge point that FILE describes instead: its cable URL, meter address and broker
are read from it, and nothing is started.
"""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from central_broker.brokers import free_port, wait_listening
from evnet.config import Config, MqttConfig, load_config
from evnet.mqtt import MqttLink, decode_payload

SPEED = 60.0  # a minute of charging per second

CONFIG = """\
[charge_point]
id = "hil1"
site = "hil"
location = "HIL bench"
price_eur_kwh = 0.40
max_current_a = 32
journal_dir = "journal"           # this test's own, beside its configuration

[hal]
pin_factory = "mock"

[hal.pilot]
backend = "simulated"
cable = "tcp://127.0.0.1:{cable}"

[meter]
backend = "simulated"
address = "127.0.0.1:{meter}"
poll_interval_s = 1.0

[mqtt]
url = "{mqtt}"

[site]
members = ["hil1"]
limit_a = 32
key_file = "site.key"
"""


@dataclass
class ChargePoint:
    cfg: Config
    proc: subprocess.Popen[str] | None
    inbox: dict[str, queue.Queue[dict]] = field(default_factory=dict)  # one queue per topic: MQTT orders per topic
    stdout: list[str] = field(default_factory=list)

    @property
    def cable(self) -> str:
        return self.cfg.hal.pilot.cable

    def queue(self, kind: str) -> queue.Queue[dict]:
        return self.inbox.setdefault(kind, queue.Queue())

    def next_message(self, kind: str, timeout: float = 30.0, **match: object) -> dict:
        """The next message on `.../cp/{cp}/{kind}` whose fields equal `match` (earlier ones are passed over)."""
        while True:
            body = self.queue(kind).get(timeout=timeout)
            if all(body.get(k) == v for k, v in match.items()):
                return body

    def plug_ev(self, plan: str, timeout: float = 60.0) -> str:
        """Run `evnet ev` with `plan` to its end; its last line (what it delivered)."""
        proc = subprocess.run([sys.executable, "-m", "evnet.cli", "ev", "--cable", self.cable, "--speed",
                               str(SPEED), "--plan", plan, "--no-reconnect"],
                              capture_output=True, text=True, timeout=timeout)
        assert proc.returncode == 0, proc.stderr[-2000:]
        return proc.stdout.strip().splitlines()[-1]


def _watch(cp: ChargePoint, link: MqttLink) -> None:
    base = link.topic(cp.cfg.site_id, "cp", cp.cfg.cp_id)
    for kind in ("status", "telemetry", "monitor"):
        q = cp.queue(kind)
        assert link.subscribe(f"{base}/{kind}", lambda _t, p, q=q: q.put(decode_payload(p)), wait=10)


@pytest.fixture
def charge_point(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ChargePoint]:
    rig = request.config.getoption("--rig")
    if rig:
        cfg = load_config(rig)
        cp = ChargePoint(cfg, None)
        link = MqttLink(cfg.mqtt, "hil-watcher")
    else:
        broker = request.getfixturevalue("mosquitto")
        path = tmp_path / "hil1.toml"
        path.write_text(CONFIG.format(cable=free_port(), meter=free_port(), mqtt=broker.url))
        (tmp_path / "site.key").write_text("00" * 32)
        cfg = load_config(path)
        link = MqttLink(MqttConfig(url=broker.url), "hil-watcher")
        cp = ChargePoint(cfg, None)
    assert link.start(10)
    _watch(cp, link)
    if not rig:
        with open(tmp_path / "evse.log", "w") as log:  # the child keeps its own copy of the descriptor
            cp.proc = subprocess.Popen([sys.executable, "-u", "-m", "evnet.cli", "evse", "--config", str(path),
                                        "--speed", str(SPEED), "--authorize", "hil-driver", "--no-monitor"],
                                       stdout=subprocess.PIPE, stderr=log, text=True,
                                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
        threading.Thread(target=lambda: cp.stdout.extend(cp.proc.stdout), daemon=True).start()  # type: ignore
        host, _, port = cfg.hal.pilot.cable.removeprefix("tcp://").rpartition(":")
        wait_listening(host, int(port), 30, cp.proc)
    try:
        yield cp
    finally:
        link.stop()
        if cp.proc is not None and cp.proc.poll() is None:
            cp.proc.terminate()
            cp.proc.wait(20)
