"""A site of three `evnet cp` processes on a real Mosquitto, seen from outside as a site's owner sees it.

Each charge point is a real process (engine, replica, bridge) on the mock HAL: its cable a TCP port an
`evnet ev` process plugs into, its meter a simulated SDM630 that is a real Modbus TCP server on a known
port. Drivers are added and their requests made through the broker by a keyed `KvClient` (the site key
makes it a member-role tool, which adds an operator; the operator's signed requests add the drivers).
A `Sampler` thread reads every meter's current with an ordinary pymodbus client every 100 ms: what a
clamp meter on each cable would show, independent of what evnet believes. Used by hil_tests/test_site.py
and bench/site.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pymodbus.client import ModbusTcpClient

from central_broker.brokers import free_port, wait_listening
from evnet.config import Config, load_config
from evnet.config.site_key import site_key
from firmware.paxos.io.client import KvClient
from firmware.site import new_private_key, public_key_b64, signed_request

SITE = "hil"
MEMBERS = ("cp1", "cp2", "cp3")
LIMIT_A, CP_MAX_A, FALLBACK_A, LEASE_S = 63, 32, 6, 5
SPEED = 20.0  # domain time per real second: the EVs' reactions and the meters' energy run 20x faster
SAMPLE_S = 0.1
CURRENT_L1, IMPORT_KWH = 0x0006, 0x0048  # SDM630 input registers (hal/meter/registers.py)
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
backend = "simulated"
transport = "tcp"
address = "127.0.0.1:{meter}"
poll_interval_s = 0.5

[mqtt]
url = "{url}"

[site]
members = {members}
limit_a = {limit}
fallback_a = {fallback}
lease_s = {lease}
key_file = "site.key"
"""


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` every 20 ms (the state is in other processes: nothing to await); fail naming `what`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Sample:
    t: float                      # time.monotonic() of the read
    amps: dict[str, float | None]  # each meter's L1 current; None: it did not answer (its process is down)
    kwh: dict[str, float | None]

    def total(self) -> float:
        return sum(a for a in self.amps.values() if a is not None)


class Sampler:
    """Every meter's current every `period` s, by an ordinary Modbus client: `samples`, newest last."""

    def __init__(self, meters: dict[str, str], period: float = SAMPLE_S) -> None:
        self.meters = meters
        self.period = period
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._clients: dict[str, ModbusTcpClient] = {}
        self._thread = threading.Thread(target=self._run, name="meter-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for client in self._clients.values():
            client.close()

    def since(self, t: float) -> list[Sample]:
        with self._lock:
            return [s for s in self.samples if s.t >= t]

    def latest(self) -> Sample | None:
        with self._lock:
            return self.samples[-1] if self.samples else None

    def wait(self, predicate: Callable[[Sample], bool], timeout: float, what: str) -> Sample:
        """The first sample from now on for which `predicate` holds."""
        start = time.monotonic()
        wait_for(lambda: any(predicate(s) for s in self.since(start)), timeout, what)
        return next(s for s in self.since(start) if predicate(s))

    def _read(self, cp: str) -> tuple[float | None, float | None]:
        client = self._clients.get(cp)
        if client is None:
            host, _, port = self.meters[cp].rpartition(":")
            client = self._clients[cp] = ModbusTcpClient(host, port=int(port), timeout=0.2, retries=0)
        try:
            if not client.connected and not client.connect():
                return None, None
            amps = client.read_input_registers(CURRENT_L1, count=2, device_id=1)
            kwh = client.read_input_registers(IMPORT_KWH, count=2, device_id=1)
            if amps.isError() or kwh.isError():
                return None, None
            f32 = client.DATATYPE.FLOAT32
            return client.convert_from_registers(amps.registers, f32), client.convert_from_registers(kwh.registers, f32)
        except Exception:  # noqa: BLE001 - a meter whose process was killed: no sample, try again next time
            client.close()
            return None, None

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            t = time.monotonic()
            reads = {cp: self._read(cp) for cp in self.meters}
            with self._lock:
                self.samples.append(Sample(t, {cp: r[0] for cp, r in reads.items()},
                                           {cp: r[1] for cp, r in reads.items()}))
            next_t += self.period
            self._stop.wait(max(0.0, next_t - time.monotonic()))


@dataclass
class Point:
    """One charge point's process and what the outside knows of it."""

    cp: str
    config: Path
    cfg: Config
    log: Path
    proc: subprocess.Popen[bytes] | None = None
    ev: subprocess.Popen[bytes] | None = None

    @property
    def cable(self) -> str:
        return self.cfg.hal.pilot.cable

    @property
    def meter(self) -> str:
        return self.cfg.meter.address


@dataclass
class SiteRig:
    """Three charge points of site "hil" sharing 63 A; `start()`, then `close()`."""

    root: Path
    broker_url: str
    speed: float = SPEED
    points: dict[str, Point] = field(default_factory=dict)
    sampler: Sampler | None = None
    tool: KvClient | None = None
    _seq: dict[str, int] = field(default_factory=dict)
    _keys: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        (self.root / "site.key").write_text(("5a" * 32) + "\n")
        for cp in MEMBERS:
            path = self.root / f"{cp}.toml"
            path.write_text(CONFIG.format(cp=cp, site=SITE, cp_max=CP_MAX_A, cable=free_port(), meter=free_port(),
                                          url=self.broker_url, members=json.dumps(list(MEMBERS)), limit=LIMIT_A,
                                          fallback=FALLBACK_A, lease=LEASE_S))
            self.points[cp] = Point(cp, path, load_config(path), self.root / f"{cp}.log")

    # ------------------------------------------------------------------ processes

    def start(self) -> SiteRig:
        for cp in MEMBERS:
            self.start_cp(cp)
        self.sampler = Sampler({cp: p.meter for cp, p in self.points.items()}).start()
        self.tool = KvClient(self.points["cp1"].cfg.mqtt, SITE, "hil-tool", site_key(self.points["cp1"].cfg),
                             timeout=10.0).start()
        return self

    def start_cp(self, cp: str) -> None:
        """`evnet cp` for `cp` (again, after a kill: the same data directory and journal); its log appends."""
        p = self.points[cp]
        with open(p.log, "ab") as log:  # the child keeps its own copy of the descriptor
            p.proc = subprocess.Popen([sys.executable, "-u", "-m", "evnet.cli", "cp", "--config", str(p.config),
                                       "--data-dir", str(self.root / "replica" / cp), "--speed", str(self.speed),
                                       "--no-monitor"], stdout=log, stderr=log,
                                      env={**os.environ, "PYTHONUNBUFFERED": "1"})
        host, _, port = p.cable.removeprefix("tcp://").rpartition(":")
        wait_listening(host, int(port), 30, p.proc)

    def plug_ev(self, cp: str, plan: str = EV_PLAN) -> None:
        """`evnet ev` at `cp` (it plugs in again when the charge point comes back after a restart)."""
        p = self.points[cp]
        with open(self.root / f"ev-{cp}.log", "ab") as log:
            p.ev = subprocess.Popen([sys.executable, "-m", "evnet.cli", "ev", "--cable", p.cable, "--speed",
                                     str(self.speed), "--id", f"EV-{cp}", "--plan", plan], stdout=log, stderr=log)

    def signal(self, cp: str, sig: signal.Signals) -> None:
        proc = self.points[cp].proc
        assert proc is not None and proc.poll() is None, f"{cp} is not running"
        proc.send_signal(sig)
        if sig == signal.SIGKILL:
            proc.wait(10)

    def close(self) -> None:
        if self.sampler is not None:
            self.sampler.stop()
        if self.tool is not None:
            self.tool.close()
        for p in self.points.values():
            for proc in (p.ev, p.proc):
                if proc is not None and proc.poll() is None:
                    proc.send_signal(signal.SIGCONT)  # a test may have left it stopped
                    proc.terminate()
            for proc in (p.ev, p.proc):
                if proc is not None:
                    try:
                        proc.wait(20)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(5)

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
