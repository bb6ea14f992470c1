"""The view: messages folded into what the dashboards show (pure: no broker, time passed in)."""

from __future__ import annotations

import json

import pytest

from central_broker.view import BadMessage, Known, OperatorAction, View, decode


def msg(topic: str, body: dict) -> bytes:
    return json.dumps({"v": 1, **body}).encode()


def feed(view: View, topic: str, body: dict, now: float = 100.0):
    return view.apply(decode("evnet", f"evnet/{topic}", msg(topic, body)), now)


def cp(view: View, site: str, cp_id: str) -> dict:
    return view.cps[(site, cp_id)].to_json()


STATUS = {"cp": "cp1", "location": "Bay 1", "price_eur_kwh": 0.3, "max_current_a": 32.0, "status": "AVAILABLE",
          "fault": None, "ts": 10.0}


def test_a_registered_point_is_disconnected_until_its_own_status_speaks() -> None:
    view = View()
    view.load([Known("demo", "cp1", "Bay 1", 0.3, 32.0, "CHARGING", 5.0)])
    assert cp(view, "demo", "cp1")["status"] == "DISCONNECTED" and cp(view, "demo", "cp1")["colour"] == "grey"
    feed(view, "demo/state", {"slot": 3, "site": "demo", "limit_a": 63, "drawing_a": 0, "tickets_waiting": 0,
                              "charge_points": {"cp1": {"status": "AVAILABLE", "location": "Bay 1",
                                                        "price_eur_kwh": 0.3, "grant_a": 0}}})
    assert cp(view, "demo", "cp1")["status"] == "DISCONNECTED"  # the site's word is not the point's
    feed(view, "demo/cp/cp1/status", STATUS, now=101.0)
    row = cp(view, "demo", "cp1")
    assert (row["status"], row["colour"], row["location"], row["price_eur_kwh"], row["last_seen"]) == \
        ("AVAILABLE", "green", "Bay 1", 0.3, 101.0)


@pytest.mark.parametrize(("status", "fault", "colour", "legend"), [
    ("OUT_OF_ORDER", None, "orange", "Out of Order"),
    ("FAULTED", "meter", "red", "meter"),
    ("DISCONNECTED", None, "grey", "Disconnected"),
    ("CHARGING", None, "green", "Charging"),
])
def test_each_status_has_its_colour_and_legend(status: str, fault: str | None, colour: str, legend: str) -> None:
    view = View()
    feed(view, "demo/cp/cp1/status", {**STATUS, "status": status, "fault": fault})
    row = cp(view, "demo", "cp1")
    assert (row["status"], row["colour"], row["legend"], row["fault"]) == (status, colour, legend, fault)


def test_charging_shows_live_figures_and_why_limited_and_the_site_sum_against_its_limit() -> None:
    view = View()
    feed(view, "demo/state", {"slot": 5, "site": "demo", "limit_a": 63, "drawing_a": 21, "tickets_waiting": 0,
                              "charge_points": {"cp1": {"status": "CHARGING", "grant_a": 21,
                                                        "limit_reason": "site_share", "driver": "D1"}}})
    feed(view, "demo/cp/cp1/status", {**STATUS, "status": "CHARGING"})
    feed(view, "demo/cp/cp2/status", {**STATUS, "cp": "cp2", "status": "CHARGING"})
    tele = {"session": "cp1-abc", "driver": "D1", "power_kw": 14.5, "energy_kwh": 1.2, "cost_eur": 0.36,
            "current_a": 21.0, "limit_a": 21.0, "ts": 11.0}
    feed(view, "demo/cp/cp1/telemetry", {"cp": "cp1", **tele})
    feed(view, "demo/cp/cp2/telemetry", {"cp": "cp2", **tele, "session": "cp2-x", "current_a": 20.5})
    row = cp(view, "demo", "cp1")
    assert (row["power_kw"], row["energy_kwh"], row["cost_eur"], row["driver"], row["limit_reason"]) == \
        (14.5, 1.2, 0.36, "D1", "site_share")
    site = view.changed_since(0)["sites"][0]
    assert (site["sum_a"], site["limit_a"], site["drawing_a"]) == (41.5, 63.0, 21.0)
    feed(view, "demo/cp/cp1/status", {**STATUS, "status": "AVAILABLE"})
    assert cp(view, "demo", "cp1")["power_kw"] is None  # no live figures once it stops charging


def test_reserved_comes_from_the_site_and_outlines_green() -> None:
    view = View()
    feed(view, "demo/cp/cp2/status", {**STATUS, "cp": "cp2"})
    feed(view, "demo/state", {"slot": 1, "site": "demo", "limit_a": 63, "drawing_a": 0, "tickets_waiting": 0,
                              "reservations": [{"cp": "cp2", "driver": "D2", "expires_ms": 9000}],
                              "charge_points": {"cp2": {"status": "RESERVED", "grant_a": 0}}})
    row = cp(view, "demo", "cp2")
    assert (row["status"], row["colour"], row["reserved_by"], row["reserved_until_ms"]) == \
        ("RESERVED", "green-outline", "D2", 9000)


