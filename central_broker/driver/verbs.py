"""The driver app's verbs (`list`, `charge`, `status`, `stop`, `ticket`) and how they print, shared by the
command line (cli.py) and the interactive prompt (prompt.py)."""

from __future__ import annotations

import argparse
import time
from threading import Lock
from typing import IO, Any

from rich.console import Console

from central_broker.driver.app import DriverApp
from central_broker.driver.render import (
    answer_line,
    as_json,
    point_line,
    session_line,
    ticket_json,
    ticket_line,
)
from central_broker.driver.view import Closed, Ended, Lapsed, Started

PROG = "evnet driver"
OK, REFUSED, USAGE, UNREACHABLE = 0, 1, 2, 3
CLOSED_GRACE_S = 10.0   # after the site closed the session: how long its ticket may take to come
LIVE_WAIT_S = 2.0       # `status` of a charging session: how long to wait for its live figures


class Usage(Exception):  # noqa: N818 - a mistake of the caller's, said in one line (status 2)
    pass


class Unreachable(Exception):  # noqa: N818 - the site could not be reached (status 3)
    pass


def add_verbs(sub: Any) -> None:
    """The verbs, shared by the command line and the interactive prompt (prompt.py)."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="one JSON object per line")
    sub.add_parser("list", parents=[common], help="the charge points: status, location, price")
    charge = sub.add_parser("charge", parents=[common], help="ask for a charge at a charge point, or anywhere")
    charge.add_argument("--at", help="the charge point (default: anywhere)")
    charge.add_argument("--wait-ticket", action="store_true", help="follow the session until its ticket")
    sub.add_parser("status", parents=[common], help="your session now")
    stop = sub.add_parser("stop", parents=[common], help="stop your session (or withdraw your request)")
    stop.add_argument("--wait-ticket", action="store_true", help="wait for the session's ticket")
    sub.add_parser("ticket", parents=[common], help="your last ticket")


class Out:
    """Lines for a person (rich markup) or JSON objects for a script; safe from two threads."""

    def __init__(self, stream: IO[str], json_lines: bool) -> None:
        self.stream, self.json = stream, json_lines
        self.console = Console(file=stream, highlight=False, soft_wrap=True)
        self._lock = Lock()

    def emit(self, event: str, body: dict[str, Any], text: str) -> None:
        with self._lock:
            if self.json:
                self.stream.write(as_json(event, body) + "\n")
                self.stream.flush()
            else:
                self.console.print(text)


class Verbs:
    """What each verb does, for the command line and the prompt alike."""

    def __init__(self, app: DriverApp, out: Out) -> None:
        self.app, self.out = app, out

    def run(self, args: argparse.Namespace) -> int:
        match args.cmd:
            case "list":
                return self.points()
            case "charge":
                return self.charge(args.at, args.wait_ticket)
            case "status":
                return self.status()
            case "stop":
                return self.stop(args.wait_ticket)
            case "ticket":
                return self.ticket()
        raise Usage(f"no command {args.cmd!r}")

    def points(self) -> int:
        points = self.app.points()
        if not points:
            raise Unreachable(f"no charge point of site {self.app.site!r} heard from (is the site running?)")
        for p in points:
            self.out.emit("point", p.to_json(), point_line(p))
        return OK

    def charge(self, at: str | None, wait: bool) -> int:
        self.app.drain()
        result = self.app.call("request_charge", {"at": at})
        where = next((p for p in self.app.points() if p.cp == result.get("cp")), None)
        self.out.emit("answer", {"op": "request_charge", **result}, answer_line("request_charge", result, where))
        return self.follow() if wait else OK

    def status(self) -> int:
        def live() -> bool:
            s = self.app.view.session(time.monotonic())
            return s is None or s.phase == "waiting" or s.power_kw is not None
        self.app.wait_until(live, LIVE_WAIT_S)
        s = self.app.session()
        self.out.emit("session", {"session": None} if s is None else s.to_json(), session_line(s))
        return OK

    def stop(self, wait: bool) -> int:
        self.app.drain()
        result = self.app.call("stop_charge")
        self.out.emit("answer", {"op": "stop_charge", **result}, answer_line("stop_charge", result, None))
        return self.follow() if wait and not result.get("withdrawn") else OK

    def ticket(self) -> int:
        t = self.app.last_ticket()
        self.out.emit("ticket", {"ticket": None} if t is None else ticket_json(t), ticket_line(t))
        return OK

    def follow(self) -> int:
        """Print what happens to this driver's session until its ticket (0), or its request lapses (1)."""
        closed_at: float | None = None
        closed: dict[str, str] = {}
        while True:
            timeout = 1.0 if closed_at is None else closed_at + CLOSED_GRACE_S - time.monotonic()
            event = self.app.wait_event(max(0.0, timeout))
            match event:
                case Started(cp, session):
                    self.out.emit("started", {"cp": cp, "session": session}, f"Charging at {cp} (session {session}).")
                case Ended(ticket):
                    self.out.emit("ticket", ticket_json(ticket), ticket_line(ticket))
                    return OK
                case Closed(cp, session):
                    closed_at, closed = time.monotonic(), {"cp": cp, "session": session}
                case Lapsed(cp):
                    self.out.emit("lapsed", {"cp": cp}, f"Your request at {cp} lapsed: no EV came in time.")
                    return REFUSED
                case None if closed_at is not None and time.monotonic() >= closed_at + CLOSED_GRACE_S:
                    self.out.emit("closed", closed, f"The site closed your session {closed['session']} at "
                                                    f"{closed['cp']}; its ticket was not heard here.")
                    return OK
