"""The OCPP core's conversation, both versions, on its real parts: the boot on each connection, status and
heartbeats, one call in flight, the offline queue's retries and transaction ids, tokens presented here."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from firmware.ocpp import core as core_module
from firmware.ocpp.events import Connector, LinkDown, LinkUp, LocalStart, TokenPresented, TxEnded, TxStarted

from .core_rig import HEARTBEAT_S, VERSIONS, Rig, call_of, calls_in, proposals, sample

CORE_TIMEOUT_HALF = core_module.CALL_TIMEOUT_S / 2
TX_ACTIONS = {"1.6": ("StartTransaction", "MeterValues", "StopTransaction"),
              "2.0.1": ("TransactionEvent", "TransactionEvent", "TransactionEvent")}


@pytest.fixture(params=VERSIONS)
def rig(request: pytest.FixtureRequest, tmp_path: Path) -> Rig:
    return Rig(request.param, tmp_path)


def boot_rejected(rig: Rig, status: str, interval: int) -> dict[str, object]:
    return {"status": status, "currentTime": "2026-05-01T00:00:00Z", "interval": interval}


def session(rig: Rig, n: int = 1, token: str = "card-1") -> tuple[TxStarted, TxEnded]:
    start = rig.now
    return (TxStarted(f"s{n}", token, sample(start, 1000)),
            TxEnded(f"s{n}", sample(start + 600, 4000, 0), "unplugged"))


# -- the boot ----------------------------------------------------------------------------------------------


def test_link_up_sends_the_boot_and_nothing_else_until_it_is_accepted(rig: Rig) -> None:
    rig.handle(TxStarted("s1", "card-1", sample(rig.now)))  # queued while offline
    boot = rig.up()
    assert boot.payload == rig.core.d.boot()[1]
    # events while the boot is not answered: nothing goes out
    assert calls_in(rig.handle(Connector("Preparing"))) == []
    assert calls_in(rig.tick(CORE_TIMEOUT_HALF)) == []
    assert calls_in(rig.handle(TokenPresented("card-2"))) == []


@pytest.mark.parametrize("status", ["Pending", "Rejected"])
def test_a_boot_not_accepted_is_sent_again_after_its_interval(rig: Rig, status: str) -> None:
    out = rig.answer(rig.up(), boot_rejected(rig, status, 20))
    assert out == []
    assert rig.core.next_deadline() == rig.now + 20
    assert calls_in(rig.tick(19.9)) == []
    again = call_of(rig.tick(0.1))
    assert again.action == "BootNotification"
    # without an interval: BOOT_RETRY_S
    assert rig.answer(again, boot_rejected(rig, status, 0)) == []
    assert calls_in(rig.tick(core_module.BOOT_RETRY_S - 0.1)) == []
    assert call_of(rig.tick(0.1)).action == "BootNotification"


def test_a_boot_unanswered_or_refused_is_sent_again(rig: Rig) -> None:
    boot = rig.up()
    assert calls_in(rig.tick(core_module.CALL_TIMEOUT_S - 0.1)) == []
    assert calls_in(rig.tick(0.1)) == []          # timed out: the next one after BOOT_RETRY_S
    boot = call_of(rig.tick(core_module.BOOT_RETRY_S))
    assert rig.error(boot) == []
    assert call_of(rig.tick(core_module.BOOT_RETRY_S)).action == "BootNotification"


def test_accepted_then_status_then_the_queue_then_heartbeats(rig: Rig) -> None:
    start, _ = session(rig)
    rig.handle(start)
    rig.handle(Connector("Charging"))
    status = call_of(rig.answer(rig.up()))
    assert status.action == "StatusNotification"
    assert rig.core.heartbeat_s == HEARTBEAT_S
    if rig.version == "1.6":
        assert status.payload["status"] == "Charging"
    else:
        assert status.payload["connectorStatus"] == "Occupied"
    head = call_of(rig.answer(status))
    assert head.action == TX_ACTIONS[rig.version][0]
    assert calls_in(rig.answer(head)) == []
    booted_at = rig.now
    assert rig.core.next_deadline() == booted_at + HEARTBEAT_S
    assert calls_in(rig.tick(HEARTBEAT_S - 1)) == []
    beat = call_of(rig.tick(1))
    assert beat.action == "Heartbeat"
    assert rig.answer(beat) == []
    assert rig.core.next_deadline() == rig.now + HEARTBEAT_S


def test_every_connection_boots_again(rig: Rig) -> None:
    rig.drain(rig.boot())
    rig.handle(LinkDown())
    assert not rig.core.accepted
    rig.handle(Connector("Preparing"))  # while offline: sent once booted again
    status = call_of(rig.answer(rig.up()))
    assert status.action == "StatusNotification"
    assert calls_in(rig.answer(status)) == []


# -- one call in flight --------------------------------------------------------------------------------------


def test_one_call_in_flight_and_an_answer_for_another_id_is_dropped(rig: Rig) -> None:
    rig.drain(rig.boot())
    first = call_of(rig.handle(Connector("Preparing")))
    assert calls_in(rig.handle(Connector("Charging"))) == []
    assert calls_in(rig.handle(TxStarted("s1", "card-1", sample(rig.now)))) == []
    # an answer for an id not in flight: counted, dropped, the call still waits
    bad = rig.core.bad_frames
    assert rig.frame(f'[3,"not-{first.uid}",{{}}]') == []
    assert rig.core.bad_frames == bad + 1
    assert rig.core.action_of(first.uid) == "StatusNotification"
    second = call_of(rig.answer(first))
    assert second.action == "StatusNotification"
    third = call_of(rig.answer(second))
    assert third.action == TX_ACTIONS[rig.version][0]
    assert calls_in(rig.answer(third)) == []


def queue_a_session(rig: Rig) -> None:
    start, end = session(rig)
    rig.handle(start)
    rig.handle(end)


def test_a_refused_transaction_message_is_retried_after_the_interval_times_attempts(rig: Rig) -> None:
    retry = float(rig.settings.value("TransactionMessageRetryInterval"))
    queue_a_session(rig)
    head = call_of(rig.boot())
    assert head.action == TX_ACTIONS[rig.version][0]
    assert rig.error(head) == []
    assert rig.outbox.head().attempts == 1
    assert calls_in(rig.tick(retry - 0.5)) == []
    again = call_of(rig.tick(0.5))
    assert again.payload == head.payload and again.uid != head.uid
    # a timeout counts as an attempt too: the next after 2 × the interval
    assert calls_in(rig.tick(core_module.CALL_TIMEOUT_S)) == []
    assert rig.outbox.head().attempts == 2
    assert calls_in(rig.tick(2 * retry - 0.5)) == []
    assert call_of(rig.tick(0.5)).payload == head.payload


def test_a_transaction_message_is_given_up_after_its_attempts_durably_and_logged(
        rig: Rig, caplog: pytest.LogCaptureFixture) -> None:
    attempts = int(rig.settings.value("TransactionMessageAttempts"))
    queue_a_session(rig)
    call = call_of(rig.boot())
    for n in range(1, attempts):
        assert rig.error(call) == []
        call = call_of(rig.tick(float(rig.settings.value("TransactionMessageRetryInterval")) * n))
    with caplog.at_level(logging.WARNING):
        out = rig.error(call)
    assert "ocpp.message_given_up" in caplog.text and "outbox.given_up" in caplog.text
    # the next entry goes at once; after a restart, the given-up one stays given up
    assert call_of(out).action == TX_ACTIONS[rig.version][2]
    assert rig.outbox.stats().given_up == 1
    rig = rig.restart()
    assert rig.outbox.stats().given_up == 1
    assert [c.action for c in rig.drain(rig.boot())] == [TX_ACTIONS[rig.version][2]]


def test_the_link_going_down_is_not_an_attempt(rig: Rig) -> None:
    queue_a_session(rig)
    head = call_of(rig.boot())
    rig.handle(LinkDown())
    assert rig.outbox.head().attempts == 0
    assert rig.frame(f'[3,"{head.uid}",{{}}]') == []   # its late answer: not ours any more
    assert rig.outbox.head().seq == 1
    again = call_of(rig.boot())
    assert again.payload == head.payload
    assert calls_in(rig.answer(again))[0].action == TX_ACTIONS[rig.version][2]


# -- transactions --------------------------------------------------------------------------------------------


def test_v16_the_csms_transaction_id_reaches_messages_queued_before_it_even_across_a_restart(tmp_path: Path) -> None:
    rig = Rig("1.6", tmp_path)
    rig.handle(TxStarted("s1", "card-1", sample(rig.now, 1000)))
    for n in range(1, 4):  # offline: three periodic meter values, then the end
        rig.handle(Connector("Charging"))
        rig.handle(sample(rig.now + 60 * n, 1000 + 100 * n))
    rig.handle(TxEnded("s1", sample(rig.now + 250, 1400, 0), "remote"))
    start = call_of(rig.boot())
    assert start.action == "StartTransaction" and start.payload["meterStart"] == 1000
    # answered, then the process restarts before anything else is sent
    assert call_of(rig.answer(start, {"transactionId": 4711, "idTagInfo": {"status": "Accepted"}})).action \
        == "MeterValues"
    rig = rig.restart()
    sent = rig.drain(rig.boot(), tx_id=9)
    assert [c.action for c in sent] == ["MeterValues"] * 3 + ["StopTransaction"]
    assert {c.payload["transactionId"] for c in sent} == {4711}
    assert [c.payload["meterValue"][0]["sampledValue"][0]["value"] for c in sent[:3]] == ["1100", "1200", "1300"]
    assert sent[-1].payload["meterStop"] == 1400 and sent[-1].payload["reason"] == "Remote"
    rig.handle(LinkDown())
    assert rig.drain(rig.boot()) == []   # once


def test_v201_seq_no_runs_per_transaction_across_a_restart(tmp_path: Path) -> None:
    rig = Rig("2.0.1", tmp_path)
    rig.handle(TxStarted("s1", "card-1", sample(rig.now, 1000)))
    rig.handle(sample(rig.now + 60, 1100))
    rig = rig.restart()
    rig.handle(sample(rig.now + 120, 1200))
    rig.handle(TxEnded("s1", sample(rig.now + 130, 1250, 0), "ev"))
    rig.handle(TxStarted("s2", "card-2", sample(rig.now + 200, 1250)))
    sent = rig.drain(rig.boot())
    events = [(c.payload["transactionInfo"]["transactionId"], c.payload["seqNo"], c.payload["eventType"]) for c in sent]
    assert events == [("s1", 0, "Started"), ("s1", 1, "Updated"), ("s1", 2, "Updated"), ("s1", 3, "Ended"),
                      ("s2", 0, "Started")]
    assert sent[1].payload["triggerReason"] == "MeterValuePeriodic"


@pytest.mark.parametrize(("reason", "trigger", "stopped"), [
    ("remote", "RemoteStop", "Remote"), ("local", "StopAuthorized", "Local"),
    ("unplugged", "EVDeparted", "EVDisconnected"), ("driver", "StopAuthorized", "Local")])
def test_v201_ends_carry_their_trigger_and_stopped_reason(tmp_path: Path, reason: str, trigger: str,
                                                          stopped: str) -> None:
    rig = Rig("2.0.1", tmp_path)
    rig.handle(TxStarted("s1", "card-1", sample(rig.now)))
    rig.handle(TxEnded("s1", sample(rig.now + 10, 1500, 0), reason))
    started, ended = rig.drain(rig.boot())
    assert (started.payload["eventType"], started.payload["triggerReason"]) == ("Started", "Authorized")
    assert started.payload["idToken"] == {"idToken": "card-1", "type": "Local"}
    assert ended.payload["eventType"] == "Ended"
    assert ended.payload["triggerReason"] == trigger
    assert ended.payload["transactionInfo"]["stoppedReason"] == stopped


# -- tokens ----------------------------------------------------------------------------------------------------


def test_a_token_presented_offline_is_decided_locally(rig: Rig) -> None:
    assert rig.handle(TokenPresented("card-1")) == [LocalStart("card-1")]
    rig.up()  # connected, not booted yet
    assert rig.handle(TokenPresented("card-2")) == [LocalStart("card-2")]


def authorize(rig: Rig, token: str = "card-1") -> tuple[Rig, object]:
    rig.drain(rig.boot())
    call = call_of(rig.handle(TokenPresented(token)))
    assert call.action == "Authorize"
    return rig, call


def test_an_accepted_token_waits_for_its_ev_at_the_site(rig: Rig) -> None:
    _, call = authorize(rig)
    out = rig.answer(call)
    [start] = proposals(out, "remote_start")
    assert start.args == {"cp": "cp1", "token": "card-1", "timeout_s": 120.0}
    assert calls_in(out) == []


def test_an_invalid_token_does_nothing(rig: Rig) -> None:
    _, call = authorize(rig)
    refused = {"idTagInfo": {"status": "Invalid"}} if rig.version == "1.6" else {"idTokenInfo": {"status": "Invalid"}}
    assert rig.answer(call, refused) == []


def test_a_failed_authorize_is_decided_locally(rig: Rig) -> None:
    _, call = authorize(rig)
    assert rig.error(call) == [LocalStart("card-1")]
    call = call_of(rig.handle(TokenPresented("card-2")))
    assert rig.tick(core_module.AUTHORIZE_TIMEOUT_S - 0.1) == []
    assert rig.tick(0.1) == [LocalStart("card-2")]  # a driver at the point waits seconds, not the call timeout



def test_an_authorize_lost_with_the_link_is_decided_locally(rig: Rig) -> None:
    rig.drain(rig.boot())
    call_of(rig.handle(Connector("Preparing")))
    assert calls_in(rig.handle(TokenPresented("card-1"))) == []    # queued behind the status
    assert rig.handle(LinkDown()) == [LocalStart("card-1")]
    _, call = authorize(rig, "card-2")
    assert rig.handle(LinkDown()) == [LocalStart("card-2")]
    rig.handle(LinkUp())
    assert rig.frame(f'[3,"{call.uid}",{{"idTagInfo":{{"status":"Accepted"}}}}]') == []


def test_heartbeats_go_on_while_a_refused_message_waits_for_its_retry(rig: Rig) -> None:
    rig.settings.change_configuration("TransactionMessageRetryInterval", "600")
    queue_a_session(rig)
    head = call_of(rig.boot())
    booted_at = rig.now
    rig.error(head)
    # the link ticks the core only at its next deadline: the heartbeat's, not the retry's
    assert rig.core.next_deadline() == booted_at + HEARTBEAT_S
    assert call_of(rig.tick(HEARTBEAT_S)).action == "Heartbeat"


@pytest.mark.parametrize("stop_on_invalid", [True, False])
def test_a_transaction_whose_token_the_csms_refuses_is_stopped_through_the_site(rig: Rig,
                                                                                  stop_on_invalid: bool) -> None:
    """StopTransactionOnInvalidId (TxCtrlr.StopTxOnInvalidId): the start's answer refuses the token."""
    key = "StopTransactionOnInvalidId" if rig.version == "1.6" else None
    if not stop_on_invalid:
        if key is not None:
            assert rig.core.settings.change_configuration(key, "false") == "Accepted"
        else:
            rig.core.settings.set_variables([{"component": {"name": "TxCtrlr"},
                                              "variable": {"name": "StopTxOnInvalidId"}, "attributeValue": "false"}])
    rig.boot()
    out = rig.handle(TxStarted("s1", "card-1", sample(rig.now)))
    [start] = calls_in(out)
    info = {"status": "Invalid"}
    answer = {"transactionId": 4711, "idTagInfo": info} if rig.version == "1.6" else {"idTokenInfo": info}
    stops = proposals(rig.answer(start, answer), "remote_stop")
    assert [p.args for p in stops] == ([{"cp": "cp1", "session": "s1"}] if stop_on_invalid else [])
