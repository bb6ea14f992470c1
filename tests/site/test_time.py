"""Site time from the leaders' stamps: never backwards, continuous across terms, leases restarted by a new leader."""

from __future__ import annotations

from typing import Any

from firmware.site import Context, member_command


def test_within_a_term_time_never_goes_backwards(site: Any) -> None:
    site.online("cp1")
    now = site.m.state.now
    site.tick(-5000)
    site.member("cp1", "renew", cp="cp1")
    assert site.m.state.now == now
    site.tick(7000)
    site.member("cp1", "renew", cp="cp1")
    assert site.m.state.now == now + 2000


def test_a_new_leader_continues_site_time_and_restarts_every_running_lease(site: Any) -> None:
    site.online("cp1", "cp2")
    site.charging("cp1", "D1")
    lease = site.setup.params.site_lease_ms
    site.tick(lease - 10)  # cp1's lease has 10 ms left in the old leader's count
    site.member("cp2", "renew", cp="cp2")
    before = site.m.state.now
    site.new_leader("cp2", clock=42)  # another clock: its numbers mean nothing next to the old one's
    site.member("cp2", "report", cp="cp2", plugged=False, drawn_a=0)
    assert site.m.state.now == before and site.m.state.office == (2, "cp2")
    assert site.m.state.budget.allowances["cp1"].lease_until == before + lease
    site.tick(lease - 1)
    site.member("cp2", "renew", cp="cp2")
    assert site.grant("cp1") == 32 and site.cp_view("cp1")["lease"] == "held"


def test_a_command_of_an_older_office_happens_at_the_current_time(site: Any) -> None:
    site.online("cp1")
    site.new_leader("cp3", clock=10_000)
    site.member("cp1", "renew", cp="cp1")
    now = site.m.state.now
    recovered = Context("cp1", True, (1, "cp1"), 10**9)  # a value the new leader found and proposed again
    assert b'"ok":true' in site.m.apply(member_command("renew", {"cp": "cp1"}), recovered)
    assert site.m.state.now == now and site.m.state.office == (2, "cp3")
    assert site.m.state.budget.allowances["cp1"].lease_until == now + site.setup.params.site_lease_ms


def test_a_refused_command_of_a_new_office_starts_no_term(site: Any) -> None:
    site.online("cp1")
    site.new_leader("cp2", clock=5)
    assert site.member("cp1", "clear_fault", cp="cp1")["error"] == "no_fault"
    assert site.m.state.office == (1, "cp1")


def test_a_bad_context_is_an_internal_error_that_changes_nothing(site: Any) -> None:
    site.online("cp1")
    before = site.m.snapshot()
    result = site.m.apply(member_command("renew", {"cp": "cp1"}), Context("cp1", True, (1, "cp1"), -1))
    assert b'"error":"internal"' in result and site.m.snapshot() == before
