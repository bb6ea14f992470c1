"""`evnet driver`: the driver app, a client of the site with the driver's own key (docs/driver.md).

    evnet driver --id D01 --key d01.pem --config cp1.toml list
    evnet driver --id D01 --key d01.pem --config cp1.toml charge --at cp2 --wait-ticket --json
    evnet driver --id D01 --key d01.pem --config cp1.toml status | stop [--wait-ticket] | ticket
    evnet driver --id D01 --key d01.pem --config cp1.toml            # interactive: a prompt, the same verbs

`--config` names the broker and the site, as for `evnet site` (a charge point's TOML file; the site key
in it is not used: a driver holds none). Exit status: 0 done, 1 the site refused (its reason on one
line; also a request that lapsed with no EV), 2 a usage, configuration or key file mistake, 3 the site
could not be reached (no broker, no answer, no state published).
"""

from __future__ import annotations

import argparse
import sys
from typing import IO

from central_broker.driver.app import DriverApp, TicketFile, default_ticket_file
from central_broker.driver.prompt import Prompt
from central_broker.driver.render import ticket_json, ticket_line
from central_broker.driver.verbs import OK, PROG, REFUSED, UNREACHABLE, USAGE, Out, Unreachable, Usage, Verbs, add_verbs
from evnet.config import ConfigError, load_config
from evnet.logs import setup_logging
from firmware.site.client import KvTimeout, SiteRefused
from firmware.site.credentials import load_private_key


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="The driver app: charge points, a charge, its ticket.",
                                epilog="Without a command: interactive, a prompt with the same verbs "
                                       "(help, quit). Exit: 0 ok, 1 refused, 2 usage, 3 site unreachable.")
    p.add_argument("--id", required=True, help="the driver's id at the site (added by an operator)")
    p.add_argument("--key", required=True, help="the driver's private key file (evnet site keygen)")
    p.add_argument("--config", required=True, help="a TOML file naming the broker and the site (as evnet site)")
    p.add_argument("--timeout", type=float, default=10.0, help="seconds to wait for the broker or the site")
    p.add_argument("--ticket-file", help="where the last ticket is kept (default: ~/.local/state/evnet/driver/...)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    add_verbs(p.add_subparsers(dest="cmd"))
    return p


def main(argv: list[str]) -> int:
    """The process's entry: log lines (warnings and worse: a driver's screen is for the driver) on stderr."""
    setup_logging("WARNING")
    return run(argv, sys.stdin, sys.stdout, sys.stderr)


def run(argv: list[str], stdin: IO[str], stdout: IO[str], stderr: IO[str]) -> int:
    """`evnet driver ARGS`, reading the prompt's lines from `stdin` and writing to `stdout` and `stderr`."""
    try:
        args = parser().parse_args(argv)
    except SystemExit as exc:  # argparse said why on stderr
        return OK if exc.code == 0 else USAGE
    try:
        with open(args.key, "rb") as f:
            data = f.read(65536)
        try:
            key = load_private_key(data)
        except ValueError as exc:
            raise Usage(f"--key {args.key}: not an Ed25519 private key (evnet site keygen makes one): "
                        f"{str(exc)[:80]}") from None
        cfg = load_config(args.config)
        ticket_file = args.ticket_file or default_ticket_file(cfg.site_id, args.id)
        out = Out(stdout, args.json)
        if args.cmd == "ticket":  # kept on disk: no broker needed
            t = TicketFile(ticket_file, cfg.site_id).load()
            out.emit("ticket", {"ticket": None} if t is None else ticket_json(t), ticket_line(t))
            return OK
        with DriverApp(cfg.mqtt, cfg.site_id, args.id, key, timeout=args.timeout, ticket_file=ticket_file) as app:
            app.start(min(args.timeout, 5.0))
            if args.cmd is None:
                return Prompt(Verbs(app, out), stdin).run()
            return Verbs(app, out).run(args)
    except SiteRefused as exc:
        print(f"{PROG}: refused: {exc.code}: {exc.reason}", file=stderr)
        return REFUSED
    except (KvTimeout, TimeoutError, ConnectionError, Unreachable) as exc:
        print(f"{PROG}: {exc}", file=stderr)
        return UNREACHABLE
    except (Usage, ConfigError, ValueError, OSError) as exc:
        print(f"{PROG}: {exc}", file=stderr)
        return USAGE
