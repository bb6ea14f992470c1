"""Fuzz every decoder of what the hardware (or an EV) says: each raises only its own error type, on any
input, and the engine around them keeps running.

- the virtual cable: `decode_line` (a TCP line) and the per-kind parsers -> `UpdateError`; an end's
  `receive` never raises;
- ISO 15118 messages: `iso15118.decode` -> `MessageError`; `EngineCore.message` never raises;
- serial-link frames: `FrameDecoder.feed` never raises and yields only valid payloads; a `SerialLink`
  over a real pyserial port reading arbitrary bytes returns dicts or nothing;
- Modbus answers: `ModbusMeter.decode_registers` (registers -> reading) and `ModbusMeter.read()` against a
  raw TCP server answering arbitrary bytes -> `MeterError`;
- a running engine fed garbage on its TCP cable keeps running, and still opens the contactor on C->B.
"""

from __future__ import annotations

import dataclasses
import json
import math
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import serial
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from evnet.clock import ManualClock, RealClock
from evnet.config import load_config
from firmware.engine.core import EngineCore
from firmware.engine.evse import Evse
from firmware.protocols import iso15118 as m
from hal.meter import MeterError, MeterReading, ModbusMeter
from hal.pilot import EvLoad, TcpEvseEnd, VirtualCable
from hal.pilot.cable_updates import (
    KINDS,
    MAX_LINE,
    UpdateError,
    decode_line,
    parse_current,
    parse_duty,
    parse_load,
    parse_message,
)
from hal.serial_link import FrameDecoder, SerialLink
from hal.serial_link.framing import MAX_PAYLOAD, STX, encode

WAIT = 10.0

# ---- values from outside: JSON-like, with the numbers that broke things (huge ints, inf, nan) ----

huge = st.builds(lambda digits, sign: sign * 10**digits, st.integers(300, 450), st.sampled_from([1, -1]))
numbers = st.one_of(huge, st.integers(), st.floats(allow_nan=True, allow_infinity=True))
scalars = st.one_of(st.none(), st.booleans(), numbers, st.text(max_size=40))
json_like = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                         | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=10)
FIELD_NAMES = sorted({f.name for cls in m.Message.TYPES.values() for f in dataclasses.fields(cls)}
                     | {"start_s", "max_current_a", "duty", "load", "diode", "a", "m", "k"})
keys = st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=12))
known_values = st.sampled_from(["Start", "Stop", "Renegotiate", "Finished", "Ongoing", "Terminate", "Pause",
                                "ExternalPayment", "Contract", "AC_three_phase_core", "None", "C", "B",
                                "not_connected", "short"])
field_values = st.one_of(numbers, st.text(max_size=40), known_values, json_like,
                         st.lists(st.fixed_dictionaries({"start_s": json_like, "max_current_a": json_like}),
                                  max_size=2))


def _typed_message(cls: type[m.Message]) -> st.SearchStrategy[dict]:
    """A dict with `cls`'s type and any of its own fields, each holding anything (the likeliest to get far)."""
    fields = {f.name: field_values for f in dataclasses.fields(cls)}
    return st.fixed_dictionaries({"type": st.just(cls.__name__)}, optional=fields)


messages = st.one_of(
    st.sampled_from(sorted(m.Message.TYPES.values(), key=lambda c: c.__name__)).flatmap(_typed_message),
    st.builds(lambda name, fields: {**fields, "type": name}, st.one_of(st.sampled_from(sorted(m.Message.TYPES)),
                                                                       json_like),
              st.dictionaries(keys, field_values, max_size=6)),
)
bodies = st.dictionaries(keys, field_values, max_size=4)


def nested(depth: int) -> object:
    value: object = []
    for _ in range(depth):
        value = [value]
    return value


# ---- the cable ----

lines = st.one_of(
    st.binary(max_size=300),
    st.builds(lambda kind, body: (b'{"k":"%s",' % kind.encode()) + body, st.sampled_from(sorted(KINDS)),
              st.binary(max_size=100)),
    st.integers(1, 60_000).map(lambda n: b"[" * n),
    st.integers(1, 3000).map(lambda n: b'{"k":"current","a":1' + b"0" * n + b"}"),
    st.builds(lambda kind, body: json.dumps({"k": kind, **body}, default=str).encode(),
              st.one_of(st.sampled_from(sorted(KINDS)), st.text(max_size=8)), bodies),
)


@settings(max_examples=400, deadline=None)
@given(lines)
def test_decode_line_raises_only_update_error(line: bytes) -> None:
    try:
        kind, body = decode_line(line)
    except UpdateError:
        return
    assert kind in KINDS and isinstance(body, dict)


