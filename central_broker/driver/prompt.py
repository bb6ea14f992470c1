"""The driver app's interactive mode: a prompt with the command line's verbs, and a live line of the session.

Lines come from `stdin` (a terminal, or a pipe: the same code, so tests feed it). A follower thread
prints what happens meanwhile: the session starting, its live figures when they change (at most every
`LIVE_EVERY_S`), its ticket, a request that lapsed. `quit`, `exit` or the end of input leave.
"""

from __future__ import annotations

import argparse
import shlex
import threading
import time
from typing import IO

from central_broker.driver.render import session_line, ticket_json, ticket_line
from central_broker.driver.verbs import REFUSED, UNREACHABLE, Unreachable, Verbs, add_verbs
from central_broker.driver.view import Closed, Ended, Lapsed, Started
from firmware.site.client import KvTimeout, SiteRefused

LIVE_EVERY_S = 2.0
HELP = ("verbs: list | charge [--at CP] | status | stop | ticket | help | quit   "
        "(charge and stop return at once; what follows is printed as it happens)")


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of ending the process on a bad line."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise ValueError(message)

    def exit(self, status: int = 0, message: str | None = None) -> None:  # type: ignore[override]
        raise ValueError(message or "")


def prompt_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="", add_help=False, exit_on_error=False)
    add_verbs(p.add_subparsers(dest="cmd", required=True, parser_class=_Parser))
    return p


class Prompt:
    def __init__(self, verbs: Verbs, stdin: IO[str]) -> None:
        self.verbs, self.stdin = verbs, stdin
        self.app, self.out = verbs.app, verbs.out
        self.parser = prompt_parser()
        self._stop = threading.Event()
        self._follower = threading.Thread(target=self._follow, name="driver-follower", daemon=True)

    def run(self) -> int:
        self.out.emit("hello", {"driver": self.app.driver, "site": self.app.site},
                      f"evnet driver {self.app.driver} at site {self.app.site}. {HELP}")
        self.verbs.status()
        self._follower.start()
        status = 0
        try:
            while True:
                self.out.console.file.flush()
                line = self.stdin.readline()
                if not line or line.strip() in ("quit", "exit"):
                    return status
                words = shlex.split(line, comments=True)
                if not words:
                    continue
                if words[0] == "help":
                    self.out.emit("help", {"help": HELP}, HELP)
                    continue
                try:
                    args = self.parser.parse_args(words)
                    if getattr(args, "wait_ticket", False):
                        raise ValueError("--wait-ticket is for scripts: here the ticket is shown when it comes")
                    status = self.verbs.run(args)
                except (ValueError, argparse.ArgumentError) as exc:
                    self.out.emit("error", {"error": "usage", "reason": str(exc)}, f"[red]{exc}[/] ({HELP})")
                except SiteRefused as exc:
                    status = REFUSED
                    self.out.emit("error", {"error": exc.code, "reason": exc.reason},
                                  f"[red]refused: {exc.code}: {exc.reason}[/]")
                except (KvTimeout, TimeoutError, ConnectionError, Unreachable) as exc:
                    status = UNREACHABLE
                    self.out.emit("error", {"error": "unreachable", "reason": str(exc)}, f"[red]{exc}[/]")
        finally:
            self._stop.set()
            self._follower.join(2.0)

    def _follow(self) -> None:
        """Events as they come, and the session's live line when it changed."""
        shown, last = "", 0.0
        while not self._stop.is_set():
            event = self.app.wait_event(0.5)
            match event:
                case Started(cp, session):
                    self.out.emit("started", {"cp": cp, "session": session}, f"Charging at {cp} (session {session}).")
                case Ended(ticket):
                    self.out.emit("ticket", ticket_json(ticket), ticket_line(ticket))
                case Closed(cp, session):
                    self.out.emit("closed", {"cp": cp, "session": session},
                                  f"The site closed your session {session} at {cp}; its ticket follows.")
                case Lapsed(cp):
                    self.out.emit("lapsed", {"cp": cp}, f"Your request at {cp} lapsed: no EV came in time.")
            now = time.monotonic()
            s = self.app.session()
            line = session_line(s)
            if s is not None and s.phase != "waiting" and line != shown and now - last >= LIVE_EVERY_S:
                self.out.emit("session", s.to_json(), line)
                shown, last = line, now
