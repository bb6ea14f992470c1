"""`evnet driver` against a real site: three `ChargePoint`s (tests/sites.py) on a real Mosquitto, the driver
app speaking with its own key (open, signed requests), its scripted verbs and their exit codes, the
interactive prompt fed through a pipe, and a restarted app picking up the session from the site."""

from __future__ import annotations

import io
import json
import os
import threading
from pathlib import Path

import pytest

from central_broker.driver.cli import run
from firmware.site.credentials import private_key_pem
from hal.pilot import EvLoad

from ..engine.conftest import wait_for
from ..sites import add_people


class Driver:
    """`evnet driver --id D --key FILE --config FILE ...` run in this process, its output captured."""

    def __init__(self, root: Path, site: dict, driver: str, key) -> None:
        self.key_file = root / f"{driver}.pem"
        self.key_file.write_bytes(private_key_pem(key))
        self.base = ["--id", driver, "--key", str(self.key_file), "--config", str(site["cp1"].cfg.path),
                     "--ticket-file", str(root / f"{driver}-ticket.json")]

    def __call__(self, *argv: str, stdin: io.TextIOBase | None = None) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        code = run([*self.base, *argv], stdin or io.StringIO(), out, err)
        return code, out.getvalue(), err.getvalue()

    def in_thread(self, *argv: str) -> tuple[threading.Thread, dict]:
        got: dict = {}

        def go() -> None:
            got["code"], got["out"], got["err"] = self(*argv)
        t = threading.Thread(target=go, daemon=True)
        t.start()
        return t, got


def plug_in(cp) -> object:
    """An EV plugs into `cp` and asks to charge, drawing 6 A (within any grant) once offered."""
    ev = cp.evse.cable.ev
    ev.set_load(EvLoad.B)
    ev.set_load(EvLoad.C)
    ev.set_current(6.0)
    return ev


def leave(ev) -> None:
    """The EV stops drawing and is unplugged: its session ends with its ticket."""
    ev.set_current(0.0)
    ev.set_load(EvLoad.B)
    ev.set_load(EvLoad.NOT_CONNECTED)


def lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines()]


@pytest.fixture
def people(site):
    wait_for(lambda: all(c.machine.state.cps[c.cp].registered for c in site.values()), timeout=20,
             what="every charge point registered")
    return add_people(site["cp1"], ["D1", "D2"])


def test_charge_at_a_point_follows_the_session_to_its_ticket_as_json_lines(site, people, tmp_path) -> None:
    _operator, keys = people
    d1 = Driver(tmp_path, site, "D1", keys["D1"])
    code, out, _ = d1("list", "--json")
    assert code == 0
    points = {p["cp"]: p for p in lines(out)}
    assert set(points) == {"cp1", "cp2", "cp3"} and {p["event"] for p in points.values()} == {"point"}
    assert points["cp2"]["status"] == "AVAILABLE" and points["cp2"]["location"] == "Bay cp2"
    assert points["cp2"]["price_eur_kwh"] == pytest.approx(0.30)

    follower, got = d1.in_thread("charge", "--at", "cp2", "--wait-ticket", "--json")
    wait_for(lambda: any(a.driver == "D1" for a in site["cp1"].machine.state.authorizations.values()),
             timeout=15, what="D1's request waiting at the site")
    ev = plug_in(site["cp2"])
    wait_for(lambda: site["cp2"].evse.core.status == "CHARGING", timeout=20, what="cp2 charging for D1")
    wait_for(lambda: site["cp2"].evse.core.telemetry() is not None and
             site["cp2"].evse.core.telemetry()["energy_kwh"] > 0, timeout=20, what="some energy metered")
    seen: list[dict] = []

    def charging_said() -> bool:  # the site publishes its state at most once a second: a fresh app may lag
        code, out, _ = d1("status", "--json")
        seen[:] = lines(out)
        return code == 0 and len(seen) == 1 and seen[0]["event"] == "session" and seen[0]["phase"] == "charging"
    wait_for(charging_said, timeout=10, what="the app saying D1 charges")
    (now,) = seen
    assert now["cp"] == "cp2" and now["power_kw"] is not None and now["power_kw"] > 0 and now["limit_reason"]
    leave(ev)
    follower.join(30)
    assert not follower.is_alive(), "charge --wait-ticket did not end with the ticket"
    events = lines(got["out"])
    assert got["code"] == 0, got
    assert [e["event"] for e in events] == ["answer", "started", "ticket"]
    assert events[0]["cp"] == "cp2" and "redirect_reason" not in events[0]
    ticket = events[-1]
    assert ticket["driver"] == "D1" and ticket["cp"] == "cp2" and ticket["kwh"] > 0
    assert ticket["cost_eur"] == pytest.approx(round(ticket["kwh"] * 0.30, 2))
    code, out, _ = d1("ticket", "--json")  # kept on disk: no broker needed to show it again
    assert code == 0 and lines(out) == [{**ticket}]


