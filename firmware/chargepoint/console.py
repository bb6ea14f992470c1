"""The charge point's console: when `evnet cp` runs in a terminal, a key is the manual-start button.

    s          the button: a start for the first of the local drivers ([charge_point] local_drivers)
    s D01      the button with the driver a card reader would have named

A press goes where the GPIO button's goes (the bridge's `button`): the site authorizes the start, and
when the site does not answer, the local list decides (docs/chargepoint.md). A line that means nothing
is said in the log (folded) and changes nothing; the end of input ends only the console.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from evnet.config.schema import DRIVER_RE
from evnet.logs import EventLogger, FoldedLog

HELP = "'s' + Enter on the console presses the manual-start button; 's DRIVER' names the driver"
MAX_LINE = 200


@dataclass(frozen=True)
class Press:
    driver: str | None


def parse(line: str) -> Press | str:
    """The press a console line means, or why it means none."""
    words = line[:MAX_LINE].split()
    match words:
        case ["s"]:
            return Press(None)
        case ["s", driver] if DRIVER_RE.match(driver):
            return Press(driver)
        case ["s", _]:
            return "not a driver id (1-64 of A-Z a-z 0-9 . _ @ -)"
        case []:
            return "empty"
    return "unknown key: 's' + Enter is the manual-start button"


class Console:
    """Reads `stream` on its own (daemon) thread and calls `on_press(driver)` for each press."""

    def __init__(self, stream: IO[str], on_press: Callable[[str | None], None], log: EventLogger) -> None:
        self.stream, self.on_press, self.log = stream, on_press, log
        self._folded = FoldedLog(log)
        self._thread = threading.Thread(target=self._run, name="cp-console", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            for line in self.stream:
                got = parse(line)
                if isinstance(got, Press):
                    self.log.info("cp.console_button", driver=got.driver)
                    self.on_press(got.driver)
                elif got != "empty":
                    self._folded.warning("cp.console_ignored", why=got, line=line[:40].strip())
        except (OSError, ValueError) as exc:  # a console that went away: the button is gone, nothing else
            self.log.warning("cp.console_closed", error=str(exc)[:120])
