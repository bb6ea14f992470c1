"""Fuzz the engine's decoders of bytes from outside its control: the session journal as found on disk
(torn, garbled, hand-edited) and the monitor link's heartbeat payloads. Each raises only its own error
type, on any input, and what reads them (the journal's opening, the heartbeat machines) never raises."""

from __future__ import annotations

import json
import os
import tempfile
import zlib

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.engine.journal import (
    FILE,
    Closed,
    Journal,
    JournalError,
    Opened,
    Taken,
    Voided,
    decode,
    decode_line,
    encode,
)
from firmware.engine.metering import Ticket
from firmware.protocols.heartbeat import (
    HeartbeatError,
    HeartbeatMonitor,
    HeartbeatResponder,
    decode_answer,
    decode_farewell,
    decode_heartbeat,
)

TEXT = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40)
AMOUNT = st.floats(min_value=0, max_value=1e7, allow_nan=False, allow_infinity=False)


@st.composite
def records(draw):
    kind = draw(st.sampled_from(["open", "ticket", "taken", "void"]))
    sid = draw(TEXT)
    if kind == "open":
        return Opened(sid, draw(TEXT), draw(AMOUNT), draw(AMOUNT), draw(st.sampled_from(["", "boot"])))
    if kind == "taken":
        return Taken(sid)
    if kind == "void":
        return Voided(sid)
    start = draw(AMOUNT)
    return Closed(Ticket(cp=draw(TEXT), session_id=sid, driver=draw(TEXT), start_ts=draw(AMOUNT), end_ts=draw(AMOUNT),
                         start_kwh=start, end_kwh=start + draw(AMOUNT), price_eur_kwh=draw(AMOUNT), reason=draw(TEXT)))


def crc_line(text: bytes) -> bytes:
    """A line whose CRC is right, so the JSON behind it is parsed: what a fuzzer rarely finds alone."""
    return b"%08x %s" % (zlib.crc32(text), text)


JSONISH = st.one_of(
    st.binary(max_size=300),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                 lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6),
                 max_leaves=20).map(lambda v: json.dumps(v).encode()),
    st.fixed_dictionaries({"t": st.sampled_from(["open", "ticket", "taken", "void", "x"])},
                          optional={k: st.one_of(st.text(max_size=10), st.floats(), st.integers(), st.none())
                                    for k in ("session_id", "driver", "start_kwh", "start_ts", "end_kwh", "end_ts",
                                              "cp", "price_eur_kwh", "reason", "boot_id")})
    .map(lambda v: json.dumps(v).encode()),
    # Nesting deep enough for a RecursionError in json (about 1,000) and still under the line limit.
    st.integers(min_value=900, max_value=2000).map(lambda n: b"[" * n + b"]" * n),
)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_decode_takes_any_bytes(data):
    decoded = decode(data)
    assert decoded.good_bytes + decoded.torn_bytes == len(data)
    assert all(isinstance(r, Opened | Closed | Taken | Voided) for r in decoded.records)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.binary(max_size=600), JSONISH.map(crc_line)))
def test_a_line_is_a_record_or_a_journal_error(line):
    try:
        record = decode_line(line)
    except JournalError:
        return
    assert isinstance(record, Opened | Closed | Taken | Voided)


@settings(max_examples=200, deadline=None)
@given(st.lists(records(), max_size=8), st.binary(max_size=60), st.integers(min_value=0, max_value=400))
def test_valid_records_survive_garbage_and_a_torn_tail(recs, junk, cut):
    lines = b"".join(encode(r) for r in recs)
    torn = encode(Taken("torn"))[: cut % 30]  # never a whole line: no newline
    decoded = decode(lines + junk.replace(b"\n", b"") + b"\n" + torn)
    assert decoded.records == recs and decoded.torn_bytes == len(torn)


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=1500), st.lists(records(), max_size=4))
def test_a_journal_opens_on_whatever_the_file_holds(data, recs):
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(tmp, FILE), "wb") as fh:
            fh.write(data + b"".join(encode(r) for r in recs))
        journal = Journal(tmp)
        try:
            journal.append(Taken("after"))  # and it can be written after
        finally:
            journal.close()
        Journal(tmp).close()


@settings(max_examples=400, deadline=None)
@given(st.one_of(st.binary(max_size=80),
                 st.from_regex(rb"\A(HB|HBA|BYE)( [0-9A-Za-z_]{0,40}){0,3}\Z")))
def test_heartbeat_payloads_raise_only_heartbeat_errors_and_never_stop_either_side(payload):
    for decoder in (decode_heartbeat, decode_answer, decode_farewell):
        try:
            decoder(payload)
        except HeartbeatError:
            pass
    monitor = HeartbeatMonitor(1.0, 2)
    monitor.start(0.0)
    monitor.receive(payload, 0.1)
    answer = HeartbeatResponder().answer(payload, 0.0, "AVAILABLE")
    assert answer is None or decode_answer(answer) == (decode_heartbeat(payload), "AVAILABLE")
