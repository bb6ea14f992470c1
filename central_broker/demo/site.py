"""The demo's processes: three charge points (`evnet cp` and `evnet monitor` each), their EVs, and a
supervisor that starts a charge point again when it dies, as systemd does on a Pi (`Restart=on-failure`,
and the monitor's `--on-fault` asking for a restart of a hung engine).

Everything is a real process talking over the real broker; the demo only starts, signals and watches
them. Configurations are written to a fresh directory: free ports, a random site key.
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
from firmware.site import new_private_key, public_key_b64
from firmware.site.credentials import private_key_pem

MEMBERS = ("cp1", "cp2", "cp3")
LIMIT_A, CP_MAX_A, FALLBACK_A, LEASE_S = 63, 32, 6, 5
RESTART_S = 1.0      # systemd's RestartSec in config/systemd/evnet-cp@.service
FRESH_S = 3.0        # a restart asked of a process younger than this is the previous one's (try-restart)

CONFIG = """\
[charge_point]
id = "{cp}"
site = "{site}"
location = "Demo car park, bay {n}"
price_eur_kwh = {price}
max_current_a = {cp_max}
journal_dir = "journal-{cp}"

[hal]
pin_factory = "mock"

[hal.pilot]
backend = "simulated"
cable = "tcp://127.0.0.1:{cable}"

[meter]
backend = "simulated"
transport = "tcp"
address = "127.0.0.1:{meter}"
poll_interval_s = 1.0

[mqtt]
url = "{url}"

[site]
members = {members}
limit_a = {limit}
fallback_a = {fallback}
lease_s = {lease}
key_file = "site.key"

[monitor]
serial_url = "socket://127.0.0.1:{serial}"
heartbeat_s = 0.5
misses = 2
"""


CENTRAL = """\
[mqtt]
url = "{url}"

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
    """One charge point: its configuration, its processes, and how often it was started."""

    cp: str
    config: Path
    cfg: Config
    root: Path
    proc: subprocess.Popen[bytes] | None = None
    monitor: subprocess.Popen[bytes] | None = None
    ev: subprocess.Popen[bytes] | None = None
    started_at: float = 0.0
    starts: int = 0
    expected_down: bool = False   # stopped on purpose: the supervisor leaves it

    @property
    def cable(self) -> str:
        return self.cfg.hal.pilot.cable

    @property
    def meter(self) -> str:
        return self.cfg.meter.address

    @property
    def restart_flag(self) -> Path:
        return self.root / f"{self.cp}.restart"

    def log(self, what: str) -> Path:
        return self.root / f"{what}-{self.cp}.log"