def test_a_busy_point_redirects_and_a_refusal_or_no_site_has_its_exit_code(site, people, tmp_path, mosquitto) -> None:
    _operator, keys = people
    d1, d2 = Driver(tmp_path, site, "D1", keys["D1"]), Driver(tmp_path, site, "D2", keys["D2"])
    assert d1("charge", "--at", "cp1")[0] == 0
    code, out, _ = d2("charge", "--at", "cp1", "--json")
    (answer,) = lines(out)
    assert code == 0 and answer["cp"] != "cp1"
    assert answer["redirected_from"] == "cp1" and answer["redirect_reason"] == "busy"
    # Another app of D2's learns the request from the site's state (published within a renewal or so).
    wait_for(lambda: f"Waiting for your EV at {answer['cp']} (Bay {answer['cp']})" in d2("status")[1], timeout=15,
             what="D2's request in the site's state")
    code, out, err = d1("charge", "--at", "nope")
    assert code == 1 and out == "" and err.startswith("evnet driver: refused: unknown_charge_point:")
    assert len(err.strip().splitlines()) == 1
    code, out, _ = d2("stop", "--json")
    assert code == 0 and lines(out)[0]["withdrawn"] == answer["cp"]
    stranger = Driver(tmp_path, site, "D9", keys["D1"])  # not a driver of this site
    code, _, err = stranger("charge")
    assert code == 1 and "unknown_principal" in err
    code, _, err = d1("--config", str(tmp_path / "missing.toml"), "list")
    assert code == 2 and "no such file" in err
    code, _, err = d1("charge", "--nonsense")
    assert code == 2
    mosquitto.stop()
    code, _, err = d1("--timeout", "1", "list")
    assert code == 3 and "no broker" in err


def test_a_restarted_app_picks_up_its_session_from_the_site_and_stops_it(site, people, tmp_path) -> None:
    _operator, keys = people
    d1 = Driver(tmp_path, site, "D1", keys["D1"])
    assert d1("charge", "--at", "cp3")[0] == 0  # this app ends here, as if it crashed
    plug_in(site["cp3"])
    wait_for(lambda: site["cp3"].evse.core.status == "CHARGING", timeout=20, what="cp3 charging for D1")
    # A new app knows only what the site says: its state (paced: it may lag a renewal) and the telemetry.
    wait_for(lambda: "Charging at cp3" in d1("status")[1], timeout=15, what="the session in a new app")
    code, out, _ = d1("status", "--json")
    (now,) = lines(out)
    assert code == 0 and now["phase"] == "charging" and now["cp"] == "cp3" and now["session"].startswith("cp3-")
    code, out, _ = d1("stop", "--wait-ticket", "--json")
    events = lines(out)
    assert code == 0 and events[0]["session"] == now["session"] and events[-1]["event"] == "ticket"
    assert events[-1]["session"] == now["session"] and events[-1]["reason"] != ""
    wait_for(lambda: site["cp3"].evse.core.status == "AVAILABLE" or site["cp3"].evse.core.session.state.value
             != "Charging", timeout=20, what="cp3's session ended")


def test_the_interactive_prompt_takes_the_same_verbs_from_a_pipe(site, people, tmp_path) -> None:
    _operator, keys = people
    d1 = Driver(tmp_path, site, "D1", keys["D1"])
    read_fd, write_fd = os.pipe()
    stdin, feed = os.fdopen(read_fd, "r"), os.fdopen(write_fd, "w")
    out, err = io.StringIO(), io.StringIO()
    got: dict = {}
    t = threading.Thread(target=lambda: got.setdefault("code", run([*d1.base], stdin, out, err)), daemon=True)
    t.start()
    feed.write("list\ncharge --at cp2\nbogus\n")
    feed.flush()
    wait_for(lambda: "Charge at cp2" in out.getvalue(), timeout=15, what="the answer to charge")
    plug_in(site["cp2"])
    wait_for(lambda: "Charging at cp2" in out.getvalue(), timeout=20, what="the session shown starting")
    feed.write("stop\n")
    feed.flush()
    wait_for(lambda: "Ticket cp2-" in out.getvalue(), timeout=20, what="the ticket shown")
    feed.write("ticket\nquit\n")
    feed.flush()
    t.join(10)
    text = out.getvalue()
    assert not t.is_alive() and got["code"] == 0, text + err.getvalue()
    assert "AVAILABLE" in text and "Bay cp3" in text  # the list
    assert "invalid choice: 'bogus'" in text            # a bad line is said, and the prompt goes on
    assert text.count("Ticket cp2-") == 2               # as it came, and again by `ticket`
