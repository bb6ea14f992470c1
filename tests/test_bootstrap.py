"""`./bootstrap` on a machine whose apt is busy (a Raspberry Pi at first boot): it waits, it does not fail."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APT_GET_WAIT = ROOT / "tools" / "apt-get-wait"

pytestmark = pytest.mark.skipif(shutil.which("apt-get") is None or os.geteuid() != 0,
                                reason="needs Debian's apt-get, as root")

HOLD = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o640)
fcntl.lockf(fd, fcntl.LOCK_EX)  # as apt itself locks it
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def test_apt_update_waits_for_a_held_lock_instead_of_failing(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    (lists / "partial").mkdir(parents=True)
    offline = ["-o", f"Dir::State::Lists={lists}", "-o", "Dir::Etc::sourcelist=/dev/null",
               "-o", "Dir::Etc::sourceparts=/nonexistent", "-o", f"Dir::Cache={tmp_path}", "update", "-qq"]
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lists / "lock"), "2"], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        plain = subprocess.run(["apt-get", *offline], capture_output=True, text=True)
        assert plain.returncode != 0 and "Could not get lock" in plain.stderr  # what bootstrap met before
        started = time.monotonic()
        waited = subprocess.run([str(APT_GET_WAIT), *offline], capture_output=True, text=True, timeout=60)
        took = time.monotonic() - started
    finally:
        holder.kill()
        holder.wait()
    assert waited.returncode == 0, waited.stderr
    assert took >= 1.0  # it really waited for the holder to let go
    assert waited.stderr.count("apt is busy") == 1  # said once, not once per try


def test_apt_gives_up_after_the_limit_with_apts_own_error(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    (lists / "partial").mkdir(parents=True)
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(lists / "lock"), "30"], stdout=subprocess.PIPE,
                              text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        res = subprocess.run([str(APT_GET_WAIT), "-o", f"Dir::State::Lists={lists}", "-o",
                              "Dir::Etc::sourcelist=/dev/null", "-o", "Dir::Etc::sourceparts=/nonexistent", "update",
                              "-qq"], capture_output=True, text=True, timeout=60,
                             env={**os.environ, "APT_LOCK_WAIT_S": "1"})
    finally:
        holder.kill()
        holder.wait()
    assert res.returncode != 0 and "Could not get lock" in res.stderr


def test_bootstrap_uses_the_waiting_apt() -> None:
    text = (ROOT / "bootstrap").read_text()
    assert "tools/apt-get-wait update" in text and "tools/apt-get-wait install" in text
    assert "apt-get update" not in text