def test_decode_line_refuses_an_over_long_line_before_parsing_it() -> None:
    with pytest.raises(UpdateError, match="at most"):
        decode_line(b"[" * (MAX_LINE + 1))


@settings(max_examples=300, deadline=None)
@given(bodies)
def test_every_update_parser_raises_only_update_error(body: dict) -> None:
    for parse in (parse_duty, parse_load, parse_current, parse_message):
        try:
            parse(body)
        except UpdateError:
            pass


@pytest.fixture(scope="module")
def cable() -> Iterator[VirtualCable]:
    cable = VirtualCable(cp="fuzz")
    yield cable
    cable.close()


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kind=st.one_of(st.sampled_from(sorted(KINDS)), st.text(max_size=8)), body=bodies)
def test_an_end_takes_any_update_without_raising(cable: VirtualCable, kind: str, body: dict) -> None:
    before = cable.evse.dropped + cable.ev.dropped
    cable.evse.receive(kind, body, source="fuzz")
    cable.ev.receive(kind, body, source="fuzz")
    assert cable.evse.dropped + cable.ev.dropped >= before
    while cable.evse.poll() is not None or cable.ev.poll() is not None:
        pass  # the inbox is capped; keep it empty between examples


# ---- ISO 15118 ----

@settings(max_examples=500, deadline=None)
@given(st.one_of(messages, json_like))
def test_iso15118_decode_raises_only_message_error(data: object) -> None:
    try:
        msg = m.decode(data)
    except m.MessageError:
        return
    assert m.decode(msg.to_dict()) == msg


def test_iso15118_decode_survives_deep_nesting_and_huge_values() -> None:
    for bad in ({"type": "SessionSetupReq", "evcc_id": nested(50_000)},
                {"type": "PowerDeliveryReq", "charge_progress": nested(50_000)},
                {"type": nested(50_000)},
                {"type": "ChargeParameterDiscoveryReq", "max_current_a": 10**401}):
        with pytest.raises(m.MessageError):
            m.decode(bad)


@pytest.fixture(scope="module")
def core() -> EngineCore:
    core = EngineCore("fuzz", price_eur_kwh=0.3, max_current_a=32, fallback_a=6)
    core.start(0.0)
    core.grant(32, math.inf, 0.0)
    core.pilot_reading("B", 0.0)
    return core


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(messages, json_like), st.floats(0.0, 10.0))
def test_the_engine_core_takes_any_ev_message(core: EngineCore, data: object, dt: float) -> None:
    core.message(data, 1.0 + dt)  # never raises: a bad one is dropped and counted


# ---- serial-link frames ----

@settings(max_examples=600, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=200), st.sampled_from([bytes([STX]), b"\x03", b"\x02\x03"]),
                          st.binary(max_size=60).map(lambda b: encode(bytes(0x20 + x % 95 for x in b)))),
                max_size=12))
def test_the_frame_decoder_takes_any_bytes(chunks: list[bytes]) -> None:
    decoder = FrameDecoder()
    for chunk in chunks:
        for payload in decoder.feed(chunk):
            assert len(payload) <= MAX_PAYLOAD and all(0x20 <= b <= 0x7E for b in payload)
    assert decoder.feed(encode(b"HB 1") + encode(b"HB 2"))[-1] == b"HB 2"  # and is in sync again


@pytest.fixture(scope="module")
def loop_link() -> Iterator[SerialLink]:
    port = serial.serial_for_url("loop://", timeout=0.01)  # a real pyserial port that reads what is written
    link = SerialLink(port, "loop://")
    yield link
    link.close()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=400))
def test_a_serial_link_reading_any_bytes_returns_dicts_or_nothing(loop_link: SerialLink, data: bytes) -> None:
    loop_link._port.write(data)  # what arrives on the line
    while (message := loop_link.recv_json(0.0)) is not None:
        assert isinstance(message, dict)


# ---- Modbus answers ----

@pytest.fixture(scope="module")
def meter() -> Iterator[ModbusMeter]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    meter = ModbusMeter("SDM630", transport="tcp", address=f"127.0.0.1:{port}", clock=ManualClock(),
                        timeout_s=0.05, retries=0, cp_id="fuzz")
    yield meter
    meter.close()


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.one_of(st.lists(st.integers(0, 0xFFFF), min_size=74, max_size=74),
                 st.lists(st.integers(-(2**40), 2**40), max_size=80)))
