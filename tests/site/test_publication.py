"""The leader's publication of the site's state: on change, at most every min_interval, the last change always."""

from __future__ import annotations

import json

import pytest

from firmware.site.publication import StatePublisher


def test_the_first_state_goes_out_at_once_with_its_slot_and_an_unchanged_one_never():
    pub = StatePublisher(min_interval=1.0)
    payload = pub.offer({"limit_a": 63, "charge_points": {}}, 5, now=10.0)
    assert json.loads(payload) == {"v": 1, "slot": 5, "limit_a": 63, "charge_points": {}}
    assert pub.offer({"limit_a": 63, "charge_points": {}}, 9, now=20.0) is None  # only the slot moved
    assert pub.due() is None


def test_changes_within_the_interval_are_held_and_the_last_one_is_published_when_it_ends():
    pub = StatePublisher(min_interval=1.0)
    assert pub.offer({"x": 1}, 1, now=0.0) is not None
    assert pub.offer({"x": 2}, 2, now=0.3) is None and pub.due() == 1.0
    assert pub.offer({"x": 3}, 3, now=0.6) is None and pub.due() == 1.0
    assert pub.poll(0.99) is None
    assert json.loads(pub.poll(1.0)) == {"v": 1, "slot": 3, "x": 3}  # the last change, not the first
    assert pub.poll(5.0) is None and pub.due() is None
    assert json.loads(pub.offer({"x": 4}, 4, now=5.0))["x"] == 4  # the interval is over: at once


def test_a_change_undone_before_it_went_out_is_not_published():
    pub = StatePublisher(min_interval=1.0)
    pub.offer({"x": 1}, 1, now=0.0)
    assert pub.offer({"x": 2}, 2, now=0.5) is None
    assert pub.offer({"x": 1}, 3, now=0.7) is None and pub.poll(2.0) is None


def test_a_new_leader_publishes_at_once_what_its_predecessor_may_have_published():
    pub = StatePublisher(min_interval=1.0)
    pub.offer({"x": 1}, 1, now=0.0)
    pub.reset()
    assert json.loads(pub.offer({"x": 1}, 7, now=0.1))["slot"] == 7


def test_a_negative_interval_is_refused():
    with pytest.raises(ValueError, match="min_interval"):
        StatePublisher(-1)
