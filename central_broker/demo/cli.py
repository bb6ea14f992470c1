"""`evnet demo`: the reference scenario (DESIGN.md) with real processes, checked at the end.

    evnet demo                 # 60x: the 10 minutes in about 10 s, after the site starts
    evnet demo --chaos         # also kill -9 the leader, hang an engine, restart the broker
    evnet demo --keep DIR      # keep the configurations and every process's log in DIR

Exit 0 only if every check held (checks.py); each check prints one line.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

from central_broker.brokers import start_local_broker
from central_broker.demo.checks import longest_break, verdicts
from central_broker.demo.run import Scenario
from central_broker.demo.site import LIMIT_A, SiteProcesses
from evnet.logs import setup_logging


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evnet demo", description="Run the reference scenario: a broker, three charge "
                                "points with their monitors, three EVs and their drivers; check every ticket "
                                "against its meter and the site limit against the meters' currents.")
    p.add_argument("--speed", type=float, default=60.0, help="domain time per real second (default 60: a minute a "
                   "second; leases, heartbeats and the EVs' 5 s reaction stay in real time)")
    p.add_argument("--chaos", action="store_true", help="also kill -9 the leader (minute 5), hang an engine for its "
                   "monitor to catch (6) and restart the broker (7)")
    p.add_argument("--keep", metavar="DIR", help="keep configurations and logs in DIR (default: a temporary "
                   "directory, removed at the end)")
    p.add_argument("--broker", choices=("auto", "mosquitto", "embedded"), default="auto",
                   help="Mosquitto as a child (auto: when installed), or the embedded amqtt")
    p.add_argument("--no-tui", action="store_true", help="no terminal dashboard: Central logs to a file and the "
                   "demo prints its timeline as it goes (the default when not in a terminal)")
    p.add_argument("--no-central", action="store_true", help="run the site without Central")
    p.add_argument("--log-level", default="WARNING")
    return p


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if not 1 <= args.speed <= 600:
        print(f"evnet demo: --speed {args.speed:g} is out of range (1 to 600)", file=sys.stderr)
        return 2
    setup_logging(args.log_level)
    root = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="evnet-demo-"))
    root.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    tui = not args.no_tui and not args.no_central and sys.stdout.isatty()
    held: list[str] = []  # while Central's dashboard has the terminal, the timeline waits for the end

    def say(line: str) -> None:
        line = f"[{time.monotonic() - began:5.1f} s] {line}"
        if tui and not done:
            held.append(line)
        else:
            print(line, flush=True)

    done = False
    broker, version = start_local_broker(args.broker)
    say(f"broker: {type(broker).__name__} (MQTT {version}) at {broker.url}; logs in {root}")
    site = SiteProcesses(root, broker.url, args.speed, site="demo", supervised=True, mqtt_version=version)
    scenario = Scenario(site, broker.restart, say, chaos=args.chaos)
    try:
        if not args.no_central:
            say(f"Central: web dashboard at {site.start_central(tui)}")
            if tui:
                print(f"evnet demo: Central's web dashboard at {site.web}", file=sys.stderr, flush=True)
        site.start()
        scenario.prepare()
        scenario.run(args.speed)
        record = scenario.record()
    finally:
        scenario.close()
        site.close()
        broker.close()
        done = True
        for line in held:
            print(line)
    checks = verdicts(record)
    _report(say, record, site, scenario, checks)
    say(f"wall time {time.monotonic() - began:.1f} s")
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)
    return 0 if all(c.ok for c in checks) else 1


def _report(say, record, site, scenario, checks) -> None:  # noqa: ANN001 - the demo's own parts
    say("tickets:")
    for t in sorted(record.tickets, key=lambda t: (t.get("cp", ""), t.get("start_ts", 0))):
        say(f"  {t.get('cp')} {t.get('driver')}: {float(t.get('kwh', 0)):.3f} kWh, {float(t.get('cost_eur', 0)):.2f} €"
            f" ({t.get('reason')})")
    top = max((s.total() for s in record.samples), default=0.0)
    say(f"highest sum of currents {top:.2f} A, site limit {LIMIT_A} A")
    worst, where = longest_break(record)
    say(f"longest break in a charging EV's current: {worst * 1000:.0f} ms" + (f" at {where}" if worst else ""))
    for cp, took in record.failovers:
        say(f"failover: {cp} killed -> next site command committed "
            f"{'never' if took is None else f'after {took * 1000:.0f} ms'}")
    for _t, cp, why in site.restarts:
        say(f"restart: {cp} {why}")
    if scenario.asked_again:
        say(f"drivers asked again after a restart under their car: {scenario.asked_again}")
    for c in checks:
        say(str(c))