def test_the_log_says_who_asked_for_what_and_the_redirect() -> None:
    view = View()
    feed(view, "demo/request", {"client": "D01", "req": 7, "to": None,
                                "command": {"op": "request_charge", "args": {"at": "cp2"}, "by": "D01", "seq": 1,
                                            "site": "demo", "sig": "x"}})
    feed(view, "demo/request", {"client": "D01", "req": 7, "to": None,  # a retry: one line
                                "command": {"op": "request_charge", "args": {"at": "cp2"}, "by": "D01", "seq": 1,
                                            "site": "demo", "sig": "x"}})
    feed(view, "demo/reply/D01", {"client": "D01", "req": 7, "leader": "cp1", "stale": False,
                                  "result": {"ok": True, "cp": "cp3", "redirected_from": "cp2", "why": "cp_busy"}})
    kinds = [(e["kind"], e["text"]) for e in view.events]
    assert kinds == [("request", "D01 asked request_charge at=cp2"),
                     ("redirect", "D01 asked request_charge at=cp2 → redirected from cp2 to cp3 (cp_busy)")]


def test_tickets_from_the_site_are_handed_out_to_copy_and_the_engines_to_keep() -> None:
    view = View()
    ticket = {"session": "cp1-abc", "cp": "cp1", "driver": "D1", "start_ms": 1, "end_ms": 2, "energy_wh": 2500,
              "kwh": 2.5, "cost_cents": 75, "eur": 0.75, "reason": "unplugged"}
    changes = feed(view, "demo/state", {"slot": 9, "site": "demo", "limit_a": 63, "drawing_a": 0,
                                        "tickets_waiting": 1, "charge_points": {}, "tickets": [ticket]})
    assert [(t.session, t.kwh, t.eur) for t in changes.site_tickets] == [("cp1-abc", 2.5, 0.75)]
    final = {"cp": "cp1", "session": "cp1-abc", "final": True, "ts": 3.0,
             "ticket": {"cp": "cp1", "session_id": "cp1-abc", "driver": "D1", "kwh": 2.5, "cost_eur": 0.75,
                        "reason": "unplugged"}}
    changes = feed(view, "demo/cp/cp1/telemetry", final)
    assert [t.session for t in changes.engine_tickets] == ["cp1-abc"]
    assert view.events[-1]["kind"] == "ticket" and "2.500 kWh" in view.events[-1]["text"]


def test_an_older_state_never_replaces_a_newer_one() -> None:
    view = View()
    state = {"site": "demo", "drawing_a": 0, "tickets_waiting": 0, "charge_points": {}}
    feed(view, "demo/state", {**state, "slot": 10, "limit_a": 50})
    feed(view, "demo/state", {**state, "slot": 9, "limit_a": 63})
    assert view.sites["demo"].limit_a == 50


def test_operator_actions_and_their_results_go_in_the_log() -> None:
    view = View()
    view.apply(OperatorAction("demo", "stop", {"cp": "cp2"}, True, "cps=['cp2']"), 5.0)
    view.apply(OperatorAction("demo", "limit", {"limit_a": 10}, False, "below_fallbacks"), 6.0)
    assert [(e["kind"], e["cp"], e["t"]) for e in view.events] == [("operator", "cp2", 5.0),
                                                                   ("operator_refused", None, 6.0)]


def test_readers_get_only_what_changed_since_their_cursor() -> None:
    view = View()
    feed(view, "demo/cp/cp1/status", STATUS)
    cursor = view.changed_since(0)["version"]
    assert view.changed_since(cursor)["cps"] == []
    feed(view, "demo/cp/cp2/status", {**STATUS, "cp": "cp2"})
    assert [c["cp"] for c in view.changed_since(cursor)["cps"]] == ["cp2"]


@pytest.mark.parametrize(("topic", "payload", "reason"), [
    ("evnet/demo/cp/cp1/status", b"not json", "not_json"),
    ("evnet/demo/cp/cp1/status", b'{"v":1,"status":"ON_FIRE"}', "bad_status"),
    ("evnet/demo/cp/cp1/status", b'{"v":1,"cp":"cp9","status":"AVAILABLE"}', "wrong_cp"),
    ("evnet/demo/cp/cp1/telemetry", b'{"v":1,"power_kw":1e999}', "bad_field"),  # inf
    ("evnet/demo/cp/cp1/telemetry", b'{"v":1,"power_kw":"lots"}', "bad_field"),
    ("evnet/demo/cp/CP!/status", b'{"v":1,"status":"AVAILABLE"}', "bad_topic"),
    ("evnet/demo/cp/cp1/status", b'{"v":1,"status":"AVAILABLE","location":"' + b"x" * 5000 + b'"}', "too_big"),
    ("evnet/demo/state", b'{"v":1,"slot":-1,"limit_a":63,"charge_points":{}}', "bad_field"),
])
def test_a_bad_message_is_a_bad_message_with_its_reason(topic: str, payload: bytes, reason: str) -> None:
    with pytest.raises(BadMessage) as exc:
        decode("evnet", topic, payload)
    assert exc.value.reason == reason


def test_topics_central_does_not_show_and_binary_client_frames_are_nothing() -> None:
    assert decode("evnet", "evnet/demo/paxos/cp1", b"\x00\x01") is None
    assert decode("evnet", "evnet/demo/request", b"\x02binary") is None
    assert decode("evnet", "other/demo/state", b"{}") is None
