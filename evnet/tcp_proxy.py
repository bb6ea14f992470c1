"""A TCP proxy with a switch, for the real-process rigs: bytes pass unchanged, or a cut stalls them.

Between a charge point and its broker it is the site's network. `cut()` stops every byte both ways, as a
dead switch or a lost Wi-Fi does: the connections stay open and nothing arrives, so each end notices only by
its own timers (MQTT keepalive, the replica's and the engine's leases), never by a closed socket. `heal()`
lets the held bytes flow again. A connection opened during a cut is held without an upstream and closed at
the heal: its connect would have been lost on a real network, and forwarding a stale MQTT CONNECT then could
take over the session its client opened since.

On the virtual cable (hal/meter/box.py) it carries the EV's updates to the charge point, and a `Tap`
sees the bytes that go upstream.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Protocol

CHUNK = 65536


class Tap(Protocol):
    """What one connection carries from its client to the upstream (the proxy never changes it)."""

    def upstream(self, data: bytes) -> None: ...

    def closed(self) -> None: ...


class TcpProxy:
    """Listens on `host:port` (0: a free one, see `port` after `start`) and forwards each connection to
    `upstream`. A connection whose upstream cannot be reached is closed at once. Runs on one asyncio loop:
    call its methods there (`ProxyThread` does it for other threads)."""

    def __init__(self, upstream: tuple[str, int], *, host: str = "127.0.0.1", port: int = 0,
                 tap: Callable[[], Tap] | None = None) -> None:
        self.upstream, self.host, self.port = upstream, host, port
        self._tap = tap
        self._open = asyncio.Event()
        self._open.set()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.connections = 0  # forwarded connections open right now

    async def start(self) -> TcpProxy:
        self._server = await asyncio.start_server(self._accepted, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    @property
    def is_cut(self) -> bool:
        return not self._open.is_set()

    def cut(self) -> None:
        self._open.clear()

    def heal(self) -> None:
        self._open.set()

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:  # close(): ended, not failed (asyncio's stream callback logs a cancelled one)
            pass
        finally:
            self._tasks.discard(task)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.is_cut:  # lost in the cut: held, and closed at the heal
            await self._open.wait()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            return
        tap = self._tap() if self._tap is not None else None
        self.connections += 1
        pumps = [asyncio.create_task(self._pump(reader, up_writer, tap)),
                 asyncio.create_task(self._pump(up_reader, writer, None))]
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)  # one end closed: close both
        finally:
            self.connections -= 1
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            up_writer.close()
            if tap is not None:
                tap.closed()

    async def _pump(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, tap: Tap | None) -> None:
        with contextlib.suppress(OSError):
            while chunk := await reader.read(CHUNK):
                await self._open.wait()  # a cut: what was read waits here, and the sender's kernel buffers fill
                if tap is not None:
                    tap.upstream(chunk)
                writer.write(chunk)
                await writer.drain()
        await self._open.wait()  # nor does a close cross a cut: the other end learns of it at the heal


class ProxyThread:
    """`TcpProxy`s on one asyncio loop in a daemon thread, started, cut and healed from other threads."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="tcp-proxies", daemon=True)
        self._thread.start()
        self._proxies: list[TcpProxy] = []

    def add(self, upstream: tuple[str, int], port: int = 0) -> TcpProxy:
        """A started proxy to `upstream` listening on 127.0.0.1:`port` (0: a free one)."""
        async def start() -> TcpProxy:
            return await TcpProxy(upstream, port=port).start()
        proxy = asyncio.run_coroutine_threadsafe(start(), self._loop).result(10)
        self._proxies.append(proxy)
        return proxy

    def cut(self, proxy: TcpProxy) -> None:
        """Returns once the cut holds."""
        self._on_loop(proxy.cut)

    def heal(self, proxy: TcpProxy) -> None:
        self._on_loop(proxy.heal)

    def _on_loop(self, call: Callable[[], None]) -> None:
        async def run() -> None:
            call()
        asyncio.run_coroutine_threadsafe(run(), self._loop).result(10)

    def close(self) -> None:
        async def close_all() -> None:
            for proxy in self._proxies:
                proxy.heal()  # what the cut held is let go, then closed with the rest
                await proxy.close()
        asyncio.run_coroutine_threadsafe(close_all(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()
