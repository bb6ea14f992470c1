"""`evnet central --config central.toml`: the Central host, until SIGINT/SIGTERM.

    evnet central --config config/central/central.toml            # the terminal dashboard in a terminal
    evnet central --config central.toml --no-tui                  # plain logs (as under systemd)
    evnet central --config central.toml --web 127.0.0.1:0         # another listen address for the web dashboard

It starts the broker when `[central] broker` says so (Mosquitto as a child, or the embedded amqtt where
Mosquitto is missing), then Central (registry, view, ticket copies), the web dashboard, and in a terminal
the terminal dashboard. A thread that dies ends the process with status 1, for systemd to restart it.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from typing import Any

from central_broker.brokers import BrokerError, EmbeddedBroker, MosquittoBroker, start_local_broker
from central_broker.central.app import Central
from central_broker.web import StreamHub, WebServer
from evnet.config import CentralFile, ConfigError, load_central_config
from evnet.logs import event_logger, setup_logging
from evnet.mqtt import parse_url
from evnet.serve import serve
from evnet.systemd import SystemdNotifier
from firmware.site.credentials import load_private_key

PROG = "evnet central"
BROKER_LIMITS = "message_size_limit 1048576\n"  # as the shipped config/mosquitto/*.conf


def start_broker(cfg: CentralFile) -> tuple[MosquittoBroker | EmbeddedBroker | None, CentralFile]:
    """The broker `[central] broker` asks for, started on mqtt.url's host and port (None: an external one),
    and the configuration to reach it with (MQTT 3.1.1 for amqtt, which has no MQTT 5)."""
    kind = cfg.central.broker
    if kind == "external":
        return None, cfg
    addr = parse_url(cfg.mqtt.url)
    broker, version = start_local_broker(kind, addr.port, addr.host, extra_conf=BROKER_LIMITS)
    if version == "3.1.1":  # amqtt: whatever the file says, 3.1.1 is all it speaks
        return broker, dataclasses.replace(cfg, mqtt=dataclasses.replace(cfg.mqtt, version=version))
    return broker, cfg


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Central: registry, dashboards, operator controls.")
    p.add_argument("--config", required=True, help="Central's TOML file ([central], [mqtt])")
    p.add_argument("--no-tui", action="store_true", help="plain logs, no terminal dashboard")
    p.add_argument("--web", help="HOST:PORT for the web dashboard (default: [central] web_listen)")
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    cfg = load_central_config(args.config)
    if args.web:
        cfg = dataclasses.replace(cfg, central=dataclasses.replace(cfg.central, web_listen=args.web))
    tui = not args.no_tui and sys.stdout.isatty()
    if tui:  # the screen is the dashboard's: log lines go beside the registry
        log_file = open(cfg.central.registry + ".log", "a")  # noqa: SIM115 - open for the life of the process
        setup_logging(args.log_level, log_file)
    else:
        setup_logging(args.log_level)
    log = event_logger("central")
    key = None
    if cfg.central.operator_key:
        try:
            with open(cfg.central.operator_key, "rb") as f:
                key = load_private_key(f.read())
        except (OSError, ValueError) as exc:
            raise ConfigError(cfg.path, "central.operator_key", f"{cfg.central.operator_key}: {exc}") from None
    try:
        broker, cfg = start_broker(cfg)
    except BrokerError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    central = Central(cfg, key)
    hub = StreamHub(central.view, central.lock)
    try:
        web = WebServer(hub, central.act, cfg.central.web_listen)
    except OSError as exc:
        print(f"{PROG}: web dashboard on {cfg.central.web_listen}: {exc.strerror or exc}", file=sys.stderr)
        if broker is not None:
            broker.close()
        return 1
    central.web_url = web.url
    notifier = SystemdNotifier()
    parts: dict[str, Any] = {}

    def start() -> None:
        central.start(wait=5.0)
        hub.start()
        web.start()
        log.info("central.started", broker=cfg.mqtt.url, started_broker=type(broker).__name__ if broker else None,
                 web=web.url, sites=",".join(cfg.central.sites) or "all", operator=key is not None, pid=os.getpid())
        if tui:
            from central_broker.tui import TerminalDashboard

            parts["tui"] = TerminalDashboard(central.view, central.lock, web.url).start()
        else:
            print(f"{PROG}: web dashboard at {web.url}", file=sys.stderr)
        notifier.ready(f"web {web.url}")

    def dead() -> str | None:
        if not hub.alive():
            return "stream thread"
        if not web.alive():
            return "web server"
        if "tui" in parts and not parts["tui"].alive():
            return "terminal dashboard"
        return central.dead()

    def stop() -> None:
        notifier.stopping()
        if "tui" in parts:
            parts["tui"].stop()
        web.stop()
        hub.stop()
        central.stop()
        if broker is not None:
            broker.close()

    return serve(PROG, start, dead, stop)
