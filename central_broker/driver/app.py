"""The driver app's I/O: the site's client for this driver's requests, and a link that reads what the driver sees.

`DriverApp` joins three things: a `SiteClient` speaking as the driver (every request signed with its
own Ed25519 key; no site key), an `MqttLink` subscribed to the site's retained `state` and its charge
points' `status` and `telemetry`, and the pure `DriverView` they feed. Messages arrive on paho's
thread; callers read the view and wait for its events under one lock (`wait_event`).

The last ticket is kept on disk (`TicketFile`): the engine publishes it once, with the session's last
telemetry, and a script that asks `evnet driver ticket` later, or an app that restarts, still has it.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_broker.driver.render import ticket_json
from central_broker.driver.view import DriverView, Ended, Event, MySession, Point
from central_broker.view.messages import BadMessage, Ticket, ticket_of
from evnet.config.schema import MqttConfig
from evnet.durable import replace_file
from evnet.logs import event_logger
from evnet.mqtt import MqttLink
from evnet.topics import SiteTopics
from firmware.site.client import SiteClient

MAX_EVENTS = 256  # events nobody waited for: the oldest go


def default_ticket_file(site: str, driver: str) -> str:
    """$STATE_DIRECTORY, else $XDG_STATE_HOME/evnet or ~/.local/state/evnet, then driver/SITE/DRIVER/ticket.json."""
    service = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
    base = service or os.path.join(os.environ.get("XDG_STATE_HOME")
                                   or os.path.join(os.path.expanduser("~"), ".local", "state"), "evnet")
    return os.path.join(base, "driver", site, driver, "ticket.json")


class TicketFile:
    """The driver's last ticket on disk (replaced atomically); a damaged file is said once and read as none."""

    def __init__(self, path: str, site: str) -> None:
        self.path, self.site = path, site
        self.log = event_logger("driver.tickets", file=path)

    def load(self) -> Ticket | None:
        try:
            with open(self.path, "rb") as f:
                body = json.loads(f.read(8192))
            return ticket_of(self.site, {**body, "session_id": body["session"]}, engine=True)
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, BadMessage) as exc:
            self.log.warning("driver.ticket_file_unreadable", error=type(exc).__name__, detail=str(exc)[:120])
            return None

    def save(self, ticket: Ticket) -> None:
        try:
            os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
            replace_file(self.path, json.dumps(ticket_json(ticket), sort_keys=True).encode())
        except OSError as exc:  # the ticket was shown; only the copy for later is lost
            self.log.error("driver.ticket_not_saved", session=ticket.session, error=str(exc)[:120])


class DriverApp:
    """Driver `driver` of site `site`: `start`, then `call` (the site's ops), `points`, `session`, `wait_event`."""

    def __init__(self, mqtt_cfg: MqttConfig, site: str, driver: str, key: Ed25519PrivateKey, *,
                 timeout: float = 10.0, ticket_file: str | None = None) -> None:
        self.mqtt_cfg, self.site, self.driver, self.key, self.timeout = mqtt_cfg, site, driver, key, timeout
        self.topics = SiteTopics(mqtt_cfg.prefix, site)
        self.view = DriverView(driver, site, mqtt_cfg.prefix)
        self.tickets = TicketFile(ticket_file or default_ticket_file(site, driver), site)
        self.view.ticket = self.tickets.load()
        # Its own MQTT client id: two apps of one driver (a script and the prompt) must not take each other's place.
        self.link = MqttLink(mqtt_cfg, f"driver-{site}-{driver}-{secrets.token_hex(4)}")
        self.client: SiteClient | None = None
        self.lock = threading.Condition()
        self.events: deque[Event] = deque(maxlen=MAX_EVENTS)
        self._state_seen = threading.Event()

    # -- life cycle ----------------------------------------------------------------------------

    def start(self, wait: float = 5.0) -> bool:
        """Connect and read what is retained; ConnectionError without a broker. True if the site's state came
        within `wait` s (it does not when no leader has published one yet)."""
        if not self.link.start(wait):
            self.link.stop()
            raise ConnectionError(f"no broker at {self.mqtt_cfg.url} after {wait} s")
        # Retained messages follow their SUBACK: once the state's has come, the statuses before it have too.
        self.link.subscribe(self.topics.cp_status("+"), self._on_message, qos=1, wait=wait)
        self.link.subscribe(self.topics.cp_telemetry("+"), self._on_message, qos=1, wait=wait)
        self.link.subscribe(self.topics.state, self._on_message, qos=1, wait=wait)
        return self._state_seen.wait(wait)

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
        self.link.stop()

    def __enter__(self) -> DriverApp:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- requests --------------------------------------------------------------------------------

    def call(self, op: str, args: dict[str, Any] | None = None) -> dict[str, Any]:
        """A site op as this driver: its result, `SiteRefused`, or `KvTimeout` (the site did not answer)."""
        if self.client is None:
            self.client = SiteClient(self.mqtt_cfg, self.site, principal=self.driver, key=self.key,
                                     timeout=self.timeout).start(self.timeout)
        result = self.client.call(op, args)
        with self.lock:
            self._queue(self.view.answered(op, result))
        return result

    # -- what the driver sees --------------------------------------------------------------------

    def points(self) -> list[Point]:
        with self.lock:
            return self.view.points()

    def session(self) -> MySession | None:
        with self.lock:
            return self.view.session(time.monotonic())

    def last_ticket(self) -> Ticket | None:
        with self.lock:
            return self.view.ticket

    def wait_until(self, predicate: Callable[[], object], timeout: float) -> bool:
        """Wait up to `timeout` s until `predicate()` (called under the lock, after every message) holds."""
        with self.lock:
            return bool(self.lock.wait_for(predicate, timeout))

    def drain(self) -> None:
        """Forget the events so far (before a request whose events the caller follows)."""
        with self.lock:
            self.events.clear()

    def wait_event(self, timeout: float | None) -> Event | None:
        """The next event (oldest first), waiting up to `timeout` s (None: for ever); None if none came."""
        with self.lock:
            self.lock.wait_for(lambda: bool(self.events), timeout)
            return self.events.popleft() if self.events else None

    # -- paho's thread -------------------------------------------------------------------------

    def _on_message(self, topic: str, payload: bytes) -> None:
        with self.lock:
            events = self.view.received(topic, payload, time.monotonic())
            if topic == self.topics.state and self.view.state is not None:
                self._state_seen.set()
            self._queue(events)
            self.lock.notify_all()
        for e in events:
            if isinstance(e, Ended):
                self.tickets.save(e.ticket)

    def _queue(self, events: list[Event]) -> None:
        self.events.extend(events)
        self.lock.notify_all()
