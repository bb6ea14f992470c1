"""A site of three charge points as real processes, on a real broker, seen from outside as an owner sees it.

Each charge point is what systemd runs on a Pi (config/systemd/): `evnet cp` (engine, replica, bridge) on the
mock HAL and its `evnet monitor` (heartbeats over a socket:// serial link, the safety line a mock pin, its
alerts on MQTT), both reading the same configuration. Around them, what is outside a Pi:
- the cable: `evnet ev` plugs into a meter box (hal/meter/box.py, a process of its own) that passes the cable
  through to the engine and serves the current flowing, and the energy, as an SDM630 over Modbus TCP; the
  engine reads it as a real meter, so the count survives the engine;
- the network: each charge point (engine and monitor) reaches the broker through its own TCP proxy
  (evnet/tcp_proxy.py) that `cut()` stalls and `heal()` lets go, while every process keeps running;
- systemd: with `supervised`, a charge point that dies is started again after `RESTART_S`
  (`Restart=on-failure`), and one its monitor lost (the monitor's `--on-fault`) is killed and started again.
Central (`evnet central`) joins on request. Used by `evnet demo`, hil_tests/site_rig.py (the real-process
tests), Central's tests and bench/site.py. Configurations and logs go to `root`.
"""

from __future__ import annotations

import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from central_broker.brokers import free_port, wait_listening
from evnet.config import Config, load_config
from evnet.mqtt import parse_url
from evnet.tcp_proxy import ProxyThread, TcpProxy
from firmware.site import new_private_key, public_key_b64
from firmware.site.credentials import private_key_pem

REPO = Path(__file__).resolve().parents[2]
MEMBERS = ("cp1", "cp2", "cp3")
LIMIT_A, CP_MAX_A, FALLBACK_A, LEASE_S = 63, 32, 6, 5
RESTART_S = 1.0      # systemd's RestartSec in config/systemd/evnet-cp@.service
FRESH_S = 3.0        # a restart asked of a process younger than this is its predecessor's (try-restart)

CONFIG = """\
[charge_point]
id = "{cp}"
site = "{site}"
location = "{location}"
price_eur_kwh = {price}
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
version = "{version}"

[site]
members = {members}
limit_a = {limit}
fallback_a = {fallback}
lease_s = {lease}
key_file = "site.key"

[monitor]
serial_url = "socket://127.0.0.1:{monitor}"
"""

