"""A three-member etcd on loopback for bench/paxos.py: start, find the leader, kill; a JSON-gateway client.

etcd (Debian `etcd-server`) is installed with apt-get if missing. The client uses http.client
against etcd's v3 JSON gateway: no new Python dependency.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from central_broker.brokers import free_port, wait_listening  # noqa: E402


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


class EtcdClient:
    """Puts through etcd's v3 JSON gateway; fails over to the next endpoint on an error."""

    def __init__(self, endpoints: list[str], leader: str | None = None, timeout: float = 2.0) -> None:
        self.endpoints = list(endpoints)
        self.i = self.endpoints.index(leader) if leader in self.endpoints else 0
        self.timeout = timeout
        self.conn: http.client.HTTPConnection | None = None

    def _connect(self) -> http.client.HTTPConnection:
        if self.conn is None:
            host, port = self.endpoints[self.i].split(":")
            self.conn = http.client.HTTPConnection(host, int(port), timeout=self.timeout)
        return self.conn

    def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        conn = self._connect()
        try:
            conn.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            resp = conn.getresponse()
            data = resp.read()
        except (OSError, http.client.HTTPException) as e:
            self.close()
            self.i = (self.i + 1) % len(self.endpoints)
            raise OSError(f"etcd {self.endpoints[self.i]}: {e}") from None
        if resp.status != 200:
            self.close()
            self.i = (self.i + 1) % len(self.endpoints)
            raise RuntimeError(f"etcd answered {resp.status}: {data[:200]!r}")
        return json.loads(data)

    def put(self, key: str, value: str) -> dict[str, Any]:
        return self.call("/v3/kv/put", {"key": b64(key), "value": b64(value)})

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


class EtcdCluster:
    def __init__(self, base: str, exe: str) -> None:
        self.base, self.exe = base, exe
        self.names = ["e1", "e2", "e3"]
        self.client_ports = {n: free_port() for n in self.names}
        self.peer_ports = {n: free_port() for n in self.names}
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def endpoint(self, name: str) -> str:
        return f"127.0.0.1:{self.client_ports[name]}"

    def start(self, name: str) -> None:
        cluster = ",".join(f"{n}=http://127.0.0.1:{self.peer_ports[n]}" for n in self.names)
        cmd = [self.exe, "--name", name, "--data-dir", os.path.join(self.base, name),
               "--listen-client-urls", f"http://{self.endpoint(name)}",
               "--advertise-client-urls", f"http://{self.endpoint(name)}",
               "--listen-peer-urls", f"http://127.0.0.1:{self.peer_ports[name]}",
               "--initial-advertise-peer-urls", f"http://127.0.0.1:{self.peer_ports[name]}",
               "--initial-cluster", cluster, "--initial-cluster-state", "new",
               "--initial-cluster-token", "evnet-bench", "--log-level", "error"]
        log = open(os.path.join(self.base, f"{name}.log"), "ab")  # noqa: SIM115 - the child owns it
        self.procs[name] = subprocess.Popen(cmd, stdout=log, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        wait_listening("127.0.0.1", self.client_ports[name], 30, self.procs[name])

    def leader(self, timeout: float = 30.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for n in self.procs:
                try:
                    st = EtcdClient([self.endpoint(n)]).call("/v3/maintenance/status", {})
                except (OSError, RuntimeError):
                    continue
                if st.get("leader") and st["leader"] == st["header"]["member_id"]:
                    return n
            time.sleep(0.05)
        raise RuntimeError("etcd elected no leader")

    def kill(self, name: str) -> None:
        p = self.procs.pop(name)
        p.send_signal(signal.SIGKILL)
        p.wait()

    def stop(self) -> None:
        for p in self.procs.values():
            p.terminate()
        for p in self.procs.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def find_or_install_etcd() -> str | None:
    exe = shutil.which("etcd")
    if exe:
        return exe
    print("etcd not found: installing Debian's etcd-server with apt-get ...", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for cmd in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "etcd-server"]):
        r = subprocess.run(cmd, env=env, capture_output=True)
        if r.returncode != 0:
            print(f"  {' '.join(cmd)} failed ({r.returncode}): {r.stderr.decode(errors='replace')[-300:]}")
            return None
    return shutil.which("etcd")
