"""Running an `MqttLink` on the caller's thread: a pump that reads and writes the socket itself.

For the processes whose every message is on a critical path (a Paxos replica, a client session):
no hand-off to paho's network thread, QoS-0 PUBLISHes parsed by `PacketReader` and written by
`PacketWriter`; paho still runs the session (CONNECT, SUBSCRIBE, keepalive).
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import Any

import paho.mqtt.client as mqtt

from evnet.mqtt.link import MqttLink
from evnet.mqtt.reader import MalformedPacketError, PacketReader
from evnet.mqtt.writer import PacketWriter


class LinkPump:
    """Runs an `MqttLink`'s paho loop on the caller's thread instead of paho's network thread.

    A message then reaches its handler, and the answer reaches the socket, with no hand-off
    between threads (each costs tens of microseconds and a GIL switch; a consensus round crosses
    several). Connects and reconnects (every `retry` s) by itself; counts SUBACKs.
    """

    def __init__(self, link: MqttLink, retry: float = 0.1) -> None:
        self.link = link
        self.retry = retry
        self.subacks = 0
        self.log = link.log
        self._next_connect = 0.0
        self.connect_error: OSError | None = None  # why the last attempt to connect failed (None: it did not)
        on_subscribe = link.client.on_subscribe

        def counted(*args: Any) -> None:
            self.subacks += 1
            on_subscribe(*args)
        link.client.on_subscribe = counted
        self.reader = PacketReader(link.client, link.exact, log=link.log)
        self.writer = PacketWriter(link.client)
        self._wake_r, self._wake_w = socket.socketpair()  # another thread's `wake` ends a pump's wait
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def wake(self) -> None:
        """End the current (or the next) wait in `pump` at once; safe from any thread."""
        try:
            self._wake_w.send(b"\0")
        except BlockingIOError:
            pass  # a wake-up is already waiting

    def _woken(self) -> None:
        try:
            while self._wake_r.recv(4096):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        """Release the wake-up socket pair (its owner calls this when it is done with the link)."""
        self._wake_r.close()
        self._wake_w.close()

    def ready(self) -> bool:
        return self.link.connected.is_set() and self.subacks > 0

    def connect(self, wait: float) -> bool:
        """Pump until connected with a subscription acknowledged, for up to `wait` s."""
        end = time.monotonic() + wait
        while time.monotonic() < end and not self.ready():
            self.pump(0.05)
        return self.ready()

    def pump(self, wait: float, more: Callable[[], bool] | None = None,
             guard: AbstractContextManager[Any] | None = None) -> None:
        """Wait up to `wait` s for the socket; while `more()` says so, go on reading what is waiting.

        Uses paho's external-loop calls (loop_write / loop_misc, and loop_read for what is not a
        QoS-0 PUBLISH: `PacketReader` reads the socket) around our own select: paho's `loop()`
        would also create its wake-up socket pair, and every publish would then write a byte to
        it — a second send() per message that a single thread never needs.
        `guard` (a lock), if given, is held around every paho call but not while waiting in select,
        so other threads may publish on the same client meanwhile (a shared client session).
        """
        link, client = self.link, self.link.client
        guard = guard or nullcontext()
        sock = client.socket()
        if sock is None:
            now = time.monotonic()
            if now < self._next_connect:
                if select.select([self._wake_r], [], [], max(0.0, min(wait, self._next_connect - now)))[0]:
                    self._woken()
                return
            self._next_connect = now + self.retry
            try:
                with guard:
                    client.connect(link.address.host, link.address.port, **link.connect_args())
            except OSError as e:
                self.log.debug("mqtt.connect_failed", url=link.cfg.url, error=str(e))
                self.connect_error = e
                return
            self.connect_error = None
            sock = client.socket()
            if sock is None:
                return
        rc = mqtt.MQTT_ERR_SUCCESS
        try:
            readable, writable, _ = select.select([sock, self._wake_r], [sock] if client.want_write() else [], [],
                                                  wait)
            if self._wake_r in readable:
                self._woken()
                readable = [s for s in readable if s is not self._wake_r]
            with guard:
                if writable:
                    rc = client.loop_write()
                while readable and rc == mqtt.MQTT_ERR_SUCCESS and client.socket() is not None:
                    if not self.reader.read(sock):
                        rc = mqtt.MQTT_ERR_CONN_LOST  # the broker closed the connection
                    while rc == mqtt.MQTT_ERR_SUCCESS and self.reader.pending_for_paho and client.socket():
                        rc = client.loop_read()  # one packet a call: CONNACK, SUBACK, PINGRESP...
                    if more is None or not more():
                        break
                    readable, _, _ = select.select([sock], [], [], 0)
        except MalformedPacketError as e:
            self.log.warning("mqtt.malformed_packet", url=link.cfg.url, problem=str(e))
            rc = mqtt.MQTT_ERR_PROTOCOL
        except (OSError, ValueError):
            rc = mqtt.MQTT_ERR_CONN_LOST  # the socket was closed under us
        with guard:
            if rc == mqtt.MQTT_ERR_SUCCESS and client.socket() is not None:
                rc = client.loop_misc()  # keepalive pings, and a dead broker noticed
            if rc != mqtt.MQTT_ERR_SUCCESS or client.socket() is None:
                if link.connected.is_set():
                    link.connected.clear()
                    self.log.warning("mqtt.broker_lost", url=link.cfg.url, rc=str(rc))
                # Close without a DISCONNECT packet (that would cancel our Last Will); the next pump reconnects.
                client._sock_close()