def test_register_decoding_raises_only_meter_error(meter: ModbusMeter, words: list[int]) -> None:
    try:
        reading = meter.decode_registers(words)
    except MeterError as exc:
        assert exc.kind in ("garbage", "protocol")
        return
    assert isinstance(reading, MeterReading) and all(math.isfinite(v) for v in reading.current_a)


class RawModbusServer:
    """A TCP server that answers each request with `answer(request)`: arbitrary bytes from hypothesis."""

    def __init__(self) -> None:
        self.answer: Callable[[bytes], bytes] = lambda request: b""
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.address = f"127.0.0.1:{self._server.getsockname()[1]}"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except OSError:
                continue
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(1.0)
            try:
                while request := conn.recv(512):
                    conn.sendall(self.answer(request))
            except OSError:
                return

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._server.close()


@pytest.fixture(scope="module")
def raw_server() -> Iterator[RawModbusServer]:
    server = RawModbusServer()
    yield server
    server.close()


answers = st.one_of(
    st.binary(max_size=300).map(lambda b: lambda request: b),  # anything at all
    st.tuples(st.integers(0, 0xFFFF), st.integers(0, 255), st.sampled_from([4, 0x84, 3, 0]), st.binary(max_size=160))
    .map(lambda t: lambda request: request[:2] + b"\x00\x00" + (2 + len(t[3])).to_bytes(2, "big")
         + bytes([request[6], t[2]]) + t[3]),  # a well-formed MBAP header around an arbitrary PDU
    st.lists(st.integers(0, 0xFFFF), min_size=74, max_size=74)
    .map(lambda regs: lambda request: request[:2] + b"\x00\x00" + (3 + 148).to_bytes(2, "big")
         + bytes([request[6], 4, 148]) + b"".join(r.to_bytes(2, "big") for r in regs)),  # arbitrary registers
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers)
def test_a_meter_answering_arbitrary_bytes_is_only_ever_a_meter_error(raw_server: RawModbusServer,
                                                                       answer: Callable[[bytes], bytes]) -> None:
    raw_server.answer = answer
    meter = ModbusMeter("SDM630", transport="tcp", address=raw_server.address, clock=ManualClock(),
                        timeout_s=0.05, retries=0, cp_id="fuzz")
    try:
        meter.read()
    except MeterError as exc:
        assert exc.kind in ("timeout", "protocol", "exception", "connection", "garbage")
    finally:
        meter.close()


# ---- a running engine fed garbage on its cable ----

CONFIG = """\
[charge_point]
id = "fuzz"
site = "s1"
price_eur_kwh = 0.3
max_current_a = 16

[meter]
poll_interval_s = 1.0

[site]
members = ["fuzz"]
limit_a = 32
key_file = "site.key"
"""


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    pause, deadline = threading.Event(), time.monotonic() + WAIT
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        pause.wait(0.002)


def test_a_running_engine_fed_garbage_on_the_cable_keeps_running(tmp_path: Path) -> None:
    path = tmp_path / "fuzz.toml"
    path.write_text(CONFIG)
    (tmp_path / "site.key").write_text("k" * 32)
    pilot = TcpEvseEnd("tcp://127.0.0.1:0", cp="fuzz", dead_after_s=60.0)  # the raw EV sends no pings
    evse = Evse(load_config(path), clock=RealClock(20.0), mqtt=False, monitor=False, pilot=pilot,
                standing_driver="fuzz", print_tickets=False)
    evse.start()
    sock = socket.create_connection((pilot.host, pilot.port), timeout=WAIT)
    try:
        sock.sendall(b'{"k":"load","load":"B","diode":true}\n')
        wait_for(lambda: evse.core.session.started, "a session")
        sock.sendall(b'{"k":"load","load":"C","diode":true}\n')
        wait_for(lambda: evse.contactor_closed, "the contactor closed")

        marks = iter(range(1, 10**6))

        @settings(max_examples=200, deadline=None)
        @given(st.lists(lines, min_size=1, max_size=4))
        def feed(garbage: list[bytes]) -> None:
            mark = next(marks) / 1000  # a current no garbage sends: once the cable shows it, all before is in
            sock.sendall(b"".join(line + b"\n" for line in garbage))
            sock.sendall(b'{"k":"load","load":"B","diode":true}\n{"k":"current","a":%r}\n' % mark)
            wait_for(lambda: pilot.ev_current_a == mark and pilot.ev_load is EvLoad.B, "the EV's B after the garbage")
            wait_for(lambda: not evse.contactor_closed, "the contactor open after B")
            assert evse.alive

        feed()
        assert evse.alive and pilot.linked and pilot.dropped > 0
    finally:
        sock.close()
        evse.stop()
