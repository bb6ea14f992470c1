"""The `evnet` command: one entry point, a subcommand per process a charge point runs.

Subcommands are named by `module:function` strings and imported only when used, so
`evnet hal-check` does not load the Paxos code, and this module imports no part.
Each function takes the remaining arguments and returns an exit status.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable

COMMANDS: dict[str, tuple[str, str]] = {
    # name: ("module:function", one-line help)
    "hal-check": ("hal.check:main", "check a freshly wired charge point: LED, relays, meter, pilot"),
    "ev": ("firmware.ev.process:main", "plug an emulated EV (a plan) into a charge point's virtual cable"),
    "cp": ("firmware.chargepoint.process:main", "run one charge point of a site: engine, replica of the site, bridge"),
    "evse": ("firmware.engine.evse:main", "run one charge point's charging engine (pilot, session, meter, tickets)"),
    "monitor": ("firmware.monitor.watchdog:main", "the monitor watchdog: heartbeats, safety line, FAULTED"),
    "replica": ("firmware.paxos.io.process:replica_main", "run one Paxos replica of the site (key-value machine)"),
    "kv": ("firmware.paxos.io.process:kv_main", "put/get/cas on the site's replicated key-value store"),
    "site": ("firmware.site.cli:main", "the site's API: status, drivers, operators, stop/resume, limit, requests"),
}


def _usage() -> str:
    width = max(map(len, COMMANDS))
    lines = ["usage: evnet COMMAND [ARGS...]", "", "commands:"]
    lines += [f"  {name:<{width}}  {help_}" for name, (_, help_) in sorted(COMMANDS.items())]
    lines += ["", "`evnet COMMAND --help` tells more."]
    return "\n".join(lines)


def _resolve(target: str) -> Callable[[list[str]], int]:
    module, _, func = target.partition(":")
    return getattr(importlib.import_module(module), func)


def main(argv: list[str] | None = None) -> int:
    """Run `evnet`; configuration mistakes end with one line on stderr and status 2."""
    from evnet.config import ConfigError

    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0 if args else 2
    if args[0] in ("-V", "--version"):
        from evnet import __version__

        print(f"evnet {__version__}")
        return 0
    name, rest = args[0], args[1:]
    if name not in COMMANDS:
        print(f"evnet: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    try:
        return int(_resolve(COMMANDS[name][0])(rest) or 0)
    except ConfigError as exc:
        print(f"evnet {name}: configuration error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
