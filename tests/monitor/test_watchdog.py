"""The monitor watchdog against a real engine child process over a real serial link (socket://),
with the safety relay on gpiozero's mock pins and alerts on a real Mosquitto.

It must catch an engine killed with kill -9, one frozen with SIGSTOP, and one whose control loop
blocks while its process and link stay up; and clear the fault when an engine answers again.
"""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from central_broker.brokers import free_port
from evnet.clock import RealClock
from evnet.config import Config, load_config
from evnet.mqtt import MqttLink, decode_payload
from firmware.monitor.port import MonitorPort, listen_address
from firmware.monitor.reporter import MonitorReporter
from firmware.monitor.watchdog import Watchdog
from firmware.protocols.heartbeat import Health
from hal.gpio import Relay

HERE = Path(__file__).parent
ROOT = HERE.parent.parent
TIMEOUT = 10.0
SAFETY_PIN = 27


def write_config(tmp_path: Path, mqtt_url: str, heartbeat_s: float = 0.2, misses: int = 2) -> Path:
    (tmp_path / "site.key").write_text("test-key\n")
    path = tmp_path / "cp1.toml"
    path.write_text(f"""
[charge_point]
id = "cp1"
site = "t"
location = "bay 1"
price_eur_kwh = 0.3
max_current_a = 32
journal_dir = "journal"

[site]
members = ["cp1"]
limit_a = 32
key_file = "site.key"

[mqtt]
url = "{mqtt_url}"

[monitor]
serial_url = "socket://127.0.0.1:0"
heartbeat_s = {heartbeat_s}
misses = {misses}
""")
    return path


class Topics:
    """A real MQTT subscriber that queues (topic, body) for the test to wait on."""

    def __init__(self, cfg, topic_filter: str) -> None:
        self.q: queue.Queue[tuple[str, dict]] = queue.Queue()
        self.link = MqttLink(cfg.mqtt, "test-observer")
        self.link.start(wait=TIMEOUT)
        assert self.link.subscribe(topic_filter, lambda t, p: self.q.put((t, decode_payload(p))) if p else None,
                                   wait=TIMEOUT)

    def wait_for(self, check: Callable[[str, dict], bool], what: str) -> dict:
        while True:
            try:
                topic, body = self.q.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"no MQTT message: {what}") from None
            if check(topic, body):
                return body


class Engine:
    def __init__(self, url: str, status: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "firmware.monitor.engine_stub", url, status],
                                     stdout=subprocess.PIPE, text=True, cwd=ROOT)
        assert self.proc.stdout.readline().strip() == "ready"

    def signal(self, sig: int) -> None:
        self.proc.send_signal(sig)

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
        self.proc.wait(TIMEOUT)


@contextmanager
def running_watchdog(cfg: Config, mock_factory: object, *, reporter: bool = True,
                     startup_grace_s: float = 0.0) -> Iterator[Watchdog]:
    """A `Watchdog` on its own thread, with its port and safety relay; stopped and released after."""
    port = MonitorPort(cfg.monitor.monitor_end, cp="cp1")
    relay = Relay("safety", cfg.hal.pins.safety, pin_factory=mock_factory, cp="cp1")
    wd = Watchdog(cfg, port=port, safety=relay, reporter=MonitorReporter(cfg, RealClock()) if reporter else None,
                  startup_grace_s=startup_grace_s)
    stop = threading.Event()
    thread = threading.Thread(target=wd.run, args=(stop,), daemon=True)
    thread.start()
    try:
        yield wd
    finally:
        stop.set()
        thread.join(TIMEOUT)
        if wd.reporter is not None:
            wd.reporter.stop()
        port.close()
        relay.close()


@pytest.fixture
def monitor(request: pytest.FixtureRequest, tmp_path: Path, mosquitto,
            mock_factory) -> Iterator[tuple[Watchdog, object, Topics]]:
    """A watchdog whose engine (a child the test starts) has `request.param` seconds (default 30) to answer first:
    a child Python may take more than two heartbeats to start on a loaded machine."""
    cfg = load_config(write_config(tmp_path, mosquitto.url))
    topics = Topics(cfg, "evnet/t/cp/cp1/#")
    try:
        with running_watchdog(cfg, mock_factory, startup_grace_s=getattr(request, "param", 30.0)) as wd:
            yield wd, mock_factory.pin(SAFETY_PIN), topics
    finally:
        topics.link.stop()


def wait_health(wd: Watchdog, health: Health) -> None:
    with wd.changed:
        assert wd.changed.wait_for(lambda: wd.hb.health is health, TIMEOUT), f"monitor never became {health}"


def is_status(value: str, fault: str | None = None) -> Callable[[str, dict], bool]:
    return lambda t, b: t.endswith("/status") and b.get("status") == value and b.get("fault") == fault


