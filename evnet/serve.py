"""How a long-running `evnet` process waits for SIGINT/SIGTERM while watching its threads."""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable


def serve(name: str, start: Callable[[], object], dead: Callable[[], str | None], stop: Callable[[], None],
          poll_s: float = 0.5) -> int:
    """`start()`, then run until SIGINT or SIGTERM (exit 0) or until `dead()` names a part whose thread died
    (exit 1, so that the service manager starts the process again; "restart: WHY" is a start again asked for,
    not a failure); `stop()` in either case. The signals
    are taken before `start()`: one that comes while it runs is a stop like any other, not a kill."""
    done = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: done.set())
    try:
        start()
        while not done.wait(poll_s):
            part = dead()
            if part is not None:
                if part.startswith("restart: "):
                    print(f"{name}: {part[len('restart: '):]}: ending, for the service manager to start it again",
                          file=sys.stderr)
                else:
                    print(f"{name}: the {part} died; see the log", file=sys.stderr)
                return 1
    finally:
        stop()
    return 0
