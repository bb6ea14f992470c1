"""The websocket to the CSMS (I/O at the edge): connects, reconnects, and drives the core on one thread.

Its own thread runs an asyncio loop with two tasks: the connection (connect with the version's subprotocol,
Basic authentication and TLS as configured, read frames, reconnect with backoff) and the driver, the only one
that touches the core: it takes the link's frames and the charge point's events from one queue, in order,
and carries out what the core returns. Frames go to the CSMS; proposals, local starts and restarts go to
`on_output` (the charge point's thread-safe handlers). Nothing here is in the energy path: a CSMS that is
slow, gone or hostile costs reports, never a charge.
"""

from __future__ import annotations

import asyncio
import base64
import random
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidURI

from evnet.logs import EventLogger, FoldedLog
from firmware.ocpp import rpc
from firmware.ocpp.core import OcppCore
from firmware.ocpp.events import Event, LinkDown, LinkUp, Output, Send

BACKOFF_S = (1.0, 30.0)   # first and longest wait before connecting again


@dataclass(frozen=True)
class Endpoint:
    url: str                      # ws:// or wss://, without the identity
    identity: str
    version: str                  # "1.6" or "2.0.1"
    password: str | None = None   # Basic authentication (security profiles 1 and 2)
    tls_ca: str | None = None     # for wss://: the CA of the CSMS's certificate (None: the system's)
    ping_s: float = 30.0

    @property
    def address(self) -> str:
        return self.url.rstrip("/") + "/" + self.identity


@dataclass(frozen=True)
class _Frame:
    raw: str | bytes


@dataclass(frozen=True)
class _Connected:
    ws: ClientConnection | None


class _Stop:
    pass


class OcppLink:
    def __init__(self, core: OcppCore, endpoint: Endpoint, on_output: Callable[[Output], None], log: EventLogger,
                 clock: Callable[[], float] = time.time) -> None:
        self.core = core
        self.endpoint = endpoint
        self.on_output = on_output
        self.log = log
        self.clock = clock
        self._folded = FoldedLog(log)
        self._loop = asyncio.new_event_loop()
        self._events: asyncio.Queue[Any] = asyncio.Queue()
        self._ws: ClientConnection | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="ocpp-link", daemon=True)
        self.failures = 0        # inputs whose handling raised (a bug): counted, logged, the loop goes on
        self.connections = 0

    # -- any thread ------------------------------------------------------------------------------------

    def start(self) -> OcppLink:
        self._thread.start()
        return self

    def put(self, event: Event) -> None:
        """Hand the core an event (thread-safe; in order)."""
        self._loop.call_soon_threadsafe(self._events.put_nowait, event)

    def stop(self, timeout: float = 5.0) -> None:
        self._stopping = True
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._events.put_nowait, _Stop())
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive() or self._stopping

    # -- the link's thread ---------------------------------------------------------------------------------

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._main())
        except Exception as exc:  # noqa: BLE001 - said here, once; `alive` turns False and evnet cp ends (fails safe)
            self.log.error("ocpp.link_died", error=type(exc).__name__, detail=str(exc)[:200])
        finally:
            self._loop.close()

    async def _main(self) -> None:
        connection = asyncio.create_task(self._connect_forever())
        await self._carry_out(self.core.start(self.clock()))
        try:
            while True:
                due = self.core.next_deadline()
                wait = 1.0 if due is None else min(1.0, max(0.0, due - self.clock()))
                try:
                    item = await asyncio.wait_for(self._events.get(), wait)
                except TimeoutError:
                    item = None
                if isinstance(item, _Stop):
                    return
                try:
                    await self._carry_out(self._input(item))
                except Exception as exc:  # noqa: BLE001 - one input's bug must not end the link
                    self.failures += 1
                    self._folded.error("ocpp.link_failed", key=type(item).__name__, input=type(item).__name__,
                                       error=type(exc).__name__, detail=str(exc)[:200])
        finally:
            connection.cancel()
            if self._ws is not None:
                await self._ws.close()

    def _input(self, item: Any) -> list[Output]:
        now = self.clock()
        out: list[Output] = []
        match item:
            case _Frame(raw):
                incoming = rpc.decode(raw, self.endpoint.version, self.core.action_of)
                out = self.core.bad_frame(incoming) if isinstance(incoming, rpc.BadFrame) else \
                    self.core.handle(incoming, now)
            case _Connected(ws):
                self._ws = ws
                out = self.core.handle(LinkUp() if ws is not None else LinkDown(), now)
            case None:
                pass
            case _:
                out = self.core.handle(item, now)
        due = self.core.next_deadline()
        if due is not None and now >= due:
            out += self.core.tick(now)
        return out

    async def _carry_out(self, outputs: list[Output]) -> None:
        for out in outputs:
            match out:
                case Send(frame):
                    if self._ws is not None:
                        try:
                            await self._ws.send(frame)
                        except ConnectionClosed:
                            pass  # the connection task reports the link down
                case _:
                    self.on_output(out)

    async def _connect_forever(self) -> None:
        backoff = BACKOFF_S[0]
        e = self.endpoint
        headers = {}
        if e.password is not None:
            token = base64.b64encode(f"{e.identity}:{e.password}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        tls = None
        if e.url.startswith("wss://"):
            tls = ssl.create_default_context(cafile=e.tls_ca)
        while not self._stopping:
            try:
                async with connect(e.address, subprotocols=[rpc.SUBPROTOCOL[e.version]], additional_headers=headers,
                                   ssl=tls, max_size=rpc.MAX_FRAME, open_timeout=10, ping_interval=e.ping_s,
                                   ping_timeout=e.ping_s, compression=None, proxy=None) as ws:
                    if ws.subprotocol != rpc.SUBPROTOCOL[e.version]:
                        self._folded.error("ocpp.wrong_subprotocol", key="sub", got=ws.subprotocol,
                                           expected=rpc.SUBPROTOCOL[e.version])
                    else:
                        backoff = BACKOFF_S[0]
                        self.connections += 1
                        self.log.info("ocpp.connected", url=e.address, version=e.version)
                        await self._events.put(_Connected(ws))
                        try:
                            async for raw in ws:
                                await self._events.put(_Frame(raw))
                        finally:
                            await self._events.put(_Connected(None))
                            self.log.info("ocpp.disconnected", url=e.address, code=ws.close_code)
            except (OSError, TimeoutError, InvalidHandshake, InvalidURI, ConnectionClosed) as exc:
                self._folded.warning("ocpp.connect_failed", key=type(exc).__name__, url=e.address,
                                     error=f"{type(exc).__name__}: {exc}"[:160])
            await asyncio.sleep(backoff * (0.5 + random.random()))
            backoff = min(backoff * 2, BACKOFF_S[1])
