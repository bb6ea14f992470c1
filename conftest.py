"""Fixtures shared by every test: real brokers on free loopback ports, a mock pin factory."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

# gpiozero must never look for a GPIO chip in tests: choose its mock factory (PWM-capable pins).
os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
os.environ.setdefault("GPIOZERO_MOCK_PIN_CLASS", "mockpwmpin")

from central_broker.brokers import EmbeddedBroker, MosquittoBroker  # noqa: E402
from evnet.mqtt import MAX_PAYLOAD  # noqa: E402

# What the shipped config/mosquitto/*.conf sets beyond the test broker's own basics, so that
# tests meet the broker production runs (tests/test_mosquitto_conf.py checks they agree).
PRODUCTION_LIMITS = f"message_size_limit {MAX_PAYLOAD}\n"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--rig", action="store", default=None,
                     help="run hil_tests/ against a real rig described by this configuration file")


def _running_mosquitto() -> Iterator[MosquittoBroker]:
    if shutil.which("mosquitto") is None and not os.path.exists("/usr/sbin/mosquitto"):
        pytest.fail("mosquitto is not installed: run ./bootstrap (it installs it with apt)")
    broker = MosquittoBroker(extra_conf=PRODUCTION_LIMITS)
    broker.start()
    try:
        yield broker
    finally:
        broker.close()


@pytest.fixture
def mosquitto() -> Iterator[MosquittoBroker]:
    """A Mosquitto of this test's own (TCP_NODELAY on, production's size limit), on a free port.

    `.restart()`, `.stop()`, `.url`.
    """
    yield from _running_mosquitto()


@pytest.fixture(scope="session")
def mosquitto_shared() -> Iterator[MosquittoBroker]:
    """One Mosquitto for the whole run, for tests that neither stop it nor care about others' topics."""
    yield from _running_mosquitto()


@pytest.fixture
def amqtt_broker() -> Iterator[EmbeddedBroker]:
    """The embedded amqtt broker (MQTT 3.1.1 only), on a free port."""
    broker = EmbeddedBroker()
    broker.start()
    try:
        yield broker
    finally:
        broker.stop()


@pytest.fixture
def pty_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    """Two linked ptys from socat, as two wired UARTs would be: what one end writes the other reads."""
    if shutil.which("socat") is None:
        pytest.fail("socat is not installed: run ./bootstrap (it installs it with apt)")
    a, b = tmp_path / "ttyA", tmp_path / "ttyB"
    proc = subprocess.Popen(["socat", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 10
    while not (a.exists() and b.exists()):  # socat gives no other sign that its ptys are there
        assert time.monotonic() < deadline, "socat did not create its ptys"
        time.sleep(0.01)
    try:
        yield str(a), str(b)
    finally:
        proc.terminate()
        proc.wait(timeout=5)


@pytest.fixture
def mock_factory() -> Iterator[object]:
    """gpiozero's MockFactory with PWM-capable pins, installed as the default and reset after."""
    from gpiozero import Device
    from gpiozero.pins.mock import MockFactory, MockPWMPin

    factory = MockFactory(pin_class=MockPWMPin)
    previous = Device.pin_factory
    Device.pin_factory = factory
    try:
        yield factory
    finally:
        factory.reset()
        Device.pin_factory = previous
