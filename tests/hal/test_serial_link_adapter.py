"""`SerialLink` over a real pty pair (socat and os.openpty) and over `socket://` to a local TCP server."""

from __future__ import annotations

import os
import socket
import threading
import time
import tty
from collections.abc import Iterator

import pytest

from hal.serial_link import FrameError, SerialLink, SerialLinkError, encode


@pytest.fixture
def raw_pty() -> Iterator[tuple[int, str]]:
    """(master fd, slave path): the test plays the other end with plain os.read/os.write."""
    master, slave = os.openpty()
    tty.setraw(master)
    path = os.ttyname(slave)
    try:
        yield master, path
    finally:
        os.close(slave)
        try:
            os.close(master)
        except OSError:
            pass


def test_two_links_talk_over_a_pty_pair(pty_pair: tuple[str, str]) -> None:
    with SerialLink.open(pty_pair[0]) as engine, SerialLink.open(pty_pair[1]) as monitor:
        monitor.send_json({"t": "hb", "seq": 1})
        assert engine.recv_json(timeout=5) == {"t": "hb", "seq": 1}
        engine.send(b'{"t":"ack","seq":1}')
        assert monitor.recv(timeout=5) == b'{"t":"ack","seq":1}'
        for i in range(50):
            engine.send_json({"seq": i})
        assert [monitor.recv_json(timeout=5) for _ in range(50)] == [{"seq": i} for i in range(50)]
        assert engine.counters["sent"] == 51
        assert monitor.counters["frames"] == 51


def test_recv_times_out_with_none(pty_pair: tuple[str, str]) -> None:
    with SerialLink.open(pty_pair[0]) as link:
        t0 = time.monotonic()
        assert link.recv(timeout=0.1) is None
        assert time.monotonic() - t0 < 5  # generous safety net: it returned, it did not hang


def test_garbage_and_bad_frames_on_the_line_are_counted(raw_pty: tuple[int, str]) -> None:
    master, path = raw_pty
    with SerialLink.open(path) as link:
        bad_lrc = bytearray(encode(b"bad"))
        bad_lrc[-1] ^= 0x55
        os.write(master, b"noise\xff" + bytes(bad_lrc) + b"\x02" + b"x" * 41 + b"\x03\x00" + encode(b"good"))
        assert link.recv(timeout=5) == b"good"
        counters = link.counters
        assert counters["bad_lrc"] == 2
        assert counters["frames"] == 1
        assert counters["garbage_bytes"] == 6


def test_oversize_frames_are_dropped(raw_pty: tuple[int, str]) -> None:
    master, path = raw_pty
    with SerialLink.open(path, max_payload=16) as link:
        os.write(master, b"\x02" + b"x" * 17 + b"\x03\x00" + encode(b"small"))
        assert link.recv(timeout=5) == b"small"
        assert link.counters["oversize"] == 1
        with pytest.raises(FrameError):
            link.send(b"y" * 17)


def test_json_that_is_not_an_object_is_skipped(raw_pty: tuple[int, str]) -> None:
    master, path = raw_pty
    with SerialLink.open(path) as link:
        os.write(master, encode(b"[1,2]") + encode(b"{oops") + encode(b'{"ok":true}'))
        assert link.recv_json(timeout=5) == {"ok": True}
        assert link.counters["bad_json"] == 2


def test_a_vanished_pty_is_a_clear_error_not_a_hang(raw_pty: tuple[int, str]) -> None:
    master, path = raw_pty
    link = SerialLink.open(path)
    os.close(master)
    with pytest.raises(SerialLinkError, match=path):
        link.recv(timeout=5)
    assert link.failed
    with pytest.raises(SerialLinkError, match="has failed"):
        link.send(b"hb")
    link.close()


def test_a_line_nobody_reads_times_out_the_write(raw_pty: tuple[int, str]) -> None:
    _, path = raw_pty
    link = SerialLink.open(path, write_timeout=0.05)
    with pytest.raises(SerialLinkError, match="write failed"):
        for _ in range(100_000):  # the pty buffer fills, then the write times out
            link.send(b"x" * 1000)
    link.close()


def test_cannot_open_a_missing_device() -> None:
    with pytest.raises(SerialLinkError, match="/dev/does-not-exist"):
        SerialLink.open("/dev/does-not-exist")


@pytest.fixture
def tcp_server() -> Iterator[tuple[socket.socket, list[socket.socket], threading.Event]]:
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    ready = threading.Event()

    def accept() -> None:
        conn, _ = server.accept()
        accepted.append(conn)
        ready.set()

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server, accepted, ready
    finally:
        for conn in accepted:
            conn.close()
        server.close()


def test_link_over_socket_url(tcp_server: tuple[socket.socket, list[socket.socket], threading.Event]) -> None:
    server, accepted, ready = tcp_server
    url = f"socket://127.0.0.1:{server.getsockname()[1]}"
    with SerialLink.open(url) as link:
        assert ready.wait(5)
        peer = accepted[0]
        frame = encode(b'{"t":"hb"}')
        peer.sendall(b"\x00junk" + frame[:3])  # split across reads
        peer.sendall(frame[3:])
        assert link.recv_json(timeout=5) == {"t": "hb"}
        link.send(b"pong")
        peer.settimeout(5)
        assert peer.recv(100) == encode(b"pong")
        peer.close()
        with pytest.raises(SerialLinkError, match="read failed|disconnected"):
            link.recv(timeout=5)


def test_socket_url_with_nothing_listening_is_a_clear_error() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(SerialLinkError, match=f"socket://127.0.0.1:{port}"):
        SerialLink.open(f"socket://127.0.0.1:{port}")
