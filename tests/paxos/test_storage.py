"""Durable acceptor storage: both backends keep what they acknowledged; the file drops only a torn tail."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from firmware.paxos.core.types import Accepted, Ballot, DurableState
from firmware.paxos.io.storage import KINDS, open_storage
from firmware.paxos.io.storage_file import FileStorage, StorageCorruptError


def acc(slot: int, rnd: int = 1, node: str = "cp1", value: bytes | None = None) -> Accepted:
    return Accepted(slot, Ballot(rnd, node), value if value is not None else f"v{slot}".encode())


@pytest.fixture(params=sorted(KINDS))
def kind(request: pytest.FixtureRequest) -> str:
    return request.param


def reopen(tmp_path, kind: str) -> DurableState:
    store = open_storage(str(tmp_path), kind)
    try:
        return store.load()
    finally:
        store.close()


def test_empty_store_loads_the_zero_state(tmp_path, kind):
    state = reopen(tmp_path / "new", kind)
    assert state == DurableState()


def test_promise_and_entries_survive_a_reopen_and_later_entries_replace_earlier(tmp_path, kind):
    store = open_storage(str(tmp_path), kind)
    store.save(Ballot(1, "cp1"), [acc(1), acc(2)])
    store.save(None, [acc(2, rnd=3, node="cp2", value=b"new"), acc(3, value=b"")])
    store.save(Ballot(4, "cp3"), [])
    store.close()
    state = reopen(tmp_path, kind)
    assert state.promised == Ballot(4, "cp3")
    assert state.accepted == {1: acc(1), 2: acc(2, 3, "cp2", b"new"), 3: acc(3, value=b"")}
    assert state.snapshot is None and state.snapshot_slot == 0


def test_a_snapshot_drops_the_entries_below_its_slot_and_keeps_the_rest(tmp_path, kind):
    store = open_storage(str(tmp_path), kind)
    store.save(Ballot(2, "cp1"), [acc(s) for s in range(1, 11)])
    store.save_snapshot(7, b"machine-at-7")
    store.save(None, [acc(11)])
    store.save_snapshot(5, b"older")  # ignored: older than what is on disk
    store.close()
    state = reopen(tmp_path, kind)
    assert (state.snapshot_slot, state.snapshot) == (7, b"machine-at-7")
    assert sorted(state.accepted) == [7, 8, 9, 10, 11]
    assert state.promised == Ballot(2, "cp1")


def test_compaction_shrinks_the_log_and_an_old_temp_file_is_harmless(tmp_path):
    store = FileStorage(str(tmp_path / "a.log"))
    for s in range(200):
        store.save(Ballot(s, "cp1"), [acc(s, value=b"x" * 100)])
    before = os.path.getsize(store.path)
    (tmp_path / "a.log.tmp").write_bytes(b"half-written garbage from a crash")
    store.save_snapshot(195, b"snap")
    assert os.path.getsize(store.path) < before / 10
    store.save(None, [acc(200)])
    store.close()
    state = FileStorage(str(tmp_path / "a.log")).load()
    assert sorted(state.accepted) == [195, 196, 197, 198, 199, 200]
    assert state.promised == Ballot(199, "cp1")


def _two_record_log(tmp_path) -> tuple[str, int, int]:
    """A log of two records: the path, where the second record starts, where it ends."""
    path = str(tmp_path / "a.log")
    store = FileStorage(path)
    store.save(Ballot(1, "cp1"), [acc(1)])
    good_end = store._end
    store.save(Ballot(2, "cp1"), [acc(2)])
    store.close()
    return path, good_end, store._end


@pytest.mark.parametrize("after", ["nothing", "zeros"])
def test_a_log_cut_anywhere_inside_its_last_record_loads_the_records_before_it(tmp_path, after):
    path, good_end, full_end = _two_record_log(tmp_path)
    full = Path(path).read_bytes()
    for cut in range(good_end, full_end):
        with open(path, "wb") as f:
            f.write(full[:cut])
            if after == "zeros":  # the torn write landed in preallocated space
                f.write(bytes(4096))
        store = FileStorage(path, prealloc=4096)
        state = store.load()
        assert state.promised == Ballot(1, "cp1") and sorted(state.accepted) == [1], cut
        assert store.truncated_bytes == len(full[good_end:cut].rstrip(b"\0"))
        store.save(None, [acc(3)])  # written where the torn record was
        store.close()
        again = FileStorage(path)
        assert sorted(again.load().accepted) == [1, 3] and again.truncated_bytes == 0


def test_a_bad_crc_on_the_last_record_is_a_torn_write_even_inside_preallocated_space(tmp_path):
    path, good_end, full_end = _two_record_log(tmp_path)
    data = bytearray(Path(path).read_bytes())
    last_byte = full_end - 1
    data[last_byte] ^= 0xFF
    Path(path).write_bytes(bytes(data))
    store = FileStorage(path)
    assert sorted(store.load().accepted) == [1] and store.truncated_bytes == last_byte + 1 - good_end
    store.close()
    assert Path(path).read_bytes()[good_end:].count(0) == len(data) - good_end  # zeroed for later records


def test_the_log_is_preallocated_and_its_zeros_are_a_clean_end(tmp_path):
    path = str(tmp_path / "a.log")
    store = FileStorage(path)
    store.save(Ballot(1, "cp1"), [acc(1)])
    size = os.path.getsize(path)
    for s in range(2, 50):
        store.save(None, [acc(s)])
    assert os.path.getsize(path) == size >= 1024 * 1024  # writes in place, no growth per save
    store.close()
    again = FileStorage(path)
    assert len(again.load().accepted) == 49 and again.truncated_bytes == 0


@pytest.mark.parametrize("where", ["payload", "length"])
def test_damage_in_the_middle_of_the_log_is_an_error_that_says_where(tmp_path, where):
    path, _, _ = _two_record_log(tmp_path)
    data = bytearray(Path(path).read_bytes())
    first = len(b"EVPXLOG1")
    data[first + (20 if where == "payload" else 1)] ^= 0x40  # damage in the first record; the second follows
    Path(path).write_bytes(bytes(data))
    with pytest.raises(StorageCorruptError) as err:
        FileStorage(path)
    assert err.value.offset == first
    assert path in str(err.value) and f"byte {first}" in str(err.value)


def test_a_file_that_is_not_a_log_is_refused(tmp_path):
    path = tmp_path / "a.log"
    path.write_bytes(b"hello world, not a log")
    with pytest.raises(StorageCorruptError, match="bad magic"):
        FileStorage(str(path))


CHILD = textwrap.dedent("""
    import sys
    from firmware.paxos.io.storage import open_storage
    from firmware.paxos.core.types import Accepted, Ballot
    store = open_storage(sys.argv[1], sys.argv[2])
    slot = 0
    while True:
        slot += 1
        batch = [Accepted(slot * 4 + i, Ballot(slot, "cp1"), b"x" * 300) for i in range(4)]
        store.save(Ballot(slot, "cp1"), batch)
        if slot % 50 == 0:
            store.save_snapshot(slot * 4 - 20, b"snap%d" % slot)
        print(slot, flush=True)
""")


def test_kill_9_in_the_middle_of_a_write_loop_loses_nothing_that_was_acknowledged(tmp_path, kind):
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(tmp_path), kind], stdout=subprocess.PIPE, text=True)
    acked = 0
    try:
        for line in proc.stdout:
            acked = int(line)
            if acked >= 120:
                break
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    assert acked >= 120
    state = reopen(tmp_path, kind)
    last = state.promised.round
    assert last >= acked  # the child may have saved a few more than we read
    snap = (last // 50) * 50
    assert state.snapshot == b"snap%d" % snap and state.snapshot_slot == snap * 4 - 20
    assert sorted(state.accepted) == list(range(state.snapshot_slot, last * 4 + 4))
    assert all(a.ballot.round == a.slot // 4 for a in state.accepted.values())
