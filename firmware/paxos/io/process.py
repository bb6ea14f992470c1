"""`evnet replica` (one Paxos replica of a site, with the key-value machine) and `evnet kv` (its client)."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from evnet.config import load_config
from evnet.logs import event_logger, setup_logging
from firmware.paxos.core.kv import KVMachine
from firmware.paxos.core.options import Options
from firmware.paxos.io.datadir import DataDirLockedError
from firmware.paxos.io.storage import DEFAULT_KIND, KINDS, StorageCorruptError

MIB = 1024 * 1024


def default_data_dir(site: str, cp: str) -> str:
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return os.path.join(base, "evnet", site, cp)


def replica_parser() -> argparse.ArgumentParser:
    d = Options()
    p = argparse.ArgumentParser(prog="evnet replica", description="Run one Paxos replica of this charge point's site.")
    p.add_argument("--config", required=True, help="the charge point's TOML file (id, site members, key, broker)")
    p.add_argument("--data-dir", help="where the acceptor state lives (default: $XDG_STATE_HOME/evnet/SITE/CP)")
    p.add_argument("--storage", choices=sorted(KINDS), default=DEFAULT_KIND,
                   help="durable store (default: %(default)s)")
    p.add_argument("--heartbeat", type=float, default=d.heartbeat_interval, help="leader heartbeat, s")
    p.add_argument("--election-min", type=float, default=d.election_min, help="shortest election timeout, s")
    p.add_argument("--election-max", type=float, default=d.election_max, help="longest election timeout, s")
    p.add_argument("--max-batch", type=int, default=d.max_batch, help="client commands per slot")
    p.add_argument("--max-inflight", type=int, default=d.max_inflight, help="slots proposed and not yet chosen")
    p.add_argument("--lazy-delay", type=float, default=d.lazy_delay,
                   help="thrifty phase 2: how often followers beyond a quorum are pushed to, s (0: off)")
    p.add_argument("--snapshot-every", type=int, default=d.snapshot_every,
                   help="take a snapshot after this many applied slots (0: never)")
    p.add_argument("--max-snapshot", type=float, default=d.max_snapshot / MIB,
                   help="the largest snapshot taken from a peer, MiB (default: %(default)g)")
    p.add_argument("--commit-delay", type=float, default=None,
                   help="longest wait of a Commit notice for a ride with the next Accept, s (default: heartbeat/10)")
    p.add_argument("--log-level", default="INFO")
    return p


def replica_main(argv: list[str]) -> int:
    args = replica_parser().parse_args(argv)
    setup_logging(args.log_level)
    cfg = load_config(args.config)
    from firmware.paxos.io.runner import ReplicaRunner

    log = event_logger("paxos.replica", cp=cfg.cp_id, site=cfg.site_id)
    try:
        options = Options(heartbeat_interval=args.heartbeat, election_min=args.election_min,
                          election_max=args.election_max, max_batch=args.max_batch, max_inflight=args.max_inflight,
                          lazy_delay=args.lazy_delay, snapshot_every=args.snapshot_every,
                          max_snapshot=int(args.max_snapshot * MIB))
    except ValueError as e:
        print(f"evnet replica: {e}", file=sys.stderr)
        return 2
    data_dir = args.data_dir or default_data_dir(cfg.site_id, cfg.cp_id)
    try:
        runner = ReplicaRunner(cfg, data_dir, machine=KVMachine(), storage_kind=args.storage, options=options,
                               commit_delay=args.commit_delay)
    except DataDirLockedError as e:
        print(f"evnet replica: {e}", file=sys.stderr)
        return 1
    except StorageCorruptError as e:
        log.error("paxos.storage_corrupt", path=e.path, offset=e.offset, problem=e.problem)
        return 1
    except (OSError, ValueError) as e:
        log.error("paxos.start_failed", error=str(e))
        return 1
    def stop(sig: int, _frame: object) -> None:
        runner.request_stop()
        signal.signal(sig, signal.SIG_DFL)  # a second Ctrl-C ends it at once (kill -9 is safe for the acceptor too)
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, stop)
    runner.connect()  # returns early on Ctrl-C
    if not runner.stopping:
        print(f"replica {cfg.cp_id} of site {cfg.site_id} running", flush=True)
    try:
        runner.run()  # on the main thread, until SIGTERM or SIGINT
    except OSError as e:  # the disk failed under the acceptor: stop rather than answer without it
        log.error("paxos.storage_failed", error=str(e))
        return 1
    runner.stop()
    log.info("paxos.stopped", dropped=dict(runner.transport.dropped), applied_commands=runner.applied_commands,
             persists=runner.persists, frames_sent=runner.transport.sent)
    return 0


def _value(text: str) -> object:
    """A JSON value if it parses as one (42, true, {"a": 1}), else the text itself."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def kv_main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="evnet kv", description="Read and write the site's replicated key-value store.")
    p.add_argument("--config", required=True, help="a charge point's TOML file (site, key, broker)")
    p.add_argument("--client", default=f"cli-{os.getpid()}", help="client id (default: cli-PID)")
    p.add_argument("--timeout", type=float, default=5.0)
    sub = p.add_subparsers(dest="op", required=True)
    sp = sub.add_parser("put")
    sp.add_argument("key")
    sp.add_argument("value", type=_value)
    sg = sub.add_parser("get")
    sg.add_argument("key")
    sc = sub.add_parser("cas")
    sc.add_argument("key")
    sc.add_argument("expect", type=_value)
    sc.add_argument("value", type=_value)
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)
    setup_logging(args.log_level)
    cfg = load_config(args.config)
    from evnet.config.site_key import site_key
    from firmware.paxos.io.client import KvClient, KvTimeout

    params = {k: getattr(args, k) for k in ("key", "value", "expect") if hasattr(args, k)}
    try:
        with KvClient(cfg.mqtt, cfg.site_id, args.client, site_key(cfg),
                      timeout=args.timeout) as client:
            result = client.request(args.op, params)
    except (KvTimeout, ConnectionError) as e:
        print(f"evnet kv: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


SITE_TOML = """\
# Written by evnet.paxos.process.write_site_configs: one replica of a test or demo site.
[charge_point]
id = "{cp}"
site = "{site}"
price_eur_kwh = 0.30
max_current_a = 32

[mqtt]
url = "{url}"
prefix = "{prefix}"

[site]
members = [{members}]
limit_a = 63
key_file = "site.key"
"""


def write_site_configs(directory: str, members: list[str], broker_url: str, site: str = "lab",
                       prefix: str = "evnet", key: bytes | None = None) -> dict[str, str]:
    """A configuration file per member plus the shared `site.key` in `directory`: {cp: path}."""
    os.makedirs(directory, exist_ok=True)
    with open(os.path.join(directory, "site.key"), "w") as f:
        f.write((key or os.urandom(32)).hex() + "\n")
    paths = {}
    for cp in members:
        path = os.path.join(directory, f"{cp}.toml")
        with open(path, "w") as f:
            f.write(SITE_TOML.format(cp=cp, site=site, url=broker_url, prefix=prefix,
                                     members=", ".join(f'"{m}"' for m in members)))
        paths[cp] = path
    return paths
