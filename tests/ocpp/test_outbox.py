"""OCPP's offline queue on disk: order across restarts, the 1.6 transaction id bindings, torn and damaged
files, thinning, compaction, and a charge point killed with -9 while it appends."""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from firmware.ocpp.outbox import UNKNOWN_TRANSACTION_ID, Entry, Outbox, OutboxError, OutboxFull


def start(session: str = "s1") -> dict:
    return {"connectorId": 1, "idTag": f"tag-{session}", "meterStart": 1000, "timestamp": "2026-01-01T10:00:00Z"}


def meter(wh: int) -> dict:
    return {"connectorId": 1, "meterValue": [{"timestamp": "2026-01-01T10:01:00Z",
                                              "sampledValue": [{"value": str(wh)}]}]}


def stop(wh: int) -> dict:
    return {"meterStop": wh, "timestamp": "2026-01-01T11:00:00Z", "reason": "Local"}


def event(kind: str, seq_no: int, trigger: str = "MeterValuePeriodic") -> dict:
    return {"eventType": kind, "timestamp": "2026-01-01T10:00:00Z", "triggerReason": trigger, "seqNo": seq_no,
            "transactionInfo": {"transactionId": "tx-1"}}


def drain(box: Outbox) -> list[Entry]:
    """Every entry, oldest first, each acknowledged (a StartTransaction bound to 100 + its seq)."""
    out = []
    while (entry := box.head()) is not None:
        out.append(entry)
        box.acknowledged(entry.seq, transaction_id=100 + entry.seq if entry.action == "StartTransaction" else None)
    return out


def session(box: Outbox, sid: str, meters: int) -> list[int]:
    seqs = [box.append("StartTransaction", start(sid), tx=sid)]
    seqs += [box.append("MeterValues", meter(1000 + i), tx=sid) for i in range(meters)]
    seqs.append(box.append("StopTransaction", stop(2000), tx=sid))
    return seqs


def test_order_is_kept_across_restarts_and_sequence_numbers_never_repeat(tmp_path: Path) -> None:
    path = str(tmp_path / "q" / "outbox")
    with Outbox(path) as box:
        first = session(box, "s1", 3)
    with Outbox(path) as box:
        second = session(box, "s2", 2)
        assert len(box) == len(first) + len(second)
    with Outbox(path) as box:
        entries = drain(box)
        assert [e.seq for e in entries] == first + second == sorted(first + second)
        assert [e.action for e in entries[:5]] == ["StartTransaction"] + ["MeterValues"] * 3 + ["StopTransaction"]
        assert entries[1].payload["meterValue"][0]["sampledValue"][0]["value"] == "1000"
    with Outbox(path) as box:  # emptied: the file was rewritten, yet numbers go on
        assert box.head() is None and box.append("MeterValues", meter(1)) == second[-1] + 1


