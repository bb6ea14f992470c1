"""The registry: charge points come back DISCONNECTED after a restart; a ticket is on disk before it is acked."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from central_broker.registry import Registry
from central_broker.view import View
from central_broker.view.messages import Ticket


def ticket(session: str, site: str = "demo") -> Ticket:
    return Ticket(site, session, "cp1", "D1", 2.5, 0.75, "unplugged", {"session": session, "kwh": 2.5})


def test_charge_points_survive_a_restart_and_show_disconnected(tmp_path: Path) -> None:
    reg = Registry(str(tmp_path / "c.db"))
    reg.save([("demo", "cp1", "Bay 1", 0.3, 32.0, "CHARGING", 100.0),
                  ("demo", "cp2", "Bay 2", 0.3, 32.0, "AVAILABLE", 101.0)])
    reg.save([("demo", "cp1", "Bay 1", None, None, "FAULTED", 102.0)])  # unknowns keep what was there
    reg.close()
    again = Registry(str(tmp_path / "c.db"))
    known = again.charge_points()
    assert [(k.cp, k.price_eur_kwh, k.last_status, k.last_seen) for k in known] == \
        [("cp1", 0.3, "FAULTED", 102.0), ("cp2", 0.3, "AVAILABLE", 101.0)]
    assert again.sites() == ["demo"]
    view = View()
    view.load(known)
    assert {r.to_json()["status"] for r in view.cps.values()} == {"DISCONNECTED"}


def test_a_ticket_is_kept_once_and_acked_once(tmp_path: Path) -> None:
    reg = Registry(str(tmp_path / "c.db"))
    assert [t.session for t in reg.add_tickets([ticket("s1"), ticket("s2")], "site", 1.0)] == ["s1", "s2"]
    assert reg.add_tickets([ticket("s1")], "site", 2.0) == []  # seen again in the next state: kept once
    assert reg.add_tickets([ticket("s1")], "engine", 2.0)      # the engine's own copy is a row of its own
    assert reg.unacked() == [("demo", "s1"), ("demo", "s2")]
    reg.mark_acked("demo", ["s1"], 3.0)
    assert reg.unacked("demo") == [("demo", "s2")]
    assert [(t["session"], t["acked"]) for t in reg.tickets("demo")] == [("s1", 3.0), ("s2", None)]


def test_a_ticket_added_survives_kill_9(tmp_path: Path) -> None:
    db = tmp_path / "c.db"
    code = textwrap.dedent(f"""
        import os, signal
        from central_broker.registry import Registry
        from central_broker.view.messages import Ticket
        reg = Registry({str(db)!r})
        reg.add_tickets([Ticket("demo", "s9", "cp1", "D1", 1.0, 0.3, "unplugged", {{}})], "site", 1.0)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30)
    assert proc.returncode == -9, proc.stderr
    assert Registry(str(db)).unacked() == [("demo", "s9")]
