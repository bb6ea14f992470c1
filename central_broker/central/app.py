"""Central: hears every site on the broker, folds it into the view, keeps the registry, copies tickets.

Four threads, joined by queues and one lock on the view:
- paho's network thread only queues what arrives (topic, payload, when): it never decodes or waits;
- the fold thread decodes (the view's checked decoder) and folds; it never touches the disk;
- the registry thread copies each ticket to the registry (on disk, synchronous) and then asks the ops
  thread to acknowledge it; once a second it writes the charge points and sites that changed, in one
  transaction;
- the ops thread acknowledges tickets to their sites with Central's operator credential (`SiteClient`,
  the same client `evnet site` uses), and retries those a site did not answer.
Operator controls (`act`) run on the caller's thread (a web request's): a site op through the site's
consensus; the result goes into the event log and back to the caller. With `[central] homeassistant`, Central
also runs Home Assistant discovery on its own link (`central_broker/homeassistant/`): the fold thread hands it
each status it decoded, and its commands run on its own thread through `act`, like the web's.

Central is never in the energy path: it only reads, and writes what an operator asks.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from central_broker.homeassistant import HomeAssistant
from central_broker.registry import Registry
from central_broker.view import BadMessage, Changes, CpStatus, OperatorAction, Ticket, View, decode
from evnet.config import CentralFile
from evnet.logs import FoldedLog, event_logger
from evnet.mqtt import MqttLink
from evnet.topics import central_status
from firmware.site.client import KvTimeout, SiteClient, SiteRefused

FLUSH_S = 1.0           # charge points written to the registry at most this often
ACK_RETRY_S = 5.0       # tickets a site did not acknowledge are asked again after this
MAX_QUEUE = 200_000     # messages waiting to be folded; beyond, new ones are dropped (counted, logged)
ACTIONS = ("stop", "resume", "limit", "cap", "add_driver")


class Central:
    def __init__(self, cfg: CentralFile, key: Ed25519PrivateKey | None, now: Callable[[], float] = time.time) -> None:
        self.cfg, self.key, self.now = cfg, key, now
        self.prefix = cfg.mqtt.prefix
        self.log = event_logger("central", operator=cfg.central.operator_id)
        self.drops = FoldedLog(self.log)
        self.registry = Registry(cfg.central.registry)
        self.view = View()
        self.lock = threading.Lock()          # the view's
        self.folded = threading.Condition(self.lock)  # notified after each batch folded
        self.inbox: queue.SimpleQueue[tuple[str, bytes, float] | None] = queue.SimpleQueue()
        self.status_topic = central_status(self.prefix)
        self.link = MqttLink(cfg.mqtt, f"central-{cfg.central.operator_id}",
                             will=(self.status_topic, {"status": "DISCONNECTED"}, True))
        self.link.on_connected = self._announce
        self.ha = HomeAssistant(self.prefix, cfg.central.sites, act=self._ha_act) if cfg.central.homeassistant else None
        self.web_url: str | None = None
        self._clients: dict[str, SiteClient] = {}
        self._clients_lock = threading.Lock()
        self._acks: queue.SimpleQueue[str | None] = queue.SimpleQueue()  # sites with tickets to acknowledge
        self._tickets: queue.SimpleQueue[tuple[tuple[Ticket, ...], str] | None] = queue.SimpleQueue()  # to keep
        self._stop = threading.Event()
        self._registry_cursor = 0
        self._threads = [threading.Thread(target=self._fold_loop, name="central-fold", daemon=True),
                         threading.Thread(target=self._store_loop, name="central-registry", daemon=True),
                         threading.Thread(target=self._ack_loop, name="central-ops", daemon=True)]

    # ------------------------------------------------------------------ life

    def start(self, wait: float = 10.0) -> Central:
        known = self.registry.charge_points()
        with self.lock:
            self.view.load(known)
        self.log.info("central.loaded", charge_points=len(known), registry=self.cfg.central.registry)
        for t in self._threads:
            t.start()
        # QoS 0 throughout: Central's session starts clean on every connection, so QoS 1 would keep nothing
        # across a disconnect, and what matters comes back retained (statuses, the sites' states: their
        # tickets) on every subscription; it would cost an acknowledgement per message.
        for site in self.cfg.central.sites or ["+"]:
            base = f"{self.prefix}/{site}"
            for topic in (f"{base}/cp/+/status", f"{base}/cp/+/telemetry", f"{base}/cp/+/monitor", f"{base}/state",
                          f"{base}/request", f"{base}/reply/+"):
                self.link.subscribe(topic, self._heard, qos=0)
        if self.ha is not None:
            self.ha.start(self.link)
        if not self.link.start(wait):
            self.log.warning("central.broker_unreachable", url=self.cfg.mqtt.url, retrying=True)
        for site in self.registry.sites():
            self._acks.put(site)  # tickets kept but not acknowledged before a crash
        return self

    def stop(self) -> None:
        self._stop.set()
        self.inbox.put(None)
        self._tickets.put(None)
        self._acks.put(None)
        for t in self._threads:
            if t.is_alive():
                t.join(5)
        if self.ha is not None:
            self.ha.stop()
        self.link.stop(farewell=(self.status_topic, {"status": "DISCONNECTED", "ts": self.now()}, True))
        with self._clients_lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
        self._flush()
        self.registry.close()

    def dead(self) -> str | None:
        """The part whose thread died (`evnet.serve`: the process then exits 1 and systemd restarts it)."""
        if self.ha is not None and not self.ha.alive():
            return "homeassistant"
        return next((t.name for t in self._threads if not t.is_alive()), None)

    def _announce(self) -> None:
        """Central's own status, retained, after every (re)connection (its Last Will says DISCONNECTED)."""
        self.link.publish_json(self.status_topic, {"status": "ONLINE", "sites": self.cfg.central.sites,
                                                   "web": self.web_url, "ts": self.now()}, qos=1, retain=True)
        if self.ha is not None:
            self.ha.announce()

    # ------------------------------------------------------------------ hearing and folding

    def _heard(self, topic: str, payload: bytes) -> None:
        if self.inbox.qsize() >= MAX_QUEUE:
            self.drops.warning("central.message_dropped", key="queue_full", reason="queue_full", topic=topic)
            return
        self.inbox.put((topic, payload, self.now()))

    def _fold_loop(self) -> None:
        while not self._stop.is_set():
            try:
                item = self.inbox.get(timeout=0.5)
            except queue.Empty:
                continue
            if item is None:
                return
            batch = [item]
            while len(batch) < 5000:
                try:
                    more = self.inbox.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self._stop.set()
                    break
                batch.append(more)
            self._fold(batch)

    def _fold(self, batch: list[tuple[str, bytes, float]]) -> None:
        # Coalesced per charge point: of a point's telemetry in one batch only the last is shown, so a
        # backlog shrinks as it grows (a final one, with its ticket, is never skipped).
        last = {topic: i for i, (topic, payload, _at) in enumerate(batch)
                if topic.endswith("/telemetry") and b'"final"' not in payload}
        decoded = []
        for i, (topic, payload, at) in enumerate(batch):
            if last.get(topic, i) != i:
                continue
            try:
                msg = decode(self.prefix, topic, payload)
            except BadMessage as exc:
                self.drops.warning("central.message_dropped", key=(exc.reason, topic), reason=exc.reason,
                                   topic=topic, size=len(payload), detail=exc.detail[:120])
                continue
            if msg is not None:
                decoded.append((msg, at))
                if self.ha is not None and isinstance(msg, CpStatus):
                    self.ha.saw(msg)
        changes: list[Changes] = []
        with self.lock:
            for msg, at in decoded:
                changes.append(self.view.apply(msg, at))
            self.folded.notify_all()
        for c in changes:
            if c.site_tickets:
                self._tickets.put((c.site_tickets, "site"))
            if c.engine_tickets:
                self._tickets.put((c.engine_tickets, "engine"))

    def _store_loop(self) -> None:
        next_flush = time.monotonic() + FLUSH_S
        while True:
            try:
                item = self._tickets.get(timeout=max(0.0, next_flush - time.monotonic()))
            except queue.Empty:
                item = ((), "")
            if item is None:
                return
            if item[0]:
                self._keep(*item)
            if time.monotonic() >= next_flush:
                self._flush()
                next_flush = time.monotonic() + FLUSH_S

    def _keep(self, tickets: tuple[Ticket, ...], source: str) -> None:
        """On disk first; a site ticket is then acknowledged to its site (which may forget it)."""
        new = self.registry.add_tickets(tickets, source, self.now())
        for t in new:
            self.log.info("central.ticket_kept", site=t.site, session=t.session, cp=t.cp, kwh=t.kwh, eur=t.eur,
                          source=source)
        if source == "site":
            for site in sorted({t.site for t in tickets}):
                self._acks.put(site)  # kept before, not acknowledged yet (a lost ack), is asked again too

    def _flush(self) -> None:
        with self.lock:
            changed = self.view.changed_since(self._registry_cursor)
            self._registry_cursor = changed["version"]
            rows = [(c["site"], c["cp"], c["location"], c["price_eur_kwh"], c["max_current_a"],
                     c["status"] if c["last_seen"] is not None else None, c["last_seen"]) for c in changed["cps"]]
            sites = [(s["site"], s["limit_a"]) for s in changed["sites"]]
        self.registry.save(rows, sites, self.now())

    # ------------------------------------------------------------------ the site's API, as Central's operator

    def _client(self, site: str) -> SiteClient:
        if self.key is None:
            raise SiteRefused("no_operator_key", "Central has no operator key ([central] operator_key)")
        with self._clients_lock:
            client = self._clients.get(site)
            if client is None:
                client = SiteClient(self.cfg.mqtt, site, principal=self.cfg.central.operator_id, key=self.key,
                                    timeout=5.0).start()
                self._clients[site] = client
            return client

    def _ack_loop(self) -> None:
        retry: set[str] = set()
        while not self._stop.is_set():
            try:
                site = self._acks.get(timeout=ACK_RETRY_S)
            except queue.Empty:
                site = None if not retry else retry.pop()
                if site is None:
                    continue
            if site is None:
                return
            try:
                self._ack(site)
            except (KvTimeout, SiteRefused, ConnectionError, OSError) as exc:
                self.drops.warning("central.ack_failed", key=("ack", site), site=site, error=str(exc)[:200])
                retry.add(site)

    def _ack(self, site: str) -> None:
        """Acknowledge the site's kept tickets, 100 at a time; one the site no longer holds was taken before."""
        while pending := [s for _site, s in self.registry.unacked(site)][:100]:
            try:
                result = self._client(site).ack_tickets(pending)
            except SiteRefused as exc:
                if exc.code != "unknown_ticket" or "session" not in exc.extra:
                    raise
                self.registry.mark_acked(site, [exc.extra["session"]], self.now())  # acknowledged before a crash
                continue
            self.registry.mark_acked(site, pending, self.now())
            self.log.info("central.tickets_acked", site=site, acked=len(pending), waiting=result.get("waiting"))

    def _ha_act(self, site: str, action: str, args: dict[str, Any]) -> dict[str, Any]:
        return self.act(site, action, args, via="homeassistant")

    def act(self, site: str, action: str, args: dict[str, Any], via: str = "web") -> dict[str, Any]:
        """An operator control through the site's consensus: `{"ok": true, "result": ...}` or `{"ok": false,
        "error": code, "reason": ...}`; shown in the event log either way, with where it came from (`via`)."""
        try:
            with self.lock:
                known = site in self.view.sites
            if not known:  # a client per site asked for: only the sites Central has heard of
                raise SiteRefused("unknown_site", f"Central has not heard of site {site[:40]!r}")
            client = self._client(site)
            match action:
                case "stop":
                    result = client.stop_cp(str(args["cp"]))
                case "resume":
                    result = client.resume_cp(str(args["cp"]))
                case "limit":
                    result = client.set_limit(float(args["limit_a"]))
                case "cap":
                    cap = args["max_current_a"]
                    result = client.set_cp_max(str(args["cp"]), None if cap is None else float(cap))
                case "add_driver":
                    result = client.add_principal(str(args["id"]), "driver", str(args["key"]))
                case _:
                    raise SiteRefused("unknown_action", f"no action {action!r}; expected one of {', '.join(ACTIONS)}")
            answer: dict[str, Any] = {"ok": True, "result": result}
            outcome = " ".join(f"{k}={v}" for k, v in result.items())
        except SiteRefused as exc:
            answer, outcome = {"ok": False, "error": exc.code, "reason": exc.reason}, f"{exc.code}: {exc.reason}"
        except (KvTimeout, ConnectionError, OSError) as exc:
            answer, outcome = {"ok": False, "error": "timeout", "reason": str(exc)}, f"timeout: {str(exc)[:120]}"
        except (KeyError, ValueError, TypeError) as exc:
            answer, outcome = {"ok": False, "error": "bad_field", "reason": str(exc)}, f"bad_field: {exc}"
        shown = {k: v for k, v in args.items() if k != "key"}
        self.log.info("central.operator_action", site=site, action=action, via=via, ok=answer["ok"],
                      outcome=outcome[:200])
        with self.lock:
            self.view.apply(OperatorAction(site, action, shown, answer["ok"], outcome[:300], via), self.now())
            self.folded.notify_all()
        return answer
