"""The bridge's parts alone: which grant its lease keeper believes, until when, and when a lower one may be
acknowledged; what the bridge does with answers it did not wait for, or that say the site does not know it yet."""

from __future__ import annotations

from typing import Any

from evnet.logs import event_logger
from firmware.chargepoint import Bridge, BridgeSettings, ConfirmStart, Grant, Propose, StopSession, Tag
from firmware.chargepoint.grants import LeaseKeeper
from firmware.engine.core import SessionOpened
from hal.meter.reading import MeterReading

SETTINGS = BridgeSettings(cp="cp1", price_eur_kwh=0.3, max_current_a=32, fallback_a=6, lease_s=10)


def view(amps: float, seq: int, lease_ms: int = 10_000) -> dict[str, Any]:
    return {"ok": True, "grant_a": amps, "grant_seq": seq, "lease_ms": lease_ms, "fallback_a": 6.0,
            "limit_reason": "site_share", "target_a": amps}


def keeper() -> LeaseKeeper:
    return LeaseKeeper(SETTINGS, event_logger("test", cp="cp1"))


def test_a_lease_ends_at_the_latest_renewals_sending_plus_its_length_and_never_moves_back() -> None:
    k = keeper()
    assert k.renewed(100.0, view(16, 1), now=100.5) == [Grant(16, 110.0, "site_share")]
    assert k.renewed(105.0, view(16, 1), now=106.0) == [Grant(16, 115.0, "site_share")]
    assert k.renewed(103.0, view(16, 1), now=106.5) == []  # an older renewal answered last: the lease stays
    assert k.until == 115.0


def test_an_older_grant_heard_after_a_newer_one_is_ignored() -> None:
    k = keeper()
    k.renewed(100.0, view(20, 5), now=100.1)
    assert k.learned(k.parse(view(32, 4), "report"), 101.0) == []
    assert k.grant.grant_seq == 5 and k.applied == Grant(20, 110.0, "site_share")


def test_an_ack_waits_for_a_reading_taken_after_the_engine_had_the_lower_grant() -> None:
    k = keeper()
    k.renewed(100.0, view(32, 1), now=100.1)
    assert k.learned(k.parse(view(16, 2), "view"), 101.0) == [Grant(16, 110.0, "site_share")]
    assert k.owed_ack
    assert k.ack_due(drawn_a=30.0, now=101.5) is None  # may have been taken before the engine applied 16 A
    assert k.ack_due(drawn_a=15.0, now=102.5) == 2  # it came down: it follows
    assert k.ack_due(drawn_a=15.0, now=103.5) is None  # in flight: once
    k.acked(2, view(16, 2) | {"released": True}, 102.0)
    assert not k.owed_ack


def test_an_ev_that_drew_little_all_along_is_acknowledged_only_after_its_reaction_time() -> None:
    """A raise to 32 A then a lowering to 16 A within the EV's reaction time: the EV, still at 10 A, may yet take
    up the 32 A duty it saw first. Acknowledging at once let the site hand the old grant to others while it was
    still owed (the site simulation's seed 29: 85 A on an 80 A fuse)."""
    k = keeper()
    k.renewed(100.0, view(32, 1), now=100.1)
    k.learned(k.parse(view(16, 2), "view"), 101.0)
    assert k.ack_due(drawn_a=10.0, now=101.5) is None
    assert k.ack_due(drawn_a=10.0, now=102.5) is None  # below the new grant, but no sign it follows it
    assert k.ack_due(drawn_a=10.0, now=105.9) is None
    assert k.ack_due(drawn_a=10.0, now=106.0) == 2  # its reaction time is over: the old duty no longer counts


def test_a_raise_owes_no_ack_but_a_lowering_seen_only_through_a_later_grant_does() -> None:
    k = keeper()
    k.renewed(100.0, view(16, 1), now=100.1)
    k.learned(k.parse(view(24, 2), "view"), 100.2)
    assert not k.owed_ack
    k.learned(k.parse(view(20, 4), "view"), 100.3)  # seq 3 (lower still) was never seen: 20 < 24 all the same
    assert k.owed_ack


def test_no_grant_reaches_the_engine_without_a_lease() -> None:
    k = keeper()
    assert k.learned(k.parse(view(32, 3), "view"), 100.0) == []  # a grant heard, no lease held: the fallback
    assert k.renewed(100.0, view(32, 3), now=110.0) == [] and k.late == 1


def test_answers_the_bridge_did_not_wait_for_change_nothing() -> None:
    bridge = Bridge(SETTINGS)
    (register,) = bridge.start(0.0)
    assert bridge.site_result(Tag("renew", 99), view(32, 1), 0.1) == []
    assert bridge.site_result(register.tag, ["not", "a", "dict"], 0.1) == []  # type: ignore[arg-type]
    assert not bridge.registered and bridge.lease.grant is None


def test_a_start_answered_not_registered_is_sent_again_not_taken_for_a_refusal() -> None:
    bridge = Bridge(BridgeSettings(cp="cp1", price_eur_kwh=0.3, max_current_a=32, fallback_a=6, lease_s=10,
                                   local_drivers=("owner",)))
    bridge.start(0.0)  # its registration gets no answer: the site is not there yet
    bridge.button(0.0)
    first = MeterReading((230.0,) * 3, (0.0,) * 3, 0.0, 100.0, 0.0)
    start, confirm = bridge.engine_action(SessionOpened("cp1-s1", "owner", first), 0.1)
    assert isinstance(start, Propose) and confirm == ConfirmStart("cp1-s1")  # nobody answers: the local list
    out = bridge.site_result(start.tag, {"error": "not_registered", "reason": "cp1 has not registered"}, 0.2)
    assert not [o for o in out if isinstance(o, StopSession)]
    later = bridge.tick(bridge.sessions.by_id["cp1-s1"].next_try)
    assert [p.tag.op for p in later if isinstance(p, Propose)].count("start_session") == 1
