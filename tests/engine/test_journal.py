"""The session journal on a real directory: records survive a reopen, a torn last record (kill -9 mid-write)
and garbage are skipped and counted, the file is compacted, and a second engine cannot share it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from firmware.engine.journal import (
    FILE,
    Closed,
    Journal,
    JournalError,
    JournalState,
    Opened,
    Taken,
    Voided,
    close_reason,
    decode,
    decode_line,
    encode,
)
from firmware.engine.metering import Ticket

OPENED = Opened("cp1-0001", "alice", 100.25, 1_800_000_000.5, "boot-a")
TICKET = Ticket(cp="cp1", session_id="cp1-0001", driver="alice", start_ts=1_800_000_000.5, end_ts=1_800_000_900.0,
                start_kwh=100.25, end_kwh=103.75, price_eur_kwh=0.3, reason="unplugged")


def test_every_record_round_trips():
    for record in (OPENED, Closed(TICKET), Taken("cp1-0001"), Voided("cp1-0001")):
        line = encode(record)
        assert line.endswith(b"\n") and line.count(b"\n") == 1
        assert decode_line(line[:-1]) == record


def test_a_torn_last_record_and_garbage_are_skipped_and_counted():
    good = encode(OPENED) + encode(Closed(TICKET))
    flipped = bytearray(encode(Taken("cp1-0001")))
    flipped[12] ^= 0x01  # one bit of the JSON: the CRC no longer matches
    data = encode(OPENED) + b"\x00\xffgarbage\n" + bytes(flipped) + encode(Closed(TICKET)) + good[:17]
    decoded = decode(data)
    assert decoded.records == [OPENED, Closed(TICKET)]
    assert decoded.bad_lines == 2 and decoded.torn_bytes == 17 and decoded.good_bytes == len(data) - 17


@pytest.mark.parametrize("line, words", [
    (b"nonsense", "no CRC"),
    (b"00000000 {}", "CRC mismatch"),
    (encode(Taken("x"))[:-1].replace(b'"x"', b'"y"'), "CRC mismatch"),
])
def test_bad_lines_say_what_is_wrong(line, words):
    with pytest.raises(JournalError, match=words):
        decode_line(line)


def test_state_follows_the_records():
    state = JournalState.replay([OPENED])
    assert state.open == OPENED and state.tickets == {}
    state.apply(Closed(TICKET))
    assert state.open is None and state.tickets == {"cp1-0001": TICKET}
    assert state.records() == [Closed(TICKET)]
    state.apply(Taken("cp1-0001"))
    assert state.records() == []


def test_a_voided_session_is_no_longer_open_and_leaves_no_ticket(tmp_path: Path):
    state = JournalState.replay([OPENED, Voided("another")])
    assert state.open == OPENED  # another session's void does not close this one
    state.apply(Voided(OPENED.session_id))
    assert state.open is None and state.tickets == {} and state.records() == []
    journal = Journal(str(tmp_path))
    journal.append(OPENED)
    journal.append(Voided(OPENED.session_id))
    journal.close()
    reopened = Journal(str(tmp_path))  # a restart finds nothing to recover
    assert reopened.state.open is None and reopened.state.superseded == 0
    reopened.close()


def test_records_survive_a_reopen_and_a_torn_tail_is_cut_before_the_next_append(tmp_path: Path):
    journal = Journal(str(tmp_path))
    journal.append(OPENED)
    journal.close()
    with open(tmp_path / FILE, "ab") as fh:  # what kill -9 in the middle of a write leaves
        fh.write(encode(Closed(TICKET))[:25])
    journal = Journal(str(tmp_path))
    assert journal.state.open == OPENED and journal.state.tickets == {}
    journal.append(Closed(TICKET))
    journal.close()
    assert Journal(str(tmp_path)).state.tickets == {"cp1-0001": TICKET}


def test_the_file_keeps_only_what_still_matters(tmp_path: Path):
    journal = Journal(str(tmp_path))
    for i in range(400):  # enough history to pass the compaction threshold
        sid = f"cp1-{i:04d}"
        journal.append(Opened(sid, "bob", float(i), float(i), ""))
        journal.append(Closed(Ticket("cp1", sid, "bob", float(i), i + 1.0, float(i), i + 0.5, 0.3, "unplugged")))
        journal.append(Taken(sid))
    journal.append(OPENED)
    assert os.path.getsize(tmp_path / FILE) < 64 * 1024
    journal.close()
    reopened = Journal(str(tmp_path))
    assert reopened.state.open == OPENED and reopened.state.tickets == {}
    assert os.path.getsize(tmp_path / FILE) == len(encode(OPENED))
    reopened.close()


def test_a_second_engine_on_the_same_journal_is_refused(tmp_path: Path):
    first = Journal(str(tmp_path))
    try:
        with pytest.raises(JournalError, match="in use by another engine"):
            Journal(str(tmp_path))
    finally:
        first.close()
    Journal(str(tmp_path)).close()  # free again


def test_a_journal_where_nothing_can_be_made_is_one_clear_error(tmp_path: Path):
    (tmp_path / "file").write_text("")
    with pytest.raises(JournalError, match="journal directory .*file/journal"):
        Journal(str(tmp_path / "file" / "journal"))


def test_a_session_left_open_is_closed_for_a_restart_or_a_power_loss():
    assert close_reason(OPENED, "boot-a") == "restart"
    assert close_reason(OPENED, "boot-b") == "power_loss"
    assert close_reason(Opened("s", "d", 1.0, 1.0, ""), "boot-b") == "restart"  # unknown: the engine restarted
