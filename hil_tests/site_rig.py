"""A site of three charge points on a real Mosquitto, seen from outside as a site's owner sees it.

Each charge point is what systemd runs on a Pi (config/systemd/): `evnet cp` (engine, replica, bridge) on the
mock HAL and its `evnet monitor` (heartbeats over a socket:// serial link, the safety line a mock pin, its
alerts on MQTT), both reading the same configuration. Around them, what is outside a Pi:
- the cable: `evnet ev` plugs into a meter box (hil_tests/meter_box.py, a process of its own) that passes
  the cable through to the engine and serves the current flowing, and the energy, as an SDM630 over Modbus
  TCP; the engine reads it as a real meter (`meter.backend = "real"`), so the count survives the engine;
- the network: each charge point (engine and monitor) reaches the broker through its own TCP proxy
  (hil_tests/tcp_proxy.py) that `cut()` stalls and `heal()` lets go, while every process keeps running.
Drivers are added and their requests made through the broker by a keyed `KvClient` (the site key makes it a
member-role tool, which adds an operator; the operator's signed requests add the drivers). A `Sampler`
(hil_tests/sampler.py) reads every meter with an ordinary pymodbus client every 100 ms, and a `SiteWatch`
(hil_tests/site_watch.py) hears every status and monitor message. Used by hil_tests/test_site.py and
bench/site.py.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from central_broker.brokers import free_port, wait_listening
from evnet.config import Config, load_config
from evnet.config.site_key import site_key
from evnet.mqtt import parse_url
from evnet.topics import SiteTopics
from firmware.paxos.io.client import KvClient
from firmware.site import new_private_key, public_key_b64, signed_request
from hil_tests.sampler import Sampler, wait_for
from hil_tests.site_watch import SiteWatch
from hil_tests.tcp_proxy import ProxyThread, TcpProxy

__all__ = ["FALLBACK_A", "LEASE_S", "LIMIT_A", "MEMBERS", "Sampler", "SiteRig", "wait_for"]  # bench/site.py

REPO = Path(__file__).resolve().parents[1]
SITE = "hil"
MEMBERS = ("cp1", "cp2", "cp3")
LIMIT_A, CP_MAX_A, FALLBACK_A, LEASE_S = 63, 32, 6, 5
SPEED = 20.0  # domain time per real second: the EVs' reactions and the meters' energy run 20x faster
EV_PLAN = "capacity 500; soc 5; max 32; plug; charge 32; wait full"

CONFIG = """\
[charge_point]
id = "{cp}"
site = "{site}"
location = "Bay {cp}"
price_eur_kwh = 0.30
max_current_a = {cp_max}
journal_dir = "journal-{cp}"

[hal]
pin_factory = "mock"

[hal.pilot]
backend = "simulated"
cable = "tcp://127.0.0.1:{cable}"

[meter]
backend = "real"                  # the meter box on the cable, a process of its own
model = "SDM630"
transport = "tcp"
address = "{meter}"
poll_interval_s = 0.5

[mqtt]
url = "mqtt://127.0.0.1:{mqtt}"   # this charge point's own way to the broker: its proxy

[site]
members = {members}
limit_a = {limit}
fallback_a = {fallback}
lease_s = {lease}
key_file = "site.key"

[monitor]
serial_url = "socket://127.0.0.1:{monitor}"
"""


@dataclass
class Point:
    """One charge point's processes and what the outside knows of it."""

    cp: str
    config: Path
    cfg: Config
    log: Path
    ev_cable: str  # where its EV plugs in: the meter box's end of the cable
    network: TcpProxy  # between its processes and the broker
    proc: subprocess.Popen[bytes] | None = None
    ev: subprocess.Popen[bytes] | None = None
    monitor: subprocess.Popen[bytes] | None = None
    meter_box: subprocess.Popen[bytes] | None = None

    @property
    def cable(self) -> str:
        """The engine's own end of the cable (the meter box plugs into it)."""
        return self.cfg.hal.pilot.cable

    @property
    def meter(self) -> str:
        return self.cfg.meter.address

    @property
    def on_fault(self) -> Path:
        """The file the monitor's --on-fault command touches (where systemd would restart the engine)."""
        return self.config.with_suffix(".on-fault")


