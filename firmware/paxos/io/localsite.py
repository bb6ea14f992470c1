"""A site of `evnet replica` processes on this machine, for fault tests, benchmarks and demos.

Each replica is a real child process (`python -m evnet.cli replica`), so kill -9, SIGSTOP and
SIGCONT act on it exactly as on a charge point; its data directory survives a restart.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from evnet.config import Config, load_config
from evnet.config.site_key import site_key
from firmware.paxos.io.client import KvClient
from firmware.paxos.io.process import write_site_configs


class LocalSite:
    def __init__(self, directory: str, members: list[str], broker_url: str, *, site: str = "lab",
                 storage: str | None = None, extra_args: list[str] | None = None) -> None:
        self.dir = Path(directory)
        self.members = list(members)
        self.paths = write_site_configs(str(self.dir / "etc"), self.members, broker_url, site=site)
        self.cfg: Config = load_config(self.paths[self.members[0]])
        self.key = site_key(self.cfg)
        self.extra = list(extra_args or []) + (["--storage", storage] if storage else [])
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def start(self, cp: str) -> None:
        """Start (or restart, with its data) replica `cp`; returns once it is subscribed."""
        log = open(self.dir / f"{cp}.log", "ab")  # noqa: SIM115 - the child owns it
        proc = subprocess.Popen([sys.executable, "-m", "evnet.cli", "replica", "--config", self.paths[cp],
                                 "--data-dir", str(self.dir / "data" / cp), *self.extra],
                                stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL)
        log.close()
        self.procs[cp] = proc
        assert proc.stdout is not None
        line = proc.stdout.readline()  # "replica cp1 of site lab running" once subscribed; b"" if it died
        if b"running" not in line:
            raise RuntimeError(f"replica {cp} did not start: {line!r}; log in {self.dir / (cp + '.log')}")

    def start_all(self) -> LocalSite:
        for cp in self.members:
            self.start(cp)
        return self

    def kill(self, cp: str) -> None:
        """kill -9: no goodbye, no flush; the broker sees the connection drop."""
        proc = self.procs.pop(cp)
        proc.kill()
        proc.wait(10)

    def pause(self, cp: str) -> None:
        self.procs[cp].send_signal(signal.SIGSTOP)

    def resume(self, cp: str) -> None:
        self.procs[cp].send_signal(signal.SIGCONT)

    def client(self, name: str, **kw: float) -> KvClient:
        return KvClient(self.cfg.mqtt, self.cfg.site_id, name, self.key, **kw).start()

    def log_text(self, cp: str) -> str:
        return (self.dir / f"{cp}.log").read_text(errors="replace")

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
                proc.terminate()
        for cp, proc in list(self.procs.items()):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            del self.procs[cp]

    def __enter__(self) -> LocalSite:
        return self.start_all()

    def __exit__(self, *exc: object) -> None:
        self.stop_all()

