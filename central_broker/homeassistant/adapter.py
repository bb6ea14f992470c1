"""The thin adapter Central runs for Home Assistant: publish discovery for each charge point heard of, and carry
Home Assistant's commands to the site as Central's operator.

    ha = HomeAssistant(prefix="evnet", sites=["demo"], act=central.act)   # sites [] : every site
    ha.start(link)       # an MqttLink of Central's, connected or not: it subscribes to the command topics
    ha.saw(status)       # each charge point status Central decoded (a link has one handler per filter, and
                         # the status filters are Central's): discovery is published when one is new or changed
    ha.announce()        # after every (re)connection: every device again (retained; a broker may have lost them)
    ...
    ha.stop()

`act(site, action, args)` is `Central.act`: an operator control through the site's consensus that answers
`{"ok": True, "result": ...}` or `{"ok": False, "error", "reason"}` and puts it in Central's event log. It
blocks, so commands run on the adapter's own thread, never on paho's. Commands come through the link's
guarded handlers (size cap, a handler's failure caught and counted); a bad one is dropped, counted and logged
here (folded).
"""

from __future__ import annotations

import json
import logging
import queue
import threading
from collections.abc import Callable
from typing import Any

from central_broker.homeassistant.discovery import (
    ENTITIES,
    SITE,
    SITE_LIMIT,
    Action,
    Identity,
    Refused,
    charge_point_device,
    command,
    site_device,
)
from central_broker.view.messages import ID_RE, CpStatus
from evnet import __version__
from evnet.logs import EventLogger, FoldedLog, event_logger
from evnet.mqtt import MqttLink
from evnet.topics import SiteTopics

Act = Callable[[str, str, dict[str, Any]], dict[str, Any]]
MAX_PENDING = 64   # commands waiting for the site: beyond, new ones are dropped (said in the log)
MAX_DEVICES = 1000  # charge points and sites published: beyond, new ones are not (said in the log)


class HomeAssistant:
    def __init__(self, prefix: str, sites: list[str], act: Act, *, ha_prefix: str = "homeassistant",
                 log: EventLogger | None = None) -> None:
        self.prefix, self.ha_prefix, self.act = prefix, ha_prefix, act
        self.sites = tuple(sites)  # () : every site on the broker
        self.log = log or event_logger("homeassistant")
        self._folded = FoldedLog(self.log)
        self.dropped = self._folded.counts
        self.known: dict[tuple[str, str], Identity] = {}  # (site, cp) -> what its discovery was published with
        self.site_devices: set[str] = set()               # sites whose own device is published
        self.results: list[tuple[str, str, dict[str, Any]]] = []  # (site, action, Central's answer): the last few
        self._link: MqttLink | None = None
        self._lock = threading.Lock()  # known, site_devices: saw() on Central's fold thread, announce() on paho's
        self._commands: queue.Queue[tuple[str, Action] | None] = queue.Queue(MAX_PENDING)
        self._thread = threading.Thread(target=self._run, name="homeassistant", daemon=True)

    def start(self, link: MqttLink) -> None:
        self._link = link
        self._thread.start()
        for site in self.sites or ("+",):
            link.subscribe(SiteTopics(self.prefix, site).ha_command(), self.on_command, qos=1)
        for site in self.sites:
            self._site_device(site)

    def stop(self) -> None:
        self._commands.put(None)
        self._thread.join(5)

    def alive(self) -> bool:
        return self._thread.is_alive()

    # -- the caller's thread (Central's fold thread, paho's): never blocks ------------------------

    def saw(self, status: CpStatus) -> None:
        """A charge point's status, decoded and checked: its device is published when new or changed."""
        if self.sites and status.site not in self.sites:
            return
        self._site_device(status.site)
        identity = Identity(status.location or "", status.max_current_a or 80.0)
        key = (status.site, status.cp)
        with self._lock:
            if self.known.get(key) == identity:
                return
            if key not in self.known and len(self.known) >= MAX_DEVICES:
                self._drop("too_many", f"{status.site}/{status.cp}", f"{MAX_DEVICES} charge points already")
                return
            self.known[key] = identity
            self.log.info("homeassistant.discovered", site=status.site, cp=status.cp)
            self._publish_cp(status.site, status.cp, identity)

    def announce(self) -> None:
        """Every device published again (on each connection: a broker restarted without persistence forgot them)."""
        with self._lock:
            for site in self.site_devices:
                self._publish(*site_device(SiteTopics(self.prefix, site), __version__, self.ha_prefix))
            for (site, cp), identity in self.known.items():
                self._publish_cp(site, cp, identity)

    def on_command(self, topic: str, payload: bytes) -> None:
        """Home Assistant's command on `{prefix}/{site}/ha/{cp}/{entity}/set`: queued for the adapter's thread."""
        parts = topic[len(self.prefix) + 1:].split("/") if topic.startswith(self.prefix + "/") else []
        match parts:
            case [site, "ha", cp, entity, "set"] if ID_RE.match(site) and (
                    (ID_RE.match(cp) and entity in ENTITIES) or (cp == SITE and entity == SITE_LIMIT)):
                pass
            case _:
                self._drop("unknown_topic", topic, "")
                return
        if self.sites and site not in self.sites:
            self._drop("unknown_site", topic, "")
            return
        got = command(cp, entity, payload)
        if isinstance(got, Refused):
            self._drop("refused", topic, got.why)
            return
        try:
            self._commands.put_nowait((site, got))
        except queue.Full:
            self._drop("busy", topic, f"{MAX_PENDING} commands wait for the site already")

    def _site_device(self, site: str) -> None:
        with self._lock:
            if site in self.site_devices:
                return
            if len(self.site_devices) >= MAX_DEVICES:
                self._drop("too_many", site, f"{MAX_DEVICES} sites already")
                return
            self.site_devices.add(site)
            self._publish(*site_device(SiteTopics(self.prefix, site), __version__, self.ha_prefix))

    def _publish_cp(self, site: str, cp: str, identity: Identity) -> None:
        self._publish(*charge_point_device(SiteTopics(self.prefix, site), cp, identity, __version__, self.ha_prefix))

    def _publish(self, topic: str, body: dict[str, Any]) -> None:
        assert self._link is not None
        # Discovery is plain JSON (Home Assistant's format, not evnet's `"v": 1` envelope), retained.
        self._link.publish(topic, json.dumps(body, separators=(",", ":")).encode(), qos=1, retain=True)

    def _drop(self, reason: str, topic: str, detail: str) -> None:
        self._folded.warning("homeassistant.dropped", key=(reason, topic), reason=reason, topic=topic[:120],
                             detail=detail[:160])

    # -- the adapter's thread: the site's ops, through Central ------------------------------------

    def _run(self) -> None:
        while (item := self._commands.get()) is not None:
            site, action = item
            try:
                answer = self.act(site, action.action, action.args)
            except Exception as exc:  # noqa: BLE001 - an act that fails must not end the thread: said, next one runs
                answer = {"ok": False, "error": type(exc).__name__, "reason": str(exc)[:160]}
            ok = bool(answer.get("ok"))
            self.log.log(logging.INFO if ok else logging.WARNING, "homeassistant.command", site=site,
                         action=action.action, args=action.args, ok=ok, error=answer.get("error"))
            self.results = [*self.results[-15:], (site, action.action, answer)]