def test_an_acknowledged_entry_never_comes_back(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox")
    with Outbox(path) as box:
        seqs = session(box, "s1", 2)
        box.acknowledged(seqs[0], transaction_id=7)
        box.acknowledged(seqs[1])
    with Outbox(path) as box:
        assert [e.seq for e in drain(box)] == seqs[2:]
        assert box.stats().acknowledged == len(seqs) and box.stats().pending == 0


def test_only_the_head_may_be_acknowledged_tried_or_given_up(tmp_path: Path) -> None:
    with Outbox(str(tmp_path / "outbox")) as box:
        seqs = session(box, "s1", 1)
        for call in (box.acknowledged, box.attempt, box.give_up):
            with pytest.raises(ValueError, match="not the head"):
                call(seqs[1])
        box.acknowledged(seqs[0])
        with pytest.raises(ValueError, match="only StartTransaction"):
            box.acknowledged(seqs[1], transaction_id=5)  # a MeterValues binds nothing
        assert box.head().seq == seqs[1] and len(box) == 2


def test_the_csms_id_fills_that_transactions_meter_values_and_stop_and_survives_a_restart(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox")
    with Outbox(path) as box:
        s1 = session(box, "s1", 1)
        s2 = session(box, "s2", 1)
        box.acknowledged(s1[0], transaction_id=4711)
        assert box.bound("s1") == 4711 and box.bound("s2") is None
    with Outbox(path) as box:
        assert box.bound("s1") == 4711
        assert box.head().payload["transactionId"] == 4711  # MeterValues
        box.acknowledged(s1[1])
        assert box.head().payload == {**stop(2000), "transactionId": 4711}
        box.acknowledged(s1[2])
        box.acknowledged(s2[0], transaction_id="csms-2")
    with Outbox(path) as box:
        assert [e.payload["transactionId"] for e in drain(box)] == ["csms-2", "csms-2"]
    with Outbox(path) as box:  # both stops answered, the queue emptied and rewritten: the bindings went
        assert box.bound("s1") is None and box.bound("s2") is None


def test_placeholder_rule_when_the_start_got_no_csms_id(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox")
    with Outbox(path) as box:
        s1 = session(box, "s1", 1)
        assert box.attempt(s1[0]) == 1 and box.attempt(s1[0]) == 2
    with Outbox(path) as box:
        assert box.head().attempts == 2
        box.give_up(s1[0])  # TransactionMessageAttempts spent
        assert box.stats().given_up == 1
        mv = box.head()
        assert mv.action == "MeterValues" and "transactionId" not in mv.payload
        box.acknowledged(mv.seq)
        assert box.head().payload["transactionId"] == UNKNOWN_TRANSACTION_ID
        s2 = session(box, "s2", 0)
        box.acknowledged(box.head().seq)
        box.acknowledged(s2[0])  # answered, but without an id
        assert box.head().payload["transactionId"] == UNKNOWN_TRANSACTION_ID


def test_201_payloads_are_sent_as_they_were_queued(tmp_path: Path) -> None:
    with Outbox(str(tmp_path / "outbox")) as box:
        payloads = [event("Started", 0, "Authorized"), event("Updated", 1), event("Ended", 2, "EVDeparted")]
        for p in payloads:
            box.append("TransactionEvent", p, tx="tx-1")
        box.append("MeterValues", {"evseId": 1, "meterValue": []})
        assert [e.payload for e in drain(box)] == payloads + [{"evseId": 1, "meterValue": []}]


def test_a_torn_last_record_loses_only_that_record(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="evnet")
    path = str(tmp_path / "outbox")
    with Outbox(path) as box:
        seqs = session(box, "s1", 2)
        box.acknowledged(seqs[0], transaction_id=9)
        before = os.path.getsize(path)
        last = box.append("MeterValues", meter(5))
    data = Path(path).read_bytes()
    for cut in range(before, len(data)):
        copy = tmp_path / f"cut{cut}" / "outbox"
        copy.parent.mkdir()
        copy.write_bytes(data[:cut])
        with Outbox(str(copy)) as box:
            assert [e.seq for e in drain(box)] == seqs[1:], cut
            assert box.append("MeterValues", meter(6)) >= last  # the torn one was never reported
    assert sum("outbox.torn_tail" in r.getMessage() for r in caplog.records) == len(data) - before - 1
    assert not any(r.levelno >= logging.ERROR for r in caplog.records)


def test_a_damaged_middle_record_stops_replay_there_with_one_log_line(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="evnet")
    path = str(tmp_path / "outbox")
    ends = []
    with Outbox(path) as box:
        for i in range(5):
            box.append("MeterValues", meter(i))
            ends.append(os.path.getsize(path))
    data = bytearray(Path(path).read_bytes())
    original = bytes(data)
    data[ends[2] + 20] ^= 0x01  # inside the fourth record
    Path(path).write_bytes(bytes(data))
    with Outbox(path) as box:
        lines = [r.getMessage() for r in caplog.records if "outbox.damaged" in r.getMessage()]
        assert len(lines) == 1 and f"offset={ends[2]}" in lines[0] and path in lines[0]
        assert [e.payload["meterValue"][0]["sampledValue"][0]["value"] for e in drain(box)] == ["0", "1", "2"]
        assert box.append("MeterValues", meter(9)) > 5  # the lost 4 and 5 are never numbered again
    assert Path(path + ".damaged").read_bytes() == bytes(data) != original
    with Outbox(path) as box:  # the rewritten file is whole
        assert len(box) == 1


def test_thinning_drops_old_meter_values_never_starts_or_stops(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="evnet")
    path = str(tmp_path / "outbox")
    with Outbox(path, max_entries=20) as box:
        kept = session(box, "s1", 3) + [box.append("TransactionEvent", event("Started", 0, "Authorized"), tx="t")]
        for i in range(40):
            box.append("MeterValues", meter(i), tx="s1")
            assert len(box) <= 20
        kept += [box.append("TransactionEvent", event("Ended", 9, "EVDeparted"), tx="t")]
        stats = box.stats()
        assert stats.dropped > 0 and stats.appended - stats.dropped == len(box) <= 20
        assert box.pending_meter_values() == len(box) - 4  # all but the two starts and the two ends
        pending = len(box)
    assert sum("outbox.thinned" in r.getMessage() for r in caplog.records) == 1  # folded
    with Outbox(path, max_entries=20) as box:
        entries = drain(box)
    assert len(entries) == pending  # what was thinned stays gone after a restart
    seqs = [e.seq for e in entries]
    assert set(kept) - set(seqs) <= set(kept[1:4])  # of those, only the first session's meter values may go
    assert [e.action for e in entries if e.seq in kept and e.action != "MeterValues"] == [
        "StartTransaction", "StopTransaction", "TransactionEvent", "TransactionEvent"]
    values = [int(e.payload["meterValue"][0]["sampledValue"][0]["value"]) for e in entries
              if e.action == "MeterValues" and e.seq not in kept]
    assert values[-4:] == [36, 37, 38, 39] and values == sorted(values)  # the newest kept whole, order kept


def test_a_queue_full_of_starts_and_stops_refuses(tmp_path: Path) -> None:
    with Outbox(str(tmp_path / "outbox"), max_entries=4) as box:
        session(box, "s1", 0)
        session(box, "s2", 0)
        with pytest.raises(OutboxFull):
            box.append("MeterValues", meter(1))
        with pytest.raises(OutboxFull):
            box.append("StartTransaction", start("s3"), tx="s3")
        assert len(box) == 4 and box.stats().appended == 4


def test_compaction_keeps_everything_live(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox")
    sizes = []
    with Outbox(path, compact_bytes=8192) as box:
        for n in range(200):  # each round answers all but the newest stop, which is tried once
            seqs = session(box, f"s{n}", 1)
            while box.head().seq != seqs[-1]:
                head = box.head()
                box.acknowledged(head.seq, transaction_id=n if head.action == "StartTransaction" else None)
            assert box.attempt(seqs[-1]) == 1
            sizes.append(os.path.getsize(path))
        assert max(sizes) <= 2 * 8192 and sizes[-1] == box.stats().bytes_on_disk
        assert box.bound("s5") is None  # its stop was answered: the binding went with the history
    with Outbox(path, compact_bytes=8192) as box:
        assert box.head() == Entry(seqs[-1], "StopTransaction", {**stop(2000), "transactionId": 199}, "s199", 1)
        assert len(box) == 1 and box.bound("s199") == 199 and box.bound("s198") is None
        assert box.stats().appended == 600 and box.stats().acknowledged == 599


def test_append_refuses_what_it_could_not_send_and_writes_nothing(tmp_path: Path) -> None:
    with Outbox(str(tmp_path / "outbox")) as box:
        size = box.stats().bytes_on_disk
        for action, payload, tx in [("MeterValues", {"v": float("nan")}, None), ("MeterValues", {"v": object()}, None),
                                    ("MeterValues", {"v": "x" * 70_000}, None), ("", {}, None),
                                    ("MeterValues", [], None), ("MeterValues", {}, "bad\ntx")]:
            with pytest.raises(ValueError):
                box.append(action, payload, tx=tx)  # type: ignore[arg-type]
        assert box.stats().bytes_on_disk == size and len(box) == 0


def test_a_second_process_on_the_same_file_is_refused(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox")
    with Outbox(path), pytest.raises(OutboxError, match="in use by another process"):
        Outbox(path)


CHILD = """
import sys
from firmware.ocpp.outbox import Outbox
box = Outbox(sys.argv[1])
n = 0
while True:
    n += 1
    seq = box.append("MeterValues", {"connectorId": 1, "meterValue": [], "n": n}, tx="s1")
    print("a", seq, flush=True)
    if n % 3 == 0:
        head = box.head()
        box.acknowledged(head.seq)
        print("k", head.seq, flush=True)
"""


def test_kill_9_while_appending_loses_nothing_reported_and_sends_nothing_twice(tmp_path: Path) -> None:
    path = str(tmp_path / "outbox")
    rng = random.Random(12)
    appended: list[int] = []
    acked: set[int] = set()
    rounds = 8
    for _ in range(rounds):
        child = subprocess.Popen([sys.executable, "-c", CHILD, path], stdout=subprocess.PIPE, text=True,
                                 cwd=Path(__file__).resolve().parents[2])
        assert child.stdout is not None
        lines = [child.stdout.readline() for _ in range(rng.randint(1, 120))]
        assert all(lines), "the child died on its own"
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
        lines += child.stdout.readlines()  # what it reported before it died counts too
        child.stdout.close()
        for line in lines:
            if line.endswith("\n"):
                kind, seq = line.split()
                (appended.append if kind == "a" else acked.add)(int(seq))
    with Outbox(path) as box:
        remaining = [e.seq for e in drain(box)]
        assert box.append("MeterValues", meter(1)) > max(appended)
    assert remaining == sorted(set(remaining)), "out of order or twice"
    assert not acked & set(remaining), "an acknowledged entry came back"
    missing = set(appended) - acked - set(remaining)
    assert len(missing) <= rounds and all(m < min(remaining, default=1 << 62) for m in missing), missing
    assert len(set(remaining) - set(appended)) <= rounds  # at most the one being appended at each kill
    assert len(appended) > rounds
