"""The policy (split.py) alone: equal share, caps, fallbacks, shortage by priority and turns, draw hysteresis."""

from __future__ import annotations

from firmware.site.params import SiteParams
from firmware.site.split import Share, Usage, Want, follow_usage, split

ROTATE = 900_000


def want(cp: str, cap: int = 320, fallback: int = 0, priority: int = 0, active: bool = False,
         turn_since: int | None = None, idle: str | None = None, cap_reason: str = "cp_max") -> Want:
    return Want(cp, idle, cap, cap_reason, fallback, priority, active, turn_since)


def targets(shares: dict[str, Share]) -> dict[str, tuple[int, str]]:
    return {cp: (s.target_da, s.reason) for cp, s in sorted(shares.items())}


def test_equal_shares() -> None:
    shares = split([want("a"), want("b"), want("c")], 630, 0, ROTATE)
    assert targets(shares) == {"a": (210, "site_share"), "b": (210, "site_share"), "c": (210, "site_share")}


def test_a_capped_point_leaves_the_rest_to_the_others_and_says_why() -> None:
    shares = split([want("a", cap=100, cap_reason="ev_max"), want("b"), want("c", idle="no_ev")], 630, 0, ROTATE)
    assert targets(shares) == {"a": (100, "ev_max"), "b": (320, "cp_max"), "c": (0, "no_ev")}


def test_fallbacks_are_reserved_even_for_idle_points() -> None:
    shares = split([want("a"), want("b", fallback=60, idle="no_ev")], 300, 0, ROTATE)
    assert shares["a"].target_da == 240


def test_an_ev_with_a_fallback_of_6_a_always_charges_and_the_others_share_the_rest() -> None:
    wants = [want("a", fallback=60), want("b"), want("c")]
    shares = split(wants, 130, 0, ROTATE)  # 7 A beyond a's fallback: room for one more EV, not two
    assert shares["a"].target_da == 65 and shares["a"].active
    assert sorted(s.target_da for cp, s in shares.items() if cp != "a") == [0, 65]
    alone = split([want("a", fallback=60), want("b"), want("c")], 110, 0, ROTATE)  # 5 A beyond: no one else
    assert alone["a"].target_da == 110 and not alone["b"].active and not alone["c"].active


def test_short_current_pauses_by_priority() -> None:
    wants = [want("a"), want("b", priority=1), want("c")]
    shares = split(wants, 130, 0, ROTATE)
    assert shares["b"].target_da == 65 and shares["b"].reason == "site_share"
    active = [cp for cp, s in shares.items() if s.active]
    assert len(active) == 2 and "b" in active
    paused = [cp for cp, s in shares.items() if not s.active]
    assert [shares[cp].reason for cp in paused] == ["paused_short"]


def test_a_newcomer_waits_while_the_turns_of_equals_run_then_takes_its_turn() -> None:
    charging = want("a", active=True, turn_since=0)
    newcomer = want("b")
    first = split([charging, newcomer], 100, 1000, ROTATE)
    assert first["a"].target_da == 100 and first["b"] == Share(0, "paused_short", False, 1000)
    later = split([want("a", active=True, turn_since=0), want("b", turn_since=1000)], 100, ROTATE, ROTATE)
    assert later["b"].active and later["b"].turn_since == ROTATE and later["b"].target_da == 100
    assert not later["a"].active and later["a"].turn_since == ROTATE and later["a"].reason == "paused_short"


def test_a_higher_priority_newcomer_does_not_wait_for_a_turn() -> None:
    shares = split([want("a", active=True, turn_since=0), want("b", priority=2)], 100, 1000, ROTATE)
    assert shares["b"].active and not shares["a"].active


def test_the_longest_waiting_goes_first() -> None:
    wants = [want("a", active=True, turn_since=0), want("b", turn_since=500), want("c", turn_since=100)]
    shares = split(wants, 60, ROTATE + 1, ROTATE)
    assert shares["c"].active and not shares["b"].active and not shares["a"].active


def test_never_everyone_paused_while_one_ev_can_have_6_a() -> None:
    shares = split([want(cp) for cp in "abcdefg"], 60, 0, ROTATE)
    assert sum(s.active for s in shares.values()) == 1
    assert split([want(cp) for cp in "abc"], 59, 0, ROTATE)["a"].target_da == 0


def test_an_ev_that_draws_less_gives_back_only_after_a_while_and_takes_back_at_once() -> None:
    p = SiteParams()
    u = follow_usage(Usage(), 320, 100, 0, p)
    assert u == Usage(None, 0)
    u = follow_usage(u, 320, 100, p.give_back_after_ms - 1, p)
    assert u.cap_da is None
    u = follow_usage(u, 320, 100, p.give_back_after_ms, p)
    assert u.cap_da == 100 + p.give_back_margin_da
    steady = follow_usage(u, u.cap_da, 100, p.give_back_after_ms * 5, p)
    assert steady.cap_da == u.cap_da  # the same draw keeps the same grant: no flapping
    assert follow_usage(u, u.cap_da, u.cap_da - p.take_back_margin_da, p.give_back_after_ms + 1, p) == Usage()


def test_a_short_dip_gives_nothing_back() -> None:
    p = SiteParams()
    u = follow_usage(Usage(), 320, 100, 0, p)
    u = follow_usage(u, 320, 315, 1000, p)
    assert u == Usage(None, None)
    u = follow_usage(u, 320, 100, 2000, p)
    assert follow_usage(u, 320, 100, 2000 + p.give_back_after_ms - 1, p).cap_da is None
