"""Fuzz the driver app's door (Central's decoder, central_broker/view/messages.py, on the driver's topics) and
its view: any bytes on any of its topics decode or are a `BadMessage`, never another exception; the view drops
and counts what fails and stays sound (its session and list can always be shown)."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from central_broker.driver.view import DriverView
from central_broker.view.messages import BadMessage, decode

TOPICS = ["evnet/s1/state", "evnet/s1/cp/cp1/status", "evnet/s1/cp/cp2/telemetry", "evnet/s1/cp/x/y",
          "evnet/s1/cp/CP/status", "evnet/s2/state", "other"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats() | st.text(max_size=30),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=5),
    max_leaves=25)
# Near-valid bodies: the real keys with arbitrary values, so the checks past the first are reached.
KEYS = ["cp", "status", "location", "price_eur_kwh", "fault", "session", "driver", "power_kw", "energy_kwh",
        "cost_eur", "current_a", "limit_a", "limit_reason", "final", "ticket", "slot", "site", "now_ms",
        "charge_points", "sessions", "waiting", "reservations", "session_id", "kwh", "reason", "expires_ms"]
near = st.fixed_dictionaries({"v": st.just(1)}, optional={k: json_values for k in KEYS})
payloads = st.binary(max_size=300) | json_values.map(lambda v: json.dumps(v).encode()) | near.map(
    lambda v: json.dumps(v).encode())


@settings(max_examples=200, deadline=None)
@given(topic=st.sampled_from(TOPICS), payload=payloads)
def test_decode_gives_a_message_none_or_bad_message(topic: str, payload: bytes) -> None:
    try:
        decode("evnet", topic, payload)
    except BadMessage as exc:
        assert exc.reason


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(TOPICS), payloads), max_size=8),
       st.lists(st.dictionaries(st.sampled_from(["cp", "redirected_from", "redirect_reason", "withdrawn"]),
                                json_values, max_size=4), max_size=3))
def test_the_view_survives_any_sequence_of_messages_and_answers(messages, answers) -> None:
    v = DriverView("D1", "s1")
    for i, (topic, payload) in enumerate(messages):
        v.received(topic, payload, float(i))
        if i < len(answers):
            v.answered("request_charge" if i % 2 == 0 else "stop_charge", answers[i])
        v.points()
        v.session(float(i))
