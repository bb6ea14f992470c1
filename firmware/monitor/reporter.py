"""What the monitor tells Central over MQTT: its alerts, and the charge point `FAULTED` while the engine is lost.

Topics (docs/architecture.md): `{prefix}/{site}/cp/{cp}/monitor` carries the watchdog's alerts (retained,
QoS 1: the last one stays for a dashboard that comes later) and a periodic heartbeat (QoS 0);
`{prefix}/{site}/cp/{cp}/status` gets `FAULTED` (retained) when the engine is lost and the
engine's own status again when it answers.

A hung engine's broker connection lingers until its keepalive runs out, and then its Last Will
(`DISCONNECTED`, retained) would hide the fault: so while the fault holds, any other status
seen on the topic is answered with `FAULTED` again. Publishing never blocks the watchdog:
paho queues QoS 1 messages while the broker is away and sends them on reconnection.
"""

from __future__ import annotations

import threading
from typing import Any

from evnet.clock import Clock
from evnet.config import Config
from evnet.logs import event_logger
from evnet.mqtt import MqttLink, PayloadError, decode_payload
from evnet.topics import SiteTopics, cp_identity

MAX_QUEUED = 256


class MonitorReporter:
    def __init__(self, cfg: Config, clock: Clock) -> None:
        self.cfg, self.clock = cfg, clock
        cp = cfg.charge_point
        self.log = event_logger("monitor", cp=cp.id)
        self._identity = cp_identity(cfg)
        topics = SiteTopics.of(cfg)
        self.status_topic = topics.cp_status(cp.id)
        self.monitor_topic = topics.cp_monitor(cp.id)
        self.link = MqttLink(cfg.mqtt, f"monitor-{cfg.site_id}-{cp.id}", cp=cp.id,
                             will=(self.monitor_topic, {"cp": cp.id, "event": "monitor_offline"}, True))
        self.link.client.max_queued_messages_set(MAX_QUEUED)
        self.fault: dict[str, Any] | None = None  # the FAULTED status we hold, while we hold one
        self.seen: dict[str, Any] | None = None  # the last status seen on the topic (retained, at first)
        self.engine_status: str | None = None  # what the engine answers while it is healthy
        self.republished = 0
        self._lock = threading.Lock()  # the watchdog's thread and paho's both change the fault

    def start(self) -> None:
        """Connect in the background (never waits for the broker) and watch the status topic."""
        self.link.subscribe(self.status_topic, self._on_status)
        self.link.start(wait=None)

    def stop(self, timeout: float = 1.0) -> None:
        """Say so on the monitor topic (a clean disconnect sends no Last Will), then leave."""
        self.link.stop(farewell=(self.monitor_topic, {"cp": self.cfg.cp_id, "event": "monitor_stopped",
                                                      "ts": self.clock.time()}, True), timeout=timeout)

    def alert(self, event: str, **fields: Any) -> None:
        """A watchdog event on the monitor topic: retained, QoS 1."""
        body = {"cp": self.cfg.cp_id, "event": event, **fields, "ts": self.clock.time()}
        self.link.publish_json(self.monitor_topic, body, qos=1, retain=True)

    def heartbeat(self, **fields: Any) -> None:
        """The watchdog's own periodic sign of life (QoS 0, dropped while the broker is away)."""
        if self.link.connected.is_set():
            self.link.publish_json(self.monitor_topic, {"cp": self.cfg.cp_id, "event": "heartbeat", **fields,
                                                        "ts": self.clock.time()}, qos=0)

    def faulted(self, code: str) -> None:
        """Show the charge point FAULTED (retained) and keep it so until `cleared`."""
        with self._lock:
            self.fault = {**self._identity, "status": "FAULTED", "fault": code, "source": "monitor"}
            self.engine_status = None
            self._publish_fault()

    def cleared(self, engine_status: str) -> None:
        """The engine answers again: its own status goes back on the status topic."""
        with self._lock:
            self._clear(engine_status)

    def engine_stopped(self) -> None:
        """A planned stop: the engine says DISCONNECTED itself; a FAULTED held from before is lifted for it."""
        with self._lock:
            held, self.fault, self.engine_status = self.fault, None, None
            if held is not None:
                self.link.publish_json(self.status_topic, {**self._identity, "status": "DISCONNECTED", "fault": None,
                                                           "source": "monitor", "ts": self.clock.time()},
                                       qos=1, retain=True)

    def engine_up(self, engine_status: str) -> None:
        """The engine's first answer since this monitor started: lift a FAULTED an earlier monitor left."""
        with self._lock:
            self.engine_status = engine_status
            if self._stale_fault(self.seen):
                self.log.info("monitor.stale_fault_cleared", status=engine_status)
                self._clear(engine_status)

    def _clear(self, engine_status: str) -> None:
        self.fault, self.engine_status = None, engine_status
        self.link.publish_json(self.status_topic, {**self._identity, "status": engine_status, "fault": None,
                                                   "source": "monitor", "ts": self.clock.time()},
                               qos=1, retain=True)

    def _stale_fault(self, body: dict[str, Any] | None) -> bool:
        """A monitor's FAULTED on the topic while this monitor holds no fault and the engine answers."""
        return (body is not None and body.get("status") == "FAULTED" and body.get("source") == "monitor"
                and self.fault is None and self.engine_status is not None)

    def _publish_fault(self) -> None:
        if self.fault is not None:
            self.link.publish_json(self.status_topic, {**self.fault, "ts": self.clock.time()}, qos=1, retain=True)

    def _on_status(self, topic: str, payload: bytes) -> None:
        """Runs on paho's thread: re-assert FAULTED over anything else (e.g. the hung engine's Last Will),
        and lift a FAULTED left by an earlier monitor once the engine answers."""
        try:
            body = decode_payload(payload)
        except PayloadError:
            body = {}
        with self._lock:
            self.seen = body
            if self.fault is not None and body.get("status") != "FAULTED":
                self.republished += 1
                self.log.warning("monitor.status_overridden", seen=body.get("status"), republish="FAULTED")
                self._publish_fault()
            elif self._stale_fault(body):
                self.log.info("monitor.stale_fault_cleared", status=self.engine_status)
                self._clear(self.engine_status)  # type: ignore[arg-type]
