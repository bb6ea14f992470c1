"""The rig's network switch (evnet/tcp_proxy.py) on real sockets: what a cut holds, what a heal lets go."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest

from evnet.tcp_proxy import ProxyThread, TcpProxy

TIMEOUT = 5.0


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    """A TCP echo server: every connection gets back what it sends."""
    server = socket.create_server(("127.0.0.1", 0))

    def serve(conn: socket.socket) -> None:
        with conn:
            while data := conn.recv(65536):
                conn.sendall(data)

    def accept() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield server.getsockname()[:2]
    server.close()


@pytest.fixture
def proxies() -> Iterator[ProxyThread]:
    thread = ProxyThread()
    yield thread
    thread.close()


def connect(proxy: TcpProxy, timeout: float = TIMEOUT) -> socket.socket:
    return socket.create_connection(("127.0.0.1", proxy.port), timeout=timeout)


def test_bytes_pass_unchanged(echo, proxies: ProxyThread) -> None:
    proxy = proxies.add(echo)
    with connect(proxy) as s:
        s.sendall(b"hello\n")
        assert s.recv(100) == b"hello\n"


def test_a_cut_holds_the_bytes_and_a_heal_delivers_them_on_the_same_connection(echo, proxies: ProxyThread) -> None:
    proxy = proxies.add(echo)
    with connect(proxy, timeout=0.5) as s:
        s.sendall(b"before\n")
        assert s.recv(100) == b"before\n"
        proxies.cut(proxy)
        s.sendall(b"during\n")
        with pytest.raises(TimeoutError):
            s.recv(100)  # nothing comes back through a cut, and the connection stays open
        proxies.heal(proxy)
        s.settimeout(TIMEOUT)
        assert s.recv(100) == b"during\n"


def test_a_connection_made_during_a_cut_is_closed_at_the_heal_and_the_next_one_works(echo,
                                                                                    proxies: ProxyThread) -> None:
    proxy = proxies.add(echo)
    proxies.cut(proxy)
    with connect(proxy, timeout=0.5) as lost:
        lost.sendall(b"stale CONNECT\n")
        with pytest.raises(TimeoutError):
            lost.recv(100)
        proxies.heal(proxy)
        lost.settimeout(TIMEOUT)
        assert lost.recv(100) == b""  # closed, its bytes never forwarded
    with connect(proxy) as s:
        s.sendall(b"again\n")
        assert s.recv(100) == b"again\n"


def test_an_unreachable_upstream_closes_the_connection(proxies: ProxyThread) -> None:
    with socket.create_server(("127.0.0.1", 0)) as gone:
        address = gone.getsockname()[:2]
    proxy = proxies.add(address)
    with connect(proxy) as s:
        assert s.recv(100) == b""


def test_a_close_does_not_cross_a_cut(proxies: ProxyThread) -> None:
    """A client that gives up during a cut: the upstream learns of it at the heal, not before."""
    upstream = socket.create_server(("127.0.0.1", 0))
    upstream.settimeout(TIMEOUT)
    proxy = proxies.add(upstream.getsockname()[:2])
    client = connect(proxy)
    served, _ = upstream.accept()
    with served:
        proxies.cut(proxy)
        client.close()
        served.settimeout(0.5)
        with pytest.raises(TimeoutError):
            served.recv(100)  # no end of stream through the cut
        proxies.heal(proxy)
        served.settimeout(TIMEOUT)
        assert served.recv(100) == b""
    upstream.close()