@pytest.mark.slow
def test_killed_then_hung_engines_cut_the_safety_line_and_fault_the_charge_point(monitor) -> None:
    wd, safety_pin, topics = monitor
    assert safety_pin.state == 0  # cut until an engine answers
    engine = Engine(wd.port.engine_url, "CHARGING")
    try:
        wait_health(wd, Health.HEALTHY)
        assert safety_pin.state == 1
        topics.wait_for(lambda t, b: b.get("event") == "engine_up" and b["status"] == "CHARGING", "engine_up")

        engine.signal(signal.SIGKILL)  # dead
        wait_health(wd, Health.FAULTED)
        assert safety_pin.state == 0 and wd.fault_code == "engine_down"
        body = topics.wait_for(is_status("FAULTED", "engine_down"), "FAULTED status")
        assert body["source"] == "monitor" and body["location"] == "bay 1"
        topics.wait_for(lambda t, b: t.endswith("/monitor") and b.get("event") == "engine_lost", "engine_lost")
        engine.close()

        engine = Engine(wd.port.engine_url, "AVAILABLE")  # the service manager restarted it
        wait_health(wd, Health.HEALTHY)
        assert safety_pin.state == 1
        topics.wait_for(is_status("AVAILABLE"), "status back to the engine's")

        engine.signal(signal.SIGSTOP)  # frozen: process and socket still there
        wait_health(wd, Health.FAULTED)
        assert safety_pin.state == 0 and wd.fault_code == "engine_hung"
        topics.wait_for(is_status("FAULTED", "engine_hung"), "FAULTED for the hung engine")
        engine.signal(signal.SIGCONT)
        wait_health(wd, Health.HEALTHY)
        assert safety_pin.state == 1 and wd.faults == 2
        topics.wait_for(is_status("AVAILABLE"), "cleared after SIGCONT")
    finally:
        engine.close()


@pytest.mark.slow
def test_an_engine_whose_control_loop_blocks_is_caught(monitor, tmp_path) -> None:
    wd, safety_pin, topics = monitor
    marker = tmp_path / "restart-asked"
    wd.on_fault = [sys.executable, "-c", f"open({str(marker)!r}, 'w').write('restart')"]  # --on-fault CMD
    engine = Engine(wd.port.engine_url, "CHARGING")
    try:
        wait_health(wd, Health.HEALTHY)
        engine.signal(signal.SIGUSR1)  # the loop blocks; its reader thread and the link live on
        wait_health(wd, Health.FAULTED)
        assert safety_pin.state == 0 and wd.fault_code == "engine_hung" and engine.proc.poll() is None
        topics.wait_for(is_status("FAULTED", "engine_hung"), "FAULTED")
        (child,) = wd._children or [None]
        if child is not None:  # not yet reaped by the loop
            child.wait(TIMEOUT)
        assert marker.read_text() == "restart"
    finally:
        engine.close()


@pytest.mark.slow
@pytest.mark.parametrize("monitor", [0.0], indirect=True)  # no grace: faulted at once with no engine
def test_faulted_status_is_held_against_the_engines_last_will(monitor, tmp_path) -> None:
    wd, safety_pin, topics = monitor
    wait_health(wd, Health.FAULTED)  # no engine at all, no grace: FAULTED after 2 misses
    topics.wait_for(is_status("FAULTED", "engine_down"), "FAULTED")
    # What a hung engine's broker session does once its keepalive runs out:
    wd.reporter.link.publish_json("evnet/t/cp/cp1/status", {"cp": "cp1", "status": "DISCONNECTED"}, retain=True)
    topics.wait_for(is_status("DISCONNECTED"), "the Last Will")
    topics.wait_for(is_status("FAULTED", "engine_down"), "FAULTED again")
    assert wd.reporter.republished >= 1 and safety_pin.state == 0


