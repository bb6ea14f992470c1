"""The terminal dashboard renders the same view: statuses with their legends, live figures, sites, events."""

from __future__ import annotations

import json
import threading

from rich.console import Console

from central_broker.tui import TerminalDashboard, render
from central_broker.view import View, decode


def feed(view: View, topic: str, body: dict) -> None:
    view.apply(decode("evnet", f"evnet/{topic}", json.dumps({"v": 1, **body}).encode()), 100.0)


def test_the_terminal_shows_each_point_its_legend_and_figures_and_the_site_sum() -> None:
    view = View()
    feed(view, "demo/state", {"slot": 1, "site": "demo", "limit_a": 63, "drawing_a": 16, "tickets_waiting": 2,
                              "charge_points": {}})
    feed(view, "demo/cp/cp1/status", {"cp": "cp1", "status": "CHARGING", "location": "Bay 1", "price_eur_kwh": 0.3})
    feed(view, "demo/cp/cp1/telemetry", {"cp": "cp1", "session": "cp1-a", "driver": "D7", "power_kw": 11.04,
                                         "energy_kwh": 2.5, "cost_eur": 0.75, "current_a": 16.0, "limit_a": 16.0,
                                         "limit_reason": "site_share"})
    feed(view, "demo/cp/cp2/status", {"cp": "cp2", "status": "OUT_OF_ORDER"})
    feed(view, "demo/cp/cp3/status", {"cp": "cp3", "status": "FAULTED", "fault": "meter"})
    console = Console(record=True, width=160, color_system=None)
    console.print(render(view.snapshot(), "http://127.0.0.1:8080/"))
    text = console.export_text()
    assert "Out of Order" in text and " meter " in text and "Charging" in text
    assert "11.0" in text and "2.50" in text and "0.75" in text and "D7" in text and "site_share" in text
    assert "16.0 A" in text and "63 A" in text  # the site's sum against its limit
    assert "cp2 Out of Order" in text           # the event log
    assert text.index("meter") < text.index("Out of Order") < text.index("Charging")  # what needs an eye first


def test_the_live_dashboard_runs_and_stops() -> None:
    view = View()
    feed(view, "demo/cp/cp1/status", {"cp": "cp1", "status": "AVAILABLE"})
    console = Console(record=True, width=120, height=40, force_terminal=True)
    tui = TerminalDashboard(view, threading.Lock(), console=console, period=0.05).start()
    tui.stop()
    assert not tui.alive()
    assert "cp1" in console.export_text()