CENTRAL = """\
[mqtt]
url = "{url}"
version = "{version}"

[central]
broker = "external"
sites = ["{site}"]
operator_id = "central"
operator_key = "central.pem"
web_listen = "127.0.0.1:{web}"
registry = "central.db"
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
    started_at: float = 0.0
    starts: int = 0

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
class SiteProcesses:
    """Three charge points of site `site` sharing 63 A; `start()`, then `close()`. With `monitors=False` the
    engines run `--no-monitor` and no `evnet monitor` is started."""

    root: Path
    broker_url: str
    speed: float
    site: str = "demo"
    monitors: bool = True
    supervised: bool = False
    mqtt_version: str = "5"  # "3.1.1" on the embedded amqtt broker
    extra_config: str = ""   # appended to each charge point's file, `{cp}` replaced by its id (an [ocpp] section)
    consoles: bool = False   # each `evnet cp` reads its console from a pipe (`press`: a token at its card reader)
    origin: float = field(default_factory=time.time)  # where the points' domain time meets wall time (restarts)
    points: dict[str, Point] = field(default_factory=dict)
    restarts: list[tuple[float, str, str]] = field(default_factory=list)  # (t, cp, why), by the supervisor
    central: subprocess.Popen[bytes] | None = None
    web: str = ""
    _proxies: ProxyThread = field(default_factory=ProxyThread)
    _stop: threading.Event = field(default_factory=threading.Event)
    _supervisor: threading.Thread | None = None

    def __post_init__(self) -> None:
        key = self.root / "site.key"
        key.write_text(secrets.token_hex(32) + "\n")
        key.chmod(0o600)

    # ------------------------------------------------------------------ processes

    def start(self) -> SiteProcesses:
        for cp in MEMBERS:
            self._add_point(cp)
            if self.monitors:
                self.start_monitor(cp)
            self.start_cp(cp)
        if self.supervised:
            self._supervisor = threading.Thread(target=self._supervise, name="site-supervisor", daemon=True)
            self._supervisor.start()
        return self

    def _spawn(self, args: list[str], log: Path, stdout: int | None = None,
               stdin: int | None = None) -> subprocess.Popen[bytes]:
        """`python -u ARGS` from the repository's root, its output appended to `log` (stdout: or a pipe)."""
        with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
            return subprocess.Popen([sys.executable, "-u", *args], stdout=out if stdout is None else stdout,
                                    stderr=out, stdin=subprocess.DEVNULL if stdin is None else stdin, cwd=REPO,
                                    env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def _add_point(self, cp: str) -> None:
        """`cp`'s network proxy and meter box (ports the kernel chose), then its configuration."""
        broker = parse_url(self.broker_url)
        network = self._proxies.add((broker.host, broker.port))
        engine_cable = free_port()
        box = self._spawn(["-m", "hal.meter.box", "--evse", f"tcp://127.0.0.1:{engine_cable}", "--speed",
                           f"{self.speed:g}", "--cp", cp], self.root / f"meter-{cp}.log", stdout=subprocess.PIPE)
        assert box.stdout is not None
        ready = box.stdout.readline().decode().split()  # "ready CABLE MODBUS", or nothing if it failed
        if len(ready) != 3:
            box.kill()
            raise RuntimeError(f"{cp}'s meter box did not start: see {self.root / f'meter-{cp}.log'}")
        n = MEMBERS.index(cp) + 1
        path = self.root / f"{cp}.toml"
        path.write_text(CONFIG.format(cp=cp, site=self.site, location=f"Car park, bay {n}",
                                      price=round(0.30 + 0.02 * (n - 1), 2), cp_max=CP_MAX_A, cable=engine_cable,
                                      meter=ready[2], mqtt=network.port, members=json.dumps(list(MEMBERS)),
                                      limit=LIMIT_A, fallback=FALLBACK_A, lease=LEASE_S, monitor=free_port(),
                                      version=self.mqtt_version) + self.extra_config.replace("{cp}", cp))
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
                              str(self.root / "replica" / cp), "--speed", f"{self.speed:g}",
                              "--clock-origin", f"{self.origin:.3f}",
                              *([] if self.monitors else ["--no-monitor"]), *(["--console"] if self.consoles else [])],
                             p.log, stdin=subprocess.PIPE if self.consoles else None)
        p.started_at = time.monotonic()
        p.starts += 1
        wait_listening(*_host_port(p.cable), 30, p.proc)

    def plug_ev(self, cp: str, plan: str) -> None:
        """`evnet ev` at `cp`'s meter box (it plugs in again when the charge point comes back after a restart)."""
        p = self.points[cp]
        p.ev = self._spawn(["-m", "evnet.cli", "ev", "--cable", p.ev_cable, "--speed", f"{self.speed:g}",
                            "--id", f"EV-{cp}", "--plan", plan], self.root / f"ev-{cp}.log")

    def unplug_ev(self, cp: str) -> None:
        """Ctrl-C: the EV unplugs and its process ends."""
        ev = self.points[cp].ev
        if ev is not None and ev.poll() is None:
            ev.send_signal(signal.SIGINT)
            try:
                ev.wait(10)
            except subprocess.TimeoutExpired:
                ev.kill()

    def press(self, cp: str, token: str) -> None:
        """`s TOKEN` on `cp`'s console (with `consoles`): the button, with the token a card reader would read."""
        proc = self.points[cp].proc
        assert proc is not None and proc.stdin is not None, f"{cp} has no console pipe"
        proc.stdin.write(f"s {token}\n".encode())
        proc.stdin.flush()

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

    def log_text(self, cp: str) -> str:
        return self.points[cp].log.read_text(errors="replace")

    def close(self) -> None:
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(5)
        # The EVs, then the engines (each ends its session on a meter reading), then monitors, meters, Central.
        points = self.points.values()
        for stage in ([p.ev for p in points], [p.proc for p in points],
                      [proc for p in points for proc in (p.monitor, p.meter_box)], [self.central]):
            procs = [proc for proc in stage if proc is not None]
            for proc in procs:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGCONT)  # one may have been left stopped
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

    # ------------------------------------------------------------------ Central

    def start_central(self, tui: bool) -> str:
        """`evnet central` on the site's broker with an operator key of its own (`central_key()`, for the site
        to add); with `tui`, its terminal dashboard takes this terminal. Returns its web dashboard's URL."""
        port = free_port()
        central = CENTRAL.format(url=self.broker_url, version=self.mqtt_version, site=self.site, web=port)
        (self.root / "central.toml").write_text(central)
        key = new_private_key()
        pem = self.root / "central.pem"
        pem.write_bytes(private_key_pem(key))
        pem.chmod(0o600)
        (self.root / "central.pem.pub").write_text(public_key_b64(key) + "\n")
        args = [sys.executable, "-u", "-m", "evnet.cli", "central", "--config", str(self.root / "central.toml")]
        if tui:
            self.central = subprocess.Popen(args, stdin=subprocess.DEVNULL, cwd=self.root)
        else:
            with open(self.root / "central.log", "ab") as out:
                self.central = subprocess.Popen([*args, "--no-tui"], stdout=out, stderr=out,
                                                stdin=subprocess.DEVNULL, cwd=self.root)
        wait_listening("127.0.0.1", port, 30, self.central)
        self.web = f"http://127.0.0.1:{port}/"
        return self.web

    def central_key(self) -> str:
        return (self.root / "central.pem.pub").read_text().strip()

    # ------------------------------------------------------------------ the supervisor (systemd's part)

    def _supervise(self) -> None:
        while not self._stop.wait(0.05):
            for p in self.points.values():
                self._watch(p)

    def _watch(self, p: Point) -> None:
        if p.on_fault.exists():  # the monitor lost the engine and asks for a restart
            p.on_fault.unlink(missing_ok=True)
            if p.proc is not None and p.proc.poll() is None and time.monotonic() - p.started_at > FRESH_S:
                p.proc.send_signal(signal.SIGCONT)
                p.proc.kill()  # systemd's stop of a hung unit ends in SIGKILL
                p.proc.wait(5)
                self._note(p.cp, "the monitor lost its engine")
        if p.proc is not None and p.proc.poll() is not None and not self._stop.is_set():
            code = p.proc.returncode
            if code == 2:  # RestartPreventExitStatus=2: a configuration error, not worth a restart
                self._note(p.cp, "exited 2 (configuration): not restarted")
                p.proc = None
                return
            if not self._stop.wait(RESTART_S):
                self._note(p.cp, f"exited {code}: started again")
                self.start_cp(p.cp)

    def _note(self, cp: str, why: str) -> None:
        self.restarts.append((time.monotonic(), cp, why))
