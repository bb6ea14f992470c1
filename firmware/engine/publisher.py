"""What the engine tells Central: status (retained, Last Will DISCONNECTED), telemetry, tickets.

Energy delivery never waits for this: publishing hands a message to paho's network thread
and returns; when the broker is down, telemetry (QoS 0) is dropped, and the status is sent
again on every (re)connection, so Central always ends up with the latest one.

A ticket is not best effort: it goes at QoS 1 and counts as taken (`taken()`, for the engine's
journal) only once the broker acknowledged it; paho sends it again after a reconnection, and
one its queue refused is sent again when the broker is back. Until taken it stays in the journal,
which sends it again after a restart.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import paho.mqtt.client as mqtt

from evnet.clock import Clock
from evnet.config import Config
from evnet.logs import event_logger
from evnet.mqtt import MqttLink
from evnet.topics import SiteTopics, cp_identity
from firmware.engine.metering import Ticket

MAX_QUEUED = 64
EARLY_ACKS = 64  # acknowledgements seen before their publish call returned (a fast broker): the last few


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
        self.link.client.on_publish = self._on_publish
        self.log = event_logger("publisher", cp=cp.id)
        self._status: dict[str, Any] = {**self._identity, "status": "AVAILABLE", "fault": None}
        self._settled = threading.Condition()  # guards the ticket books below (paho's thread and the loop)
        self._inflight: dict[int, str] = {}  # message id -> session, until the broker acknowledges it
        self._early: OrderedDict[int, bool] = OrderedDict()  # acknowledged before registered: mid -> accepted
        self._unsent: dict[str, Ticket] = {}  # refused by paho's full queue: sent when the broker is back
        self._taken: list[str] = []

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
        """The session's last telemetry message carries its ticket (QoS 1, whether connected or not)."""
        info = self.link.publish_json(self.telemetry_topic, {"cp": self.cfg.cp_id, "session": ticket.session_id,
                                                             "final": True, "ticket": ticket.to_dict(),
                                                             "ts": self.clock.time()}, qos=1)
        with self._settled:
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:
                self.log.warning("publisher.ticket_queued_later", session=ticket.session_id, queue=MAX_QUEUED)
                self._unsent[ticket.session_id] = ticket
                return
            self._unsent.pop(ticket.session_id, None)
            accepted = self._early.pop(info.mid, None)
            if accepted is None:
                self._inflight[info.mid] = ticket.session_id
            else:
                self._settle(ticket.session_id, accepted)

    def taken(self) -> list[str]:
        """Sessions whose ticket the broker acknowledged since the last call."""
        with self._settled:
            done, self._taken = self._taken, []
        return done

    def stop(self, timeout: float = 1.0) -> None:
        """Wait (up to `timeout`) for tickets in flight, say DISCONNECTED ourselves (a clean disconnect sends
        no Last Will), then leave."""
        if self.link.connected.is_set():
            with self._settled:
                self._settled.wait_for(lambda: not self._inflight, timeout)
        self.link.stop(farewell=(self.status_topic, {**self._identity, "status": "DISCONNECTED",
                                                     "ts": self.clock.time()}, True), timeout=timeout)

    def _on_publish(self, _client: mqtt.Client, _userdata: Any, mid: int, reason: Any, _props: Any) -> None:
        """Runs on paho's thread, for every message it finished (QoS 1: the broker's PUBACK)."""
        accepted = not reason.is_failure
        with self._settled:
            session = self._inflight.pop(mid, None)
            if session is not None:
                self._settle(session, accepted)
                return
            self._early[mid] = accepted
            while len(self._early) > EARLY_ACKS:
                self._early.popitem(last=False)

    def _settle(self, session: str, accepted: bool) -> None:
        if accepted:
            self._taken.append(session)
        else:  # e.g. an ACL that denies the topic: it stays in the journal, sent again at the next start
            self.log.error("publisher.ticket_refused", session=session)
        self._settled.notify_all()

    def _send_status(self) -> None:
        if self.link.connected.is_set():
            self.link.publish_json(self.status_topic, {**self._status, "ts": self.clock.time()}, qos=1, retain=True)

    def _republish(self) -> None:
        self._send_status()
        with self._settled:
            unsent = list(self._unsent.values())
        for ticket in unsent:
            self.ticket(ticket)
