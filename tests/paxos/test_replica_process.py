"""`evnet replica` as a person runs it: one process per data directory (A6); Ctrl-C and an unreachable
broker while it waits for one (C2)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from central_broker.brokers import free_port
from firmware.paxos.io.datadir import DataDir, DataDirLockedError
from firmware.paxos.io.localsite import LocalSite
from firmware.paxos.io.process import write_site_configs

MEMBERS = ["cp1", "cp2", "cp3"]


def replica_cmd(config: str, data_dir: Path) -> list[str]:
    return [sys.executable, "-m", "evnet.cli", "replica", "--config", config, "--data-dir", str(data_dir)]


class StderrLines:
    """`proc`'s stderr, read line by line on a thread of its own (so a test can wait for one)."""

    def __init__(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        self.lines: list[str] = []
        self._thread = threading.Thread(target=lambda: self.lines.extend(proc.stderr), daemon=True)
        self._thread.start()

    def wait_for(self, needle: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not any(needle in line for line in list(self.lines)):
            assert time.monotonic() < deadline, f"no line with {needle!r} within {timeout} s: {self.lines}"
            time.sleep(0.01)

    def all(self) -> list[str]:
        self._thread.join(5)
        return self.lines


# ------------------------------------------------------------------ A6: one process per data directory

def test_a_second_replica_on_the_same_data_directory_refuses_to_start_until_the_first_is_gone(tmp_path, mosquitto):
    with LocalSite(str(tmp_path), MEMBERS, mosquitto.url) as site:
        data = tmp_path / "data" / "cp1"
        second = subprocess.run(replica_cmd(site.paths["cp1"], data), capture_output=True, text=True, timeout=30)
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        assert str(data) in lines[0] and "in use by another replica" in lines[0]
        assert f"pid {site.procs['cp1'].pid}" in lines[0]
        assert "running" not in second.stdout
        site.kill("cp1")  # kill -9: the kernel drops the lock with the process
        site.start("cp1")  # ... so a new one starts on the same directory
        with site.client("c", timeout=10.0) as c:
            assert c.put("k", 1) == "ok"


def test_the_lock_is_held_until_closed_and_each_start_takes_higher_epochs(tmp_path):
    d = DataDir.open(str(tmp_path))
    with pytest.raises(DataDirLockedError, match=f"pid {os.getpid()}"):
        DataDir.open(str(tmp_path))
    first = [d.next_epoch(), d.next_epoch()]
    d.close()
    again = DataDir.open(str(tmp_path))
    later = again.next_epoch()
    again.close()
    assert first[0] < first[1] < later
    assert later >> 32 == d.start + 1  # the start number was kept on disk and raised
    assert first[0] >> 32 >= int(time.time()) - 5  # never below the Unix time (a lost epoch file brings nothing back)


def test_an_unreadable_epoch_file_falls_back_to_the_clock(tmp_path, caplog):
    d = DataDir.open(str(tmp_path))
    start = d.start
    d.close()
    (tmp_path / "epoch").write_text("garbage\n")
    d = DataDir.open(str(tmp_path))
    assert d.start >= int(time.time()) and d.next_epoch() > 0
    d.close()
    assert "paxos.epoch_file_unreadable" in caplog.text and start <= d.start


# ------------------------------------------------------------------ C2: the broker, unreachable

@pytest.fixture
def config(tmp_path):
    def make(url: str) -> str:
        return write_site_configs(str(tmp_path / "etc"), MEMBERS, url)["cp1"]
    return make


def test_ctrl_c_while_waiting_for_the_broker_ends_the_replica_at_once(tmp_path, config):
    proc = subprocess.Popen(replica_cmd(config(f"mqtt://127.0.0.1:{free_port()}"), tmp_path / "data"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        StderrLines(proc).wait_for("paxos.broker_unreachable", 5.0)  # it is waiting for the broker
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(5)
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0 and took < 1.0, f"exit {proc.returncode} after {took:.2f} s"
    assert "running" not in proc.stdout.read()


@pytest.mark.parametrize("where, says", [
    ("nonexistent.invalid:1883", "host 'nonexistent.invalid' does not resolve"),
    ("127.0.0.1:{port}", "connection refused: nothing listens on 127.0.0.1:{port}"),
], ids=["unresolvable", "refused"])
def test_an_unreachable_broker_is_said_at_once_in_one_line_and_repeats_are_folded(tmp_path, config, where, says):
    port = free_port()
    proc = subprocess.Popen(replica_cmd(config(f"mqtt://{where.format(port=port)}"), tmp_path / "data"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        err = StderrLines(proc)
        err.wait_for("paxos.broker_unreachable", 3.0)  # at the first attempt, not after the 10 s wait
        time.sleep(2.0)  # twenty more attempts
        proc.send_signal(signal.SIGINT)
        proc.wait(5)
        lines = err.all()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    said = [line for line in lines if "paxos.broker_unreachable" in line]
    assert len(said) == 1, said  # the repeats within 5 s are folded into the next line
    assert says.format(port=port) in said[0] and "WARNING" in said[0] and "retrying=True" in said[0]


# ------------------------------------------------------------------ sizes

@pytest.mark.parametrize("flags, says", [
    (["--max-batch", "200"], "max_batch 200: a slot of that many commands could be"),
    (["--max-snapshot", "0"], "max_snapshot > 0"),
], ids=["slot-too-big", "no-snapshot"])
def test_sizes_that_could_not_travel_are_refused_at_start_in_one_line(tmp_path, config, flags, says):
    proc = subprocess.run([*replica_cmd(config(f"mqtt://127.0.0.1:{free_port()}"), tmp_path / "data"), *flags],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and proc.stderr.startswith("evnet replica: ") and says in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
