"""sd_notify over a real AF_UNIX datagram socket: a path, the abstract namespace, no socket at all."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Iterator

import pytest

from evnet.systemd import SystemdNotifier, socket_address


@pytest.fixture
def path_socket(tmp_path) -> Iterator[tuple[socket.socket, str]]:
    path = str(tmp_path / "notify")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(5)
    yield sock, path
    sock.close()


def test_path_socket_receives_ready_watchdog_status(path_socket) -> None:
    sock, path = path_socket
    n = SystemdNotifier({"NOTIFY_SOCKET": path})
    assert n.enabled
    assert n.ready("engine up")
    assert sock.recv(4096) == b"READY=1\nSTATUS=engine up"
    assert n.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert n.status("two\nlines")
    assert sock.recv(4096) == b"STATUS=two lines"
    assert n.watchdog_trigger("engine hung")
    assert sock.recv(4096) == b"WATCHDOG=trigger\nSTATUS=engine hung"
    assert n.stopping() and sock.recv(4096) == b"STOPPING=1"
    assert n.sent == 5
    n.close()


def test_abstract_namespace_socket() -> None:
    name = f"evnet-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    try:
        n = SystemdNotifier({"NOTIFY_SOCKET": "@" + name})
        assert n.address == "\0" + name
        assert n.watchdog()
        assert sock.recv(64) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_without_notify_socket_nothing_is_sent() -> None:
    n = SystemdNotifier({})
    assert not n.enabled
    assert not n.ready() and not n.watchdog() and n.sent == 0
    assert n.ping_interval(1.5) == 1.5


def test_unsupported_and_dead_sockets_are_logged_not_raised(tmp_path, caplog) -> None:
    assert socket_address("vsock:2:1234") is None
    caplog.set_level("INFO", logger="evnet")
    logging.getLogger("evnet").addHandler(caplog.handler)  # in case setup_logging() cut propagation
    n = SystemdNotifier({"NOTIFY_SOCKET": "vsock:2:1234"})
    assert not n.enabled and "systemd.notify_socket_unsupported" in caplog.text
    gone = SystemdNotifier({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    assert not gone.watchdog() and not gone.watchdog()
    logging.getLogger("evnet").removeHandler(caplog.handler)
    failed = {id(r) for r in caplog.records if "systemd.notify_failed" in r.getMessage()}
    assert len(failed) == 1  # logged once, not per call
    assert gone.sent == 0


def test_watchdog_interval_is_half_the_period_for_this_pid() -> None:
    env = {"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())}
    assert SystemdNotifier(env).ping_interval(1.0) == 2.0
    assert SystemdNotifier({"WATCHDOG_USEC": "4000000", "WATCHDOG_PID": "1"}).watchdog_s is None
    assert SystemdNotifier({"WATCHDOG_USEC": "0"}).watchdog_s is None