def _host_port(address: str) -> tuple[str, int]:
    host, _, port = address.removeprefix("tcp://").rpartition(":")
    return host, int(port)


@dataclass
class SiteRig:
    """Three charge points of site "hil" sharing 63 A; `start()`, then `close()`. With `monitors=False` the
    engines run `--no-monitor` and no `evnet monitor` is started."""

    root: Path
    broker_url: str
    speed: float = SPEED
    monitors: bool = True
    origin: float = field(default_factory=time.time)  # where the points' domain time meets wall time (restarts)
    points: dict[str, Point] = field(default_factory=dict)
    sampler: Sampler | None = None
    watch: SiteWatch | None = None
    tool: KvClient | None = None
    _proxies: ProxyThread = field(default_factory=ProxyThread)
    _seq: dict[str, int] = field(default_factory=dict)
    _keys: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        (self.root / "site.key").write_text(("5a" * 32) + "\n")

    # ------------------------------------------------------------------ processes

    def start(self) -> SiteRig:
        self.watch = SiteWatch(self.broker_url, SiteTopics("evnet", SITE)).start()
        for cp in MEMBERS:
            self._add_point(cp)
            if self.monitors:
                self.start_monitor(cp)
            self.start_cp(cp)
        self.sampler = Sampler({cp: p.meter for cp, p in self.points.items()}).start()
        self.tool = KvClient(self.points["cp1"].cfg.mqtt, SITE, "hil-tool", site_key(self.points["cp1"].cfg),
                             timeout=10.0).start()
        return self

    def _spawn(self, args: list[str], log: Path, stdout: int | None = None) -> subprocess.Popen[bytes]:
        """`python -u ARGS` from the repository's root, its output appended to `log` (stdout: or a pipe)."""
        with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
            return subprocess.Popen([sys.executable, "-u", *args], stdout=out if stdout is None else stdout,
                                    stderr=out, cwd=REPO, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def _add_point(self, cp: str) -> None:
        """`cp`'s network proxy and meter box (ports the kernel chose), then its configuration."""
        broker = parse_url(self.broker_url)
        network = self._proxies.add((broker.host, broker.port))
        engine_cable = free_port()
        box = self._spawn(["-m", "hil_tests.meter_box", "--evse", f"tcp://127.0.0.1:{engine_cable}", "--speed",
                           str(self.speed), "--cp", cp], self.root / f"meter-{cp}.log", stdout=subprocess.PIPE)
        assert box.stdout is not None
        ready = box.stdout.readline().decode().split()  # "ready CABLE MODBUS", or nothing if it failed
        if len(ready) != 3:
            box.kill()
            raise RuntimeError(f"{cp}'s meter box did not start: see {self.root / f'meter-{cp}.log'}")
        path = self.root / f"{cp}.toml"
        path.write_text(CONFIG.format(cp=cp, site=SITE, cp_max=CP_MAX_A, cable=engine_cable, meter=ready[2],
                                      mqtt=network.port, members=json.dumps(list(MEMBERS)), limit=LIMIT_A,
                                      fallback=FALLBACK_A, lease=LEASE_S, monitor=free_port()))
        self.points[cp] = Point(cp, path, load_config(path), self.root / f"{cp}.log", ready[1], network,
                                meter_box=box)

    def start_monitor(self, cp: str) -> None:
        """`evnet monitor` as evnet-monitor@.service runs it; its --on-fault touches `Point.on_fault`."""
        p = self.points[cp]
        p.monitor = self._spawn(["-m", "evnet.cli", "monitor", "--config", str(p.config),
                                 "--on-fault", shlex.join(["touch", str(p.on_fault)])],
                                self.root / f"monitor-{cp}.log")

    def start_cp(self, cp: str) -> None:
        """`evnet cp` for `cp` (again, after a kill: the same data directory and journal); its log appends."""
        p = self.points[cp]
        p.proc = self._spawn(["-m", "evnet.cli", "cp", "--config", str(p.config), "--data-dir",
                              str(self.root / "replica" / cp), "--speed", str(self.speed),
                              "--clock-origin", f"{self.origin:.3f}",
                              *([] if self.monitors else ["--no-monitor"])], p.log)
        wait_listening(*_host_port(p.cable), 30, p.proc)

    def plug_ev(self, cp: str, plan: str = EV_PLAN) -> None:
        """`evnet ev` at `cp`'s meter box (it plugs in again when the charge point comes back after a restart)."""
        p = self.points[cp]
        p.ev = self._spawn(["-m", "evnet.cli", "ev", "--cable", p.ev_cable, "--speed", str(self.speed),
                            "--id", f"EV-{cp}", "--plan", plan], self.root / f"ev-{cp}.log")

    def signal(self, cp: str, sig: signal.Signals) -> None:
        proc = self.points[cp].proc
        assert proc is not None and proc.poll() is None, f"{cp} is not running"
        proc.send_signal(sig)
        if sig == signal.SIGKILL:
            proc.wait(10)

    def cut(self, cp: str) -> None:
        """`cp`'s network to the broker stops carrying anything, both ways (its processes keep running)."""
        self._proxies.cut(self.points[cp].network)

    def heal(self, cp: str) -> None:
        self._proxies.heal(self.points[cp].network)

    def close(self) -> None:
        for stoppable in (self.sampler, self.watch):
            if stoppable is not None:
                stoppable.stop()
        if self.tool is not None:
            self.tool.close()
        # The EVs, then the engines (each ends its session on a meter reading), then their monitors and meters.
        points = self.points.values()
        for stage in ([p.ev for p in points], [p.proc for p in points],
                      [proc for p in points for proc in (p.monitor, p.meter_box)]):
            procs = [proc for proc in stage if proc is not None]
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGCONT)  # a test may have left it stopped
                    proc.terminate()
            for proc in procs:
                try:
                    proc.wait(20)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)
        for p in points:
            if p.meter_box is not None and p.meter_box.stdout is not None:
                p.meter_box.stdout.close()  # the pipe its ports came on
        self._proxies.close()

    def log_text(self, cp: str) -> str:
        return self.points[cp].log.read_text(errors="replace")

    # ------------------------------------------------------------------ the site, through the broker

    def request(self, op: str, args: dict[str, Any], timeout: float = 20.0) -> dict[str, Any]:
        assert self.tool is not None, "start() the rig first"
        return self.tool.request(op, args, timeout=timeout)

    def signed(self, by: str, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """A principal's signed request as `KvClient.request` args; each principal's seq grows by one."""
        self._seq[by] = self._seq.get(by, 0) + 1
        body = json.loads(signed_request(self._keys[by], site=SITE, by=by, seq=self._seq[by], op=op, args=args))
        return {k: v for k, v in body.items() if k != "op"}

    def add_people(self, drivers: int = 3) -> None:
        """Operator "op1" (added by the keyed tool, as a member may), then drivers D1..Dn by the operator."""
        self._keys["op1"] = new_private_key()
        added: dict[str, Any] = {}

        def operator_added() -> bool:  # the site may still be electing its first leader
            nonlocal added
            added = self.request("add_principal", {"args": {"id": "op1", "role": "operator",
                                                            "key": public_key_b64(self._keys["op1"])}})
            return bool(added.get("ok")) or added.get("error") == "principal_exists"  # a retry of one applied
        wait_for(operator_added, 30, "the site to add the operator")
        for n in range(1, drivers + 1):
            self._keys[f"D{n}"] = new_private_key()
            added = self.request("add_principal", self.signed("op1", "add_principal", {
                "id": f"D{n}", "role": "driver", "key": public_key_b64(self._keys[f"D{n}"])}))
            assert added.get("ok"), added

    def request_charge(self, driver: str, cp: str) -> dict[str, Any]:
        """`driver` asks to charge at `cp`, asked again while `cp` has not registered or renewed its lease yet
        (the site then authorizes the driver at another free point, or nowhere; the next request moves it)."""
        asked: dict[str, Any] = {}

        def granted() -> bool:
            nonlocal asked
            asked = self.request("request_charge", self.signed(driver, "request_charge", {"at": cp}))
            return asked.get("cp") == cp and "redirected_from" not in asked
        wait_for(granted, 30, f"{driver} authorized at {cp} (its registration and lease at the site)")
        return asked

    def operator(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        return self.request(op, self.signed("op1", op, args))

    def leader(self) -> str:
        """The replica that answered the tool's last request: the site's leader (its id is its charge point's)."""
        assert self.tool is not None and self.tool.leader is not None, "no request answered yet"
        return self.tool.leader
