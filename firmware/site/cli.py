"""`evnet site`: the site's API for operators and scripts (docs/mqtt-api.md), one command per request.

    evnet site --config cp1.toml status
    evnet site --config cp1.toml operators add OP1 --key op1.pub        # with the site key: on a charge point
    evnet site --config cp1.toml --as OP1 --key op1.pem drivers add D01 --key d01.pub
    evnet site --config cp1.toml --as OP1 --key op1.pem stop cp2        # or: stop all, resume all, limit 50
    evnet site --config cp1.toml --as OP1 --key op1.pem cap cp2 16      # cap one charge point; cap cp2 none
    evnet site --config cp1.toml --key d01.pem request --driver D01 --at cp2
    evnet site keygen d01.pem                                          # d01.pem (0600) and d01.pem.pub

`--config` names the broker and the site; `--as`/`--key` the principal and its private key. Without
them a command is sent as a member-role tool under the site key (`[site] key_file`): only where the
key is, on a charge point. A result prints as one line of JSON; a refusal prints its code and reason,
a timeout the client's diagnosis (status 1); a usage, configuration or key file mistake is status 2.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from evnet.config import Config, ConfigError, load_config
from firmware.site.client import KvTimeout, SiteClient, SiteRefused, read_state
from firmware.site.credentials import (
    load_private_key,
    new_private_key,
    private_key_pem,
    public_key_b64,
    read_public_key,
)

PROG = "evnet site"


class Usage(Exception):  # noqa: N818 - a mistake of the caller's, said in one line (status 2)
    pass


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description="Drive the site: drivers, operators, charge points, limit.")
    p.add_argument("--config", help="a charge point's TOML file: the broker, the site (and its key)")
    p.add_argument("--as", dest="principal", help="the driver or operator to act as (default: the key's --driver)")
    p.add_argument("--key", dest="private", help="that principal's private key file (evnet site keygen)")
    p.add_argument("--client", help="the Paxos client id (default: the principal's id, or cli-PID with the site key)")
    p.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for the site's answer")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("status", help="the state the leader publishes (retained)")
    sub.add_parser("whoami", help="the principal's id, role and last seq")
    for who in ("drivers", "operators"):
        sp = sub.add_parser(who, help=f"add or remove {who}").add_subparsers(dest="action", required=True)
        add = sp.add_parser("add")
        add.add_argument("id")
        add.add_argument("--key", dest="pub", required=True, help="its public key file (FILE.pub)")
        sp.add_parser("remove").add_argument("id")
    kg = sub.add_parser("keygen", help="write an Ed25519 private key (0600) and its FILE.pub")
    kg.add_argument("file")
    for name in ("stop", "resume"):
        sub.add_parser(name, help=f"{name} a charge point, or all").add_argument("cp", help="a charge point id, or all")
    sub.add_parser("limit", help="set the site's current limit").add_argument("amps", type=float)
    pr = sub.add_parser("priority", help="a charge point's priority when current is short (0-9)")
    pr.add_argument("cp")
    pr.add_argument("priority", type=int)
    cap = sub.add_parser("cap", help="cap a charge point's current (6 A to its maximum), or none to clear it")
    cap.add_argument("cp")
    cap.add_argument("amps", type=_amps_or_none, help="amps, or none")
    rq = sub.add_parser("request", help="a driver's request to charge")
    rq.add_argument("--driver", help="the driver (same as --as)")
    rq.add_argument("--at", help="the charge point (default: anywhere)")
    rs = sub.add_parser("reserve", help="a driver's reservation")
    rs.add_argument("--driver", help="the driver (same as --as)")
    rs.add_argument("--at", required=True)
    rs.add_argument("--duration", type=int, help="seconds (default: the site's)")
    for name in ("cancel", "stop-charge"):
        sub.add_parser(name, help=f"a driver's {name.replace('-', ' ')}").add_argument("--driver")
    sub.add_parser("ack-tickets", help="tickets taken by Central").add_argument("sessions", nargs="+")
    return p


def main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.cmd == "keygen":
            return _keygen(args.file)
        if not args.config:
            raise Usage("--config FILE is needed: the broker and the site")
        cfg = load_config(args.config)
        if args.cmd == "status":
            _print(read_state(cfg.mqtt, cfg.site_id, args.timeout, name=f"cli-{os.getpid()}"))
            return 0
        op, op_args = _request(args)
        with _client(cfg, args) as client:
            _print(client.call(op, op_args))
        return 0
    except SiteRefused as exc:
        print(f"{PROG}: refused: {exc.code}: {exc.reason}", file=sys.stderr)
        return 1
    except (KvTimeout, TimeoutError, ConnectionError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 1
    except (Usage, ConfigError, ValueError, OSError) as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2


def _request(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The site op and its args for the command line's words."""
    match args.cmd:
        case "drivers" | "operators" if args.action == "add":
            with open(args.pub, "rb") as f:
                key = read_public_key(f.read())
            return "add_principal", {"id": args.id, "role": args.cmd[:-1], "key": key}
        case "drivers" | "operators":
            return "remove_principal", {"id": args.id}
        case "stop" | "resume":
            return f"{args.cmd}_cp", {"cp": args.cp}
        case "limit":
            return "set_limit", {"limit_a": args.amps}
        case "priority":
            return "set_priority", {"cp": args.cp, "priority": args.priority}
        case "cap":
            return "set_cp_max", {"cp": args.cp, "max_current_a": args.amps}
        case "request":
            return "request_charge", {"at": args.at}
        case "reserve":
            return "reserve", {"at": args.at} | ({} if args.duration is None else {"duration_s": args.duration})
        case "cancel":
            return "cancel_reservation", {}
        case "stop-charge":
            return "stop_charge", {}
        case "ack-tickets":
            return "ack_tickets", {"sessions": args.sessions}
        case "whoami":
            return "whoami", {}
    raise Usage(f"no command {args.cmd!r}")


def _amps_or_none(text: str) -> float | None:
    if text.lower() == "none":
        return None
    try:
        return float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected amps or none, got {text[:20]!r}") from None


def _client(cfg: Config, args: argparse.Namespace) -> SiteClient:
    principal = args.principal or getattr(args, "driver", None)
    if args.private is None:
        if principal is not None:
            raise Usage(f"--key FILE is needed to act as {principal} (its private key)")
        from evnet.config.site_key import site_key

        return SiteClient(cfg.mqtt, cfg.site_id, site_key=site_key(cfg), client_id=args.client or f"cli-{os.getpid()}",
                          timeout=args.timeout).start()
    if principal is None:
        raise Usage("--as ID is needed with --key (whose key it is)")
    with open(args.private, "rb") as f:
        key = load_private_key(f.read())
    return SiteClient(cfg.mqtt, cfg.site_id, principal=principal, key=key, client_id=args.client,
                      timeout=args.timeout).start()


def _keygen(path: str) -> int:
    key = new_private_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(private_key_pem(key))
    with open(path + ".pub", "w") as f:
        f.write(public_key_b64(key) + "\n")
    print(json.dumps({"private": path, "public": path + ".pub", "key": public_key_b64(key)}))
    return 0


def _print(result: dict[str, Any]) -> None:
    print(json.dumps(result, sort_keys=True))
