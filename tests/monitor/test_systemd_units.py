"""The shipped systemd units: notify, watchdog and restart for both; their commands exist; systemd accepts them."""

from __future__ import annotations

import configparser
import importlib
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from evnet.cli import COMMANDS

UNITS = Path(__file__).resolve().parent.parent.parent / "config" / "systemd"


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.optionxform = str  # keep systemd's CamelCase keys
    parser.read_string((UNITS / name).read_text())
    return parser


@pytest.mark.parametrize("name, command, watchdog, restart", [
    ("evnet-evse@.service", "evse", "3", "on-failure"),
    ("evnet-cp@.service", "cp", "3", "on-failure"),
    ("evnet-monitor@.service", "monitor", "5", "always"),
])
def test_unit_is_a_notify_service_with_a_watchdog(name: str, command: str, watchdog: str, restart: str) -> None:
    service = unit(name)["Service"]
    assert service["Type"] == "notify" and service["WatchdogSec"] == watchdog and service["Restart"] == restart
    argv = shlex.split(service["ExecStart"])
    assert argv[1] == command and argv[2:4] == ["--config", "/etc/evnet/%i.toml"]
    module = {"evse": "firmware.engine.evse", "monitor": "firmware.monitor.watchdog",
              "cp": "firmware.chargepoint.process"}[command]
    assert callable(importlib.import_module(module).main)
    assert COMMANDS.get(command, (f"{module}:main",))[0] == f"{module}:main"
    assert service["RestartPreventExitStatus"] == "2"  # a configuration mistake is not retried forever


def test_the_monitor_restarts_its_engine_and_starts_first() -> None:
    """Its engine is `evnet evse` (a private point) or `evnet cp` (a site's): it restarts whichever runs."""
    monitor = unit("evnet-monitor@.service")
    argv = shlex.split(monitor["Service"]["ExecStart"])
    assert argv[argv.index("--on-fault") + 1] == "systemctl try-restart evnet-evse@%i.service evnet-cp@%i.service"
    assert monitor["Unit"]["Before"] == "evnet-evse@%i.service evnet-cp@%i.service"
    for engine in ("evnet-evse@.service", "evnet-cp@.service"):
        assert "evnet-monitor@%i.service" in unit(engine)["Unit"]["Wants"]
    rules = (UNITS / "50-evnet-monitor.rules").read_text()
    assert "evnet-(evse|cp)@" in rules and '"try-restart"' in rules


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_systemd_analyze_accepts_the_units(tmp_path: Path) -> None:
    exe = shutil.which("evnet") or sys.executable
    for name in ("evnet-evse@.service", "evnet-cp@.service", "evnet-monitor@.service"):
        text = (UNITS / name).read_text().replace("/usr/local/bin/evnet", exe)
        (tmp_path / name.replace("@.", "@cp1.")).write_text(text)
    res = subprocess.run(["systemd-analyze", "verify", *map(str, sorted(tmp_path.iterdir()))],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0 and res.stderr.strip() == "", res.stderr


def test_the_engine_keeps_its_journal_in_its_state_directory(monkeypatch: pytest.MonkeyPatch) -> None:
    from firmware.engine.journal import default_dir

    service = unit("evnet-evse@.service")["Service"]
    assert service["StateDirectory"] == "evnet" and "/var/lib/evnet" in service["ReadWritePaths"]
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/evnet")  # what systemd sets for StateDirectory=evnet
    assert default_dir("riverside", "bay1") == "/var/lib/evnet/riverside/bay1/engine"
    monkeypatch.delenv("STATE_DIRECTORY")
    monkeypatch.setenv("XDG_STATE_HOME", "/home/me/.local/state")
    assert default_dir("riverside", "bay1") == "/home/me/.local/state/evnet/riverside/bay1/engine"