@dataclass
class DemoSite:
    """Three charge points of site "demo" sharing 63 A on the broker at `broker_url`."""

    root: Path
    broker_url: str
    speed: float
    site: str = "demo"
    origin: float = field(default_factory=time.time)   # where the charge points' domain time meets wall time
    points: dict[str, Point] = field(default_factory=dict)
    restarts: list[tuple[float, str, str]] = field(default_factory=list)  # (t, cp, why)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _supervisor: threading.Thread | None = None
    central: subprocess.Popen[bytes] | None = None
    web: str = ""

    def __post_init__(self) -> None:
        (self.root / "site.key").write_text(secrets.token_hex(32) + "\n")
        (self.root / "site.key").chmod(0o600)
        for n, cp in enumerate(MEMBERS, start=1):
            path = self.root / f"{cp}.toml"
            path.write_text(CONFIG.format(cp=cp, n=n, site=self.site, price=round(0.30 + 0.02 * n, 2), cp_max=CP_MAX_A,
                                          cable=free_port(), meter=free_port(), serial=free_port(),
                                          url=self.broker_url, members=json.dumps(list(MEMBERS)), limit=LIMIT_A,
                                          fallback=FALLBACK_A, lease=LEASE_S))
            self.points[cp] = Point(cp, path, load_config(path), self.root)

    # ------------------------------------------------------------------ processes

    def _evnet(self, *args: str, log: Path) -> subprocess.Popen[bytes]:
        with open(log, "ab") as out:  # the child keeps its own copy of the descriptor
            return subprocess.Popen([sys.executable, "-u", "-m", "evnet.cli", *args], stdout=out, stderr=out,
                                    stdin=subprocess.DEVNULL, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                                    cwd=self.root)

    def start(self) -> DemoSite:
        for p in self.points.values():
            on_fault = shlex.join(["touch", str(p.restart_flag)])  # systemctl try-restart, for the supervisor
            p.monitor = self._evnet("monitor", "--config", str(p.config), "--on-fault", on_fault,
                                    "--startup-grace", "10", log=p.log("monitor"))
        for cp in self.points:
            self.start_cp(cp)
        for p in self.points.values():
            host, _, port = p.cable.removeprefix("tcp://").rpartition(":")
            wait_listening(host, int(port), 30, p.proc)
        self._supervisor = threading.Thread(target=self._supervise, name="demo-supervisor", daemon=True)
        self._supervisor.start()
        return self

    def start_central(self, tui: bool) -> str:
        """`evnet central` on the site's broker, its operator key written for it (the site adds the operator);
        with `tui`, its terminal dashboard takes this terminal. Returns its web dashboard's URL."""
        port = free_port()
        (self.root / "central.toml").write_text(CENTRAL.format(url=self.broker_url, site=self.site, web=port))
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

    def start_cp(self, cp: str) -> None:
        """`evnet cp` for `cp` (again, after a kill: the same data directory and journal)."""
        p = self.points[cp]
        p.proc = self._evnet("cp", "--config", str(p.config), "--data-dir", str(self.root / "replica" / cp),
                             "--speed", f"{self.speed:g}", "--clock-origin", f"{self.origin:.3f}", log=p.log("cp"))
        p.started_at = time.monotonic()
        p.starts += 1
        p.expected_down = False

    def plug_ev(self, cp: str, plan: str) -> None:
        """`evnet ev` at `cp` (it plugs in again when the charge point comes back after a restart)."""
        p = self.points[cp]
        p.ev = self._evnet("ev", "--cable", p.cable, "--speed", f"{self.speed:g}", "--id", f"EV-{cp}",
                           "--plan", plan, log=p.log("ev"))

    def unplug_ev(self, cp: str) -> None:
        """Ctrl-C: the EV unplugs and its process ends."""
        ev = self.points[cp].ev
        if ev is not None and ev.poll() is None:
            ev.send_signal(signal.SIGINT)
            try:
                ev.wait(10)
            except subprocess.TimeoutExpired:
                ev.kill()

    def signal(self, cp: str, sig: signal.Signals) -> None:
        proc = self.points[cp].proc
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)

    def close(self) -> None:
        self._stop.set()
        if self._supervisor is not None:
            self._supervisor.join(5)
        procs = [q for p in self.points.values() for q in (p.ev, p.proc, p.monitor) if q is not None]
        procs += [self.central] if self.central is not None else []
        for q in procs:
            if q.poll() is None:
                q.send_signal(signal.SIGCONT)  # a hung one may still be stopped
                q.terminate()
        for q in procs:
            try:
                q.wait(20)
            except subprocess.TimeoutExpired:
                q.kill()
                q.wait(5)

    # ------------------------------------------------------------------ the supervisor (systemd's part)

    def _supervise(self) -> None:
        while not self._stop.wait(0.05):
            for p in self.points.values():
                self._watch(p)

    def _watch(self, p: Point) -> None:
        now = time.monotonic()
        if p.restart_flag.exists():  # the monitor lost the engine and asks for a restart
            p.restart_flag.unlink(missing_ok=True)
            if p.proc is not None and p.proc.poll() is None and now - p.started_at > FRESH_S:
                p.proc.send_signal(signal.SIGCONT)
                p.proc.kill()  # systemd's stop of a hung unit ends in SIGKILL
                p.proc.wait(5)
                self._note(p.cp, "the monitor lost its engine")
        if p.proc is not None and p.proc.poll() is not None and not p.expected_down and not self._stop.is_set():
            code = p.proc.returncode
            if code == 2:  # RestartPreventExitStatus=2: a configuration error, not worth a restart
                p.expected_down = True
                self._note(p.cp, "exited 2 (configuration): not restarted")
                return
            self._stop.wait(RESTART_S)
            if not self._stop.is_set():
                self._note(p.cp, f"exited {code}: started again")
                self.start_cp(p.cp)

    def _note(self, cp: str, why: str) -> None:
        with self._lock:
            self.restarts.append((time.monotonic(), cp, why))
