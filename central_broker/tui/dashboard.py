"""The terminal dashboard: the view of every site in a rich `Live` table, its event log beneath.

It reads the same view as the web dashboard (a snapshot twice a second, under the view's lock) and
shows at most `max_rows` charge points (the ones not AVAILABLE first: what needs an eye), with a count
of each status, so a thousand points still draw in a few milliseconds. `render` is pure: a snapshot in,
a renderable out (tests render it to text).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text

from central_broker.view import View

STYLES = {"green": "bold white on green4", "green-outline": "bold green4 on default",
          "orange": "bold white on dark_orange", "red": "bold white on red3", "grey": "white on grey42"}
ORDER = {"FAULTED": 0, "OUT_OF_ORDER": 1, "DISCONNECTED": 2, "CHARGING": 3, "RESERVED": 4, "AVAILABLE": 5}


def _num(v: float | None, digits: int, unit: str = "") -> str:
    return "–" if v is None else f"{v:.{digits}f}{unit}"


def render(snap: dict[str, Any], web_url: str | None = None, max_rows: int = 40, max_events: int = 10) -> Group:
    counts = Counter(c["status"] for c in snap["cps"])
    head = Text(f"evnet Central  {len(snap['cps'])} charge points  "
                + "  ".join(f"{s} {n}" for s, n in sorted(counts.items())) + (f"  web {web_url}" if web_url else ""),
                style="bold")
    sites = Table(title="Sites", expand=True)
    for col in ("site", "current", "limit", "tickets waiting"):
        sites.add_column(col)
    for s in snap["sites"]:
        over = s["limit_a"] is not None and s["sum_a"] > s["limit_a"]
        sites.add_row(s["site"], Text(_num(s["sum_a"], 1, " A"), style="bold red" if over else ""),
                      _num(s["limit_a"], 0, " A"), str(s["tickets_waiting"]))
    cps = Table(title="Charge points", expand=True)
    for col in ("site", "cp", "status", "location", "€/kWh", "kW", "kWh", "€", "driver", "why limited"):
        cps.add_column(col)
    rows = sorted(snap["cps"], key=lambda c: (ORDER[c["status"]], c["site"], c["cp"]))
    for c in rows[:max_rows]:
        cps.add_row(c["site"], c["cp"], Text(f" {c['legend']} ", style=STYLES[c["colour"]]), c["location"] or "",
                    _num(c["price_eur_kwh"], 2), _num(c["power_kw"], 1), _num(c["energy_kwh"], 2),
                    _num(c["cost_eur"], 2), c["driver"] or c["reserved_by"] or "", c["limit_reason"] or "")
    if len(rows) > max_rows:
        cps.caption = f"{len(rows) - max_rows} more (AVAILABLE last); the web dashboard shows all"
    log = Table(title="Events", expand=True, show_header=False)
    log.add_column("time", width=8)
    log.add_column("event")
    for e in list(snap["events"])[-max_events:][::-1]:
        log.add_row(time.strftime("%H:%M:%S", time.localtime(e["t"])), f"{e['site']}: {e['text']}")
    return Group(head, sites, cps, log)


class TerminalDashboard:
    def __init__(self, view: View, lock: threading.Lock | threading.Condition, web_url: str | None = None,
                 console: Console | None = None, period: float = 0.5) -> None:
        self.view, self.lock, self.web_url, self.period = view, lock, web_url, period
        self.console = console or Console()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="central-tui", daemon=True)

    def start(self) -> TerminalDashboard:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def alive(self) -> bool:
        return self._thread.is_alive()

    def frame(self) -> Group:
        with self.lock:
            snap = self.view.snapshot()
        return render(snap, self.web_url, max_rows=max(5, self.console.size.height - 20))

    def _run(self) -> None:
        with Live(self.frame(), console=self.console, screen=True, auto_refresh=False) as live:
            while not self._stop.wait(self.period):
                live.update(self.frame(), refresh=True)
