"""What Central would see of the rig's charge points on the broker: every status and monitor message, timed.

A plain subscriber straight on the broker (not through any charge point's network), so it hears the monitors'
alerts and the FAULTED they publish while the engine they watch is hung.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from evnet.config import MqttConfig
from evnet.mqtt import MqttLink, PayloadError, decode_payload
from evnet.topics import SiteTopics
from hil_tests.sampler import wait_for


@dataclass(frozen=True)
class Heard:
    t: float  # time.monotonic() of its arrival
    cp: str
    kind: str  # "status" or "monitor"
    body: dict[str, Any]


class SiteWatch:
    def __init__(self, broker_url: str, topics: SiteTopics) -> None:
        self.heard: list[Heard] = []
        self._lock = threading.Lock()
        self._link = MqttLink(MqttConfig(url=broker_url), "hil-watch")
        self._filters = [topics.cp_status("+"), topics.cp_monitor("+")]

    def start(self) -> SiteWatch:
        assert self._link.start(10), "the watcher could not reach the broker"
        for f in self._filters:
            assert self._link.subscribe(f, self._on_message, wait=10), f"no SUBACK for {f}"
        return self

    def stop(self) -> None:
        self._link.stop()

    def _on_message(self, topic: str, payload: bytes) -> None:
        *_, cp, kind = topic.split("/")
        try:
            body = decode_payload(payload)
        except PayloadError:
            return
        with self._lock:
            self.heard.append(Heard(time.monotonic(), cp, kind, body))

    def since(self, t: float) -> list[Heard]:
        with self._lock:
            return [h for h in self.heard if h.t >= t]

    def wait(self, since: float, predicate: Callable[[Heard], bool], timeout: float, what: str) -> Heard:
        """The first message heard from `since` on for which `predicate` holds."""
        wait_for(lambda: any(predicate(h) for h in self.since(since)), timeout, what)
        return next(h for h in self.since(since) if predicate(h))
