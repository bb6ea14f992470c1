"""The thin adapter Central runs for Home Assistant: publish discovery for each charge point heard of, and carry
Home Assistant's commands to the site as the operator.

    ha = HomeAssistant(prefix="evnet", sites=["demo"], act=lambda site, op, args: clients[site].call(op, args))
    ha.start(link)       # an MqttLink of Central's, connected or not: it subscribes and publishes on it
    ...
    ha.stop()

`act(site, op, args)` runs a site op with Central's operator credential and returns its result, or raises
(`SiteRefused`, `KvTimeout`): it blocks, so commands run on the adapter's own thread, never on paho's.
Messages come through the link's guarded handlers (size cap, a handler's failure caught and counted);
a bad status or command is dropped, counted and logged here (folded).
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable
from typing import Any

from central_broker.driver.decode import CP_RE, BadMessage, CpStatus, decode
from central_broker.homeassistant.discovery import (
    ENTITIES,
    SITE,
    SITE_LIMIT,
    Identity,
    Refused,
    SiteOp,
    charge_point_device,
    command,
    site_device,
)
from evnet import __version__
from evnet.logs import EventLogger, FoldedLog, event_logger
from evnet.mqtt import MqttLink
from evnet.topics import SiteTopics

Act = Callable[[str, str, dict[str, Any]], dict[str, Any]]
MAX_PENDING = 64  # commands waiting for the site: beyond, new ones are dropped (said in the log)


class HomeAssistant:
    def __init__(self, prefix: str, sites: list[str], act: Act, *, ha_prefix: str = "homeassistant",
                 log: EventLogger | None = None) -> None:
        self.prefix, self.ha_prefix, self.act = prefix, ha_prefix, act
        self.topics = {site: SiteTopics(prefix, site) for site in sites}
        self.log = log or event_logger("homeassistant")
        self._folded = FoldedLog(self.log)
        self.dropped = self._folded.counts
        self.known: dict[tuple[str, str], Identity] = {}  # (site, cp) -> what its discovery was published with
        self.results: list[tuple[str, str, dict[str, Any]]] = []  # (site, op, result or error): the last few
        self._link: MqttLink | None = None
        self._commands: queue.Queue[tuple[str, SiteOp] | None] = queue.Queue(MAX_PENDING)
        self._thread = threading.Thread(target=self._run, name="homeassistant", daemon=True)

    def start(self, link: MqttLink) -> None:
        self._link = link
        self._thread.start()
        for topics in self.topics.values():
            link.subscribe(topics.cp_status("+"), self.on_message, qos=1)
            link.subscribe(topics.ha_command(), self.on_message, qos=1)
            self._publish(*site_device(topics, __version__, self.ha_prefix))

    def stop(self) -> None:
        self._commands.put(None)
        self._thread.join(5)

    # -- paho's thread: never blocks ----------------------------------------------------------

    def on_message(self, topic: str, payload: bytes) -> None:
        for site, topics in self.topics.items():
            base = f"{self.prefix}/{site}/"
            if topic.startswith(base):
                return self._message(site, topics, topic[len(base):].split("/"), topic, payload)
        return None

    def _message(self, site: str, topics: SiteTopics, parts: list[str], topic: str, payload: bytes) -> None:
        match parts:
            case ["cp", _, "status"]:
                try:
                    msg = decode(self.prefix, site, topic, payload)
                except BadMessage as exc:
                    self._drop(exc.reason, topic, exc.detail)
                    return
                if isinstance(msg, CpStatus):
                    self._discover(site, topics, msg)
            case ["ha", cp, entity, "set"] if (CP_RE.match(cp) and entity in ENTITIES) or (
                    cp == SITE and entity == SITE_LIMIT):
                got = command(cp, entity, payload)
                if isinstance(got, Refused):
                    self._drop("refused", topic, got.why)
                    return
                try:
                    self._commands.put_nowait((site, got))
                except queue.Full:
                    self._drop("busy", topic, f"{MAX_PENDING} commands wait for the site already")
            case _:
                self._drop("unknown_topic", topic, "")

    def _discover(self, site: str, topics: SiteTopics, status: CpStatus) -> None:
        identity = Identity(status.location or "", status.max_current_a or 80.0)
        if self.known.get((site, status.cp)) == identity:
            return
        if (site, status.cp) not in self.known and len(self.known) >= 1000:
            self._drop("too_many", topics.cp_status(status.cp), "1000 charge points already")
            return
        self.known[(site, status.cp)] = identity
        self.log.info("homeassistant.discovered", site=site, cp=status.cp)
        self._publish(*charge_point_device(topics, status.cp, identity, __version__, self.ha_prefix))

    def _publish(self, topic: str, body: dict[str, Any]) -> None:
        assert self._link is not None
        # Discovery is plain JSON (Home Assistant's format, not evnet's `"v": 1` envelope), retained.
        self._link.publish(topic, json.dumps(body, separators=(",", ":")).encode(), qos=1, retain=True)

    def _drop(self, reason: str, topic: str, detail: str) -> None:
        self._folded.warning("homeassistant.dropped", key=(reason, topic), reason=reason, topic=topic[:120],
                             detail=detail[:160])

    # -- the adapter's thread: the site's ops ---------------------------------------------------

    def _run(self) -> None:
        while (item := self._commands.get()) is not None:
            site, op = item
            try:
                result = self.act(site, op.op, op.args)
                self.log.info("homeassistant.command", site=site, op=op.op, args=op.args, ok=True)
            except Exception as exc:  # noqa: BLE001 - a refusal or a silent site: said, and the next command runs
                result = {"error": getattr(exc, "code", type(exc).__name__), "reason": str(exc)[:160]}
                self.log.warning("homeassistant.command", site=site, op=op.op, args=op.args, **result)
            self.results = [*self.results[-15:], (site, op.op, result)]
