"""The drivers' apps of the demo: each driver runs `evnet driver` (a real process, its own Ed25519 key, no
site key) to ask for a charge and follow it to its ticket, and again to stop it; what the app prints
(JSON lines) is kept for the report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware.site import new_private_key, public_key_b64
from firmware.site.credentials import private_key_pem


@dataclass
class DriverApp:
    """Driver `driver`'s app, at home at charge point `cp`; its key in `root`."""

    driver: str
    cp: str
    config: Path
    root: Path
    events: list[dict[str, Any]] = field(default_factory=list)
    proc: subprocess.Popen[bytes] | None = None
    charges: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        key = new_private_key()
        self.key = self.root / f"{self.driver}.pem"
        self.key.write_bytes(private_key_pem(key))
        self.key.chmod(0o600)
        self.public = public_key_b64(key)

    def _args(self, *verb: str) -> list[str]:
        return [sys.executable, "-m", "evnet.cli", "driver", "--id", self.driver, "--key", str(self.key),
                "--config", str(self.config), "--ticket-file", str(self.root / f"{self.driver}.ticket.json"),
                "--json", *verb]

    def charge(self, timeout: float = 20.0) -> dict[str, Any] | None:
        """`charge --at CP --wait-ticket`: the site's answer (None: refused, or no answer in `timeout`); the
        process goes on following the session to its ticket."""
        self.charges += 1
        mark = len(self.events)
        with open(self.root / f"driver-{self.driver}.log", "ab") as err:
            self.proc = subprocess.Popen(self._args("charge", "--at", self.cp, "--wait-ticket"), stdout=subprocess.PIPE,
                                         stderr=err, stdin=subprocess.DEVNULL, cwd=self.root,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1"})
        threading.Thread(target=self._read, args=(self.proc,), name=f"app-{self.driver}", daemon=True).start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                answer = next((e for e in self.events[mark:] if e.get("event") == "answer"), None)
            if answer is not None:
                return answer
            if self.proc.poll() is not None:
                return None
            time.sleep(0.02)
        return None

    def _read(self, proc: subprocess.Popen[bytes]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                with self._lock:
                    self.events.append(event)

    def following(self) -> bool:
        """The app still follows a session (or a request) to its ticket."""
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
        """`stop`: the session ends at its charge point; the following app then prints its ticket and exits."""
        return subprocess.run(self._args("stop"), capture_output=True, text=True, timeout=timeout, cwd=self.root)

    def wait(self, timeout: float) -> int | None:
        if self.proc is None:
            return None
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def tickets(self) -> list[dict[str, Any]]:
        with self._lock:
            return [e for e in self.events if e.get("event") == "ticket"]

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
