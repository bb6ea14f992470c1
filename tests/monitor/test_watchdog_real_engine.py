"""The monitor against the real engine process (`evnet evse`: control loop, TCP cable, simulated meter,
MQTT), over a real serial link: SIGSTOP and kill -9 fault the charge point, and it clears when the engine
answers again. The engine's own Last Will (DISCONNECTED, on kill -9) does not hide the fault.
"""

from __future__ import annotations

import queue
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from central_broker.brokers import free_port
from evnet.config import load_config
from firmware.monitor.watchdog import Watchdog
from firmware.protocols.heartbeat import Health

from .test_watchdog import ROOT, SAFETY_PIN, TIMEOUT, Topics, is_status, running_watchdog, wait_health, write_config

RUN_ENGINE = "import sys; from firmware.engine.evse import main; sys.exit(main(sys.argv[1:]))"


def start_engine(config: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen([sys.executable, "-c", RUN_ENGINE, "--config", str(config), "--log-level", "WARNING"],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.fixture
def setup(tmp_path: Path, mosquitto, mock_factory) -> Iterator[tuple[Watchdog, object, Topics, Path]]:
    path = write_config(tmp_path, mosquitto.url, heartbeat_s=0.25, misses=2)
    text = path.read_text().replace("socket://127.0.0.1:0", f"socket://127.0.0.1:{free_port()}")
    path.write_text(text + '\n[hal]\npin_factory = "mock"\n\n[hal.pilot]\ncable = "tcp://127.0.0.1:0"\n')
    cfg = load_config(path)
    topics = Topics(cfg, "evnet/t/cp/cp1/#")
    try:
        with running_watchdog(cfg, mock_factory, startup_grace_s=30) as wd:
            yield wd, mock_factory.pin(SAFETY_PIN), topics, path
    finally:
        topics.link.stop()


@pytest.mark.slow
def test_monitor_catches_the_real_engine_hung_and_killed(setup) -> None:
    wd, safety_pin, topics, config = setup
    engine = start_engine(config)
    try:
        wait_health(wd, Health.HEALTHY)  # the engine's first answer (it may take a second to start)
        assert wd.hb.engine_status == "AVAILABLE" and safety_pin.state == 1

        engine.send_signal(signal.SIGSTOP)
        wait_health(wd, Health.FAULTED)
        assert safety_pin.state == 0 and wd.fault_code == "engine_hung"
        topics.wait_for(is_status("FAULTED", "engine_hung"), "FAULTED while hung")
        engine.send_signal(signal.SIGCONT)
        wait_health(wd, Health.HEALTHY)
        assert safety_pin.state == 1
        topics.wait_for(is_status("AVAILABLE"), "the engine's status again")

        engine.kill()
        engine.wait(TIMEOUT)
        wait_health(wd, Health.FAULTED)
        assert safety_pin.state == 0 and wd.fault_code == "engine_down"
        topics.wait_for(is_status("DISCONNECTED"), "the killed engine's Last Will")
        topics.wait_for(is_status("FAULTED", "engine_down"), "FAULTED after (or again after) the Last Will")
        late = Topics(wd.cfg, "evnet/t/cp/cp1/status")  # what a dashboard connecting now is told
        late.wait_for(is_status("FAULTED", "engine_down"), "FAULTED retained")
        late.link.stop()

        engine = start_engine(config)  # what systemd's Restart= does
        wait_health(wd, Health.HEALTHY)
        assert safety_pin.state == 1 and wd.faults == 2
    finally:
        engine.send_signal(signal.SIGCONT)
        engine.kill()
        engine.wait(TIMEOUT)


@pytest.mark.slow
def test_a_planned_stop_of_the_real_engine_is_no_fault_but_an_unannounced_death_is(setup) -> None:
    wd, safety_pin, topics, config = setup
    engine = start_engine(config)
    try:
        wait_health(wd, Health.HEALTHY)
        topics.wait_for(lambda t, b: b.get("event") == "engine_up", "engine_up")
        engine.send_signal(signal.SIGTERM)  # systemctl stop
        assert engine.wait(TIMEOUT) == 0
        wait_health(wd, Health.STOPPED)
        assert safety_pin.state == 0  # no engine, no energy: the line's rest state
        body = topics.wait_for(lambda t, b: b.get("event") == "engine_stopped", "the engine_stopped alert")
        assert body["reason"] == "SHUTDOWN" and body["last_status"] == "AVAILABLE"
        # Heartbeats go on unanswered, well past the misses that would fault (no event says "a miss": poll).
        until(lambda: wd.hb.misses >= wd.hb.max_misses + 3, "heartbeats missed after the stop")
        seen = drain(topics)
        assert wd.hb.health is Health.STOPPED and wd.faults == 0 and wd.fault_code is None
        assert not [b for t, b in seen if b.get("status") == "FAULTED" or b.get("event") == "engine_lost"], repr(seen)

        engine = start_engine(config)  # started again: healthy, and an unannounced death is still a fault
        wait_health(wd, Health.HEALTHY)
        assert safety_pin.state == 1
        engine.kill()
        engine.wait(TIMEOUT)
        wait_health(wd, Health.FAULTED)
        assert safety_pin.state == 0 and wd.faults == 1
        topics.wait_for(is_status("FAULTED", "engine_down"), "FAULTED after kill -9")
    finally:
        if engine.poll() is None:
            engine.kill()
        engine.wait(TIMEOUT)


def until(check, what: str) -> None:
    tick = threading.Event()
    for _ in range(int(TIMEOUT / 0.01)):
        if check():
            return
        tick.wait(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def drain(topics: Topics) -> list[tuple[str, dict]]:
    """Every message the observer has now (the monitor's heartbeat reports come every 10 s, alerts at once)."""
    out = []
    while True:
        try:
            out.append(topics.q.get_nowait())
        except queue.Empty:
            return out