@pytest.mark.slow
def test_evnet_monitor_command_runs_and_stops_cleanly(tmp_path, mosquitto) -> None:
    port = free_port()
    path = write_config(tmp_path, mosquitto.url)
    path.write_text(path.read_text().replace("socket://127.0.0.1:0", f"socket://127.0.0.1:{port}"))
    cfg = load_config(path)
    assert listen_address(cfg.monitor.serial_url) == ("127.0.0.1", port)
    topics = Topics(cfg, "evnet/t/cp/cp1/#")
    proc = subprocess.Popen([sys.executable, "-m", "evnet.cli", "monitor", "--config", str(path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    engine = None
    try:
        topics.wait_for(lambda t, b: b.get("event") == "monitor_started", "monitor_started")
        engine = Engine(f"socket://127.0.0.1:{port}", "AVAILABLE")
        topics.wait_for(lambda t, b: b.get("event") == "engine_up", "engine_up")
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=TIMEOUT)
        assert proc.returncode == 0, err
        topics.wait_for(lambda t, b: b.get("event") == "monitor_stopped", "monitor_stopped")
        assert "event=monitor.engine_up" in err
    finally:
        if proc.poll() is None:
            proc.kill()
        if engine is not None:
            engine.close()
        topics.link.stop()


@pytest.mark.slow
def test_monitor_on_a_serial_device_catches_a_stopped_engine(tmp_path: Path, pty_pair, mock_factory) -> None:
    monitor_tty, engine_tty = pty_pair
    path = write_config(tmp_path, "mqtt://127.0.0.1:1")  # no broker: the relay works without one
    ends = f'"{engine_tty}"\nmonitor_url = "{monitor_tty}"'  # the engine's end, and the monitor's own
    path.write_text(path.read_text().replace('"socket://127.0.0.1:0"', ends))
    cfg = load_config(path)
    with running_watchdog(cfg, mock_factory, reporter=False) as wd:
        assert not wd.port.listening
        engine = Engine(engine_tty, "AVAILABLE")
        try:
            wait_health(wd, Health.HEALTHY)
            assert mock_factory.pin(SAFETY_PIN).state == 1
            engine.signal(signal.SIGSTOP)
            wait_health(wd, Health.FAULTED)
            assert mock_factory.pin(SAFETY_PIN).state == 0
            assert wd.fault_code == "engine_hung"  # a UART cannot tell dead from hung: the device stays open
            engine.signal(signal.SIGCONT)
            wait_health(wd, Health.HEALTHY)
            assert mock_factory.pin(SAFETY_PIN).state == 1
        finally:
            engine.close()


@pytest.mark.slow
def test_a_fault_left_by_an_earlier_monitor_is_lifted_when_the_engine_answers(tmp_path, mosquitto, mock_factory):
    cfg = load_config(write_config(tmp_path, mosquitto.url))
    topics = Topics(cfg, "evnet/t/cp/cp1/status")
    stale = {"cp": "cp1", "status": "FAULTED", "fault": "engine_down", "source": "monitor"}
    topics.link.publish_json("evnet/t/cp/cp1/status", stale, retain=True).wait_for_publish(TIMEOUT)
    topics.wait_for(is_status("FAULTED", "engine_down"), "the stale FAULTED, retained")
    try:
        with running_watchdog(cfg, mock_factory, startup_grace_s=30) as wd:
            engine = Engine(wd.port.engine_url, "AVAILABLE")
            try:
                wait_health(wd, Health.HEALTHY)
                body = topics.wait_for(is_status("AVAILABLE"), "the engine's status instead of the stale fault")
                assert body["source"] == "monitor" and wd.faults == 0
            finally:
                engine.close()
    finally:
        topics.link.stop()


@pytest.mark.slow
def test_evnet_monitor_reports_to_systemd(tmp_path) -> None:
    """READY=1 at start, WATCHDOG=1 at half the watchdog period, STATUS=FAULTED when no engine answers."""
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify"))
    notify.settimeout(TIMEOUT)
    path = write_config(tmp_path, "mqtt://127.0.0.1:1")  # no broker: systemd hears it anyway
    path.write_text(path.read_text().replace("socket://127.0.0.1:0", f"socket://127.0.0.1:{free_port()}"))
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "400000"}
    proc = subprocess.Popen([sys.executable, "-m", "evnet.cli", "monitor", "--config", str(path),
                             "--startup-grace", "0"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        got: list[bytes] = []
        while not any(m.startswith(b"STATUS=FAULTED") for m in got):
            got.append(notify.recv(4096))
        assert got[0] == b"READY=1\nSTATUS=waiting for the engine; safety line cut"
        assert got.count(b"WATCHDOG=1") >= 2  # 0.2 s apart; the fault comes after about 0.6 s
        assert b"engine_down after 2 missed heartbeats; safety line cut" in got[-1]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
        while (msg := notify.recv(4096)) != b"STOPPING=1":
            assert msg == b"WATCHDOG=1"
    finally:
        if proc.poll() is None:
            proc.kill()
        notify.close()


@pytest.mark.slow
def test_evnet_monitor_says_when_the_broker_is_unreachable(tmp_path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    path = write_config(tmp_path, f"mqtt://127.0.0.1:{closed}")
    path.write_text(path.read_text().replace("socket://127.0.0.1:0", f"socket://127.0.0.1:{free_port()}"))
    proc = subprocess.Popen([sys.executable, "-m", "evnet.cli", "monitor", "--config", str(path)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines: queue.SimpleQueue = queue.SimpleQueue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stderr], daemon=True).start()
    try:
        while "event=mqtt.unreachable" not in (line := lines.get(timeout=TIMEOUT)):
            pass
        assert "connection refused: no broker listens there" in line and f"127.0.0.1:{closed}" in line
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(TIMEOUT) == 0
