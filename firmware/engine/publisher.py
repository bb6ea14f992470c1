"""What the engine tells Central, best effort: status (retained, Last Will DISCONNECTED) and telemetry.

Energy delivery never waits for this: publishing hands a message to paho's network thread
and returns; when the broker is down, telemetry (QoS 0) is dropped, and the status is sent
again on every (re)connection, so Central always ends up with the latest one.
"""

from __future__ import annotations

from typing import Any

from evnet.clock import Clock
from evnet.config import Config
from evnet.mqtt import MqttLink
from evnet.topics import SiteTopics, cp_identity
from firmware.engine.metering import Ticket

MAX_QUEUED = 64


class Publisher:
    def __init__(self, cfg: Config, clock: Clock) -> None:
        self.cfg = cfg
        self.clock = clock
        cp = cfg.charge_point
        self._identity = cp_identity(cfg)
        topics = SiteTopics.of(cfg)
        self.status_topic = topics.cp_status(cp.id)
        self.telemetry_topic = topics.cp_telemetry(cp.id)
        self.link = MqttLink(cfg.mqtt, f"evse-{cfg.site_id}-{cp.id}", cp=cp.id,
                             will=(self.status_topic, {**self._identity, "status": "DISCONNECTED"}, True))
        self.link.client.max_queued_messages_set(MAX_QUEUED)
        self.link.on_connected = self._republish
        self._status: dict[str, Any] = {**self._identity, "status": "AVAILABLE", "fault": None}

    def start(self) -> None:
        """Connect in the background; never waits for the broker."""
        self.link.start(wait=None)

    def status(self, status: str, fault: str | None) -> None:
        self._status = {**self._identity, "status": status, "fault": fault}
        self._send_status()

    def telemetry(self, body: dict[str, Any]) -> None:
        if self.link.connected.is_set():
            self.link.publish_json(self.telemetry_topic, {"cp": self.cfg.cp_id, **body, "ts": self.clock.time()},
                                   qos=0)

    def ticket(self, ticket: Ticket) -> None:
        """The session's last telemetry message carries its ticket."""
        self.link.publish_json(self.telemetry_topic, {"cp": self.cfg.cp_id, "session": ticket.session_id,
                                                      "final": True, "ticket": ticket.to_dict(),
                                                      "ts": self.clock.time()}, qos=1)

    def stop(self, timeout: float = 1.0) -> None:
        """Say DISCONNECTED ourselves (a clean disconnect sends no Last Will), then leave."""
        self.link.stop(farewell=(self.status_topic, {**self._identity, "status": "DISCONNECTED",
                                                     "ts": self.clock.time()}, True), timeout=timeout)

    def _send_status(self) -> None:
        if self.link.connected.is_set():
            self.link.publish_json(self.status_topic, {**self._status, "ts": self.clock.time()}, qos=1, retain=True)

    def _republish(self) -> None:
        self._send_status()
