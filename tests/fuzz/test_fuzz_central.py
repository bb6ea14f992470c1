"""Fuzz Central's decoder and view: any bytes on any topic it reads decode or are a BadMessage, and the view
folds whatever decodes without raising."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from central_broker.view import BadMessage, View, decode

TOPICS = st.sampled_from(["evnet/demo/cp/cp1/status", "evnet/demo/cp/cp1/telemetry", "evnet/demo/cp/cp1/monitor",
                          "evnet/demo/state", "evnet/demo/request", "evnet/demo/reply/D01", "evnet/x/cp/y/z",
                          "evnet/demo/reply/bad id"])
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=30)
JSONS = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(["v", "cp", "status", "fault", "location", "price_eur_kwh", "ts", "session", "driver", "power_kw",
                     "current_a", "final", "ticket", "session_id", "kwh", "cost_eur", "eur", "slot", "limit_a",
                     "charge_points", "tickets", "reservations", "expires_ms", "client", "req", "command", "op",
                     "args", "by", "result", "event", "site", "grant_a", "tickets_waiting", "at", "cp1"]),
    inner, max_size=8), max_leaves=30)


def _check(view: View, topic: str, payload: bytes) -> None:
    try:
        msg = decode("evnet", topic, payload)
    except BadMessage as exc:
        assert exc.reason
        return
    if msg is not None:
        view.apply(msg, 1.0)
        view.changed_since(0)


@settings(max_examples=400, deadline=None)
@given(TOPICS, st.binary(max_size=300))
def test_any_bytes_decode_or_are_a_bad_message(topic: str, payload: bytes) -> None:
    _check(View(), topic, payload)


@settings(max_examples=600, deadline=None)
@given(st.lists(st.tuples(TOPICS, JSONS), max_size=6))
def test_any_json_objects_fold_without_raising(messages: list) -> None:
    view = View()
    for topic, body in messages:
        payload = json.dumps({"v": 1, **body} if isinstance(body, dict) else body).encode()
        _check(view, topic, payload)
