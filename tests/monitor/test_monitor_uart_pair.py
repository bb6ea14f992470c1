"""On a Pi the engine and its monitor each open their own UART, crossed TX->RX (docs/wiring.md)."""

from __future__ import annotations

import queue
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 20.0

CONFIG = """\
[charge_point]
id = "cp1"
site = "s1"
price_eur_kwh = 0.3
max_current_a = 32

[site]
members = ["cp1"]
limit_a = 32
key_file = "site.key"

[hal]
pin_factory = "mock"

[mqtt]
url = "mqtt://127.0.0.1:1"

[monitor]
serial_url = "{engine_end}"
monitor_url = "{monitor_end}"
heartbeat_s = 0.1
misses = 3
"""


def test_the_monitor_opens_its_own_end_of_a_crossed_pair(tmp_path: Path, pty_pair: tuple[str, str]) -> None:
    engine_end, monitor_end = pty_pair
    (tmp_path / "site.key").write_text("00" * 32)
    cfg = tmp_path / "cp1.toml"
    cfg.write_text(CONFIG.format(engine_end=engine_end, monitor_end=monitor_end))
    engine = subprocess.Popen([sys.executable, "-m", "firmware.monitor.engine_stub", engine_end, "CHARGING"],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True)
    monitor = subprocess.Popen([sys.executable, "-m", "evnet.cli", "monitor", "--config", str(cfg)], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        assert engine.stdout is not None and engine.stdout.readline() == "ready\n"
        lines: queue.Queue[str] = queue.Queue()  # the monitor's log, a line per event
        threading.Thread(target=lambda: [lines.put(line) for line in monitor.stderr or ()], daemon=True).start()
        deadline = time.monotonic() + TIMEOUT
        while True:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))  # queue.Empty: never heard it
            if "event=monitor.engine_up" in line:
                break
        assert "status=CHARGING" in line  # the stub's answer came back over the other pty
    finally:
        for proc in (monitor, engine):
            proc.terminate()
            proc.wait(timeout=10)
