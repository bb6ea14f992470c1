"""The driver against the simulated meter, a real pymodbus server, over TCP and over RTU on a pty pair."""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Iterator

import pytest
import serial
from pymodbus.client import ModbusTcpClient

from evnet.clock import ManualClock
from hal.meter import MeterError, Misbehaviour, ModbusMeter, SimulatedMeter

TRANSPORTS = ["tcp", "rtu"]


class Sleeps(list):
    """An injected sleep: records what the driver would have waited, waits nothing."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def serve(sim: SimulatedMeter, transport: str) -> str:
    return sim.start_tcp() if transport == "tcp" else sim.start_rtu()


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def sim(clock: ManualClock, transport: str) -> Iterator[SimulatedMeter]:
    meter = SimulatedMeter("SDM630", clock=clock, load=32.0, import_kwh=100.0, cp_id="cp1")
    serve(meter, transport)
    yield meter
    meter.stop()


def driver(sim: SimulatedMeter, clock: ManualClock, **kw) -> ModbusMeter:
    kw.setdefault("timeout_s", 2.0)  # generous: tests that expect silence pass a short one
    kw.setdefault("sleep", Sleeps())
    return ModbusMeter(sim.model, transport=sim.transport, address=sim.address, clock=clock, cp_id="cp1", **kw)


def test_reads_the_simulated_meter(sim, clock):
    with driver(sim, clock) as meter:
        r = meter.read()
        assert r.voltage_v == (230.0, 230.0, 230.0)
        assert r.current_a == (32.0, 32.0, 32.0)
        assert r.power_w == pytest.approx(22_080.0)
        assert r.import_kwh == pytest.approx(100.0)
        assert r.taken_at == clock.time()
        assert meter.last_reading is r


def test_threads_sharing_a_meter_take_turns(sim, clock):
    """The engine's poller and a final read at stop may overlap: no read may get another's answer or none."""
    errors: list[BaseException] = []
    readings: list[float] = []

    def reader(meter: ModbusMeter) -> None:
        try:
            for _ in range(25):
                readings.append(meter.read().import_kwh)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    with driver(sim, clock, retries=0) as meter:
        threads = [threading.Thread(target=reader, args=(meter,)) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors[0]
        assert readings == [pytest.approx(100.0)] * 100
        assert meter.failures == 0


def test_energy_follows_the_injected_clock(sim, clock):
    with driver(sim, clock) as meter:
        start = meter.read().import_kwh
        clock.advance(3600)  # one hour at 32 A x 3 x 230 V
        assert meter.read().import_kwh - start == pytest.approx(22.08, abs=1e-4)
        sim.set_load(0.0)  # contactor open
        clock.advance(3600)
        r = meter.read()
        assert r.import_kwh - start == pytest.approx(22.08, abs=1e-4)
        assert r.power_w == 0.0 and r.current_a == (0.0, 0.0, 0.0)


def test_load_callable_is_followed(clock, transport):
    amps = {"now": 0.0}
    with SimulatedMeter("SDM630", clock=clock, load=lambda: amps["now"]) as sim:
        serve(sim, transport)
        with driver(sim, clock) as meter:
            assert meter.read().power_w == 0.0
            amps["now"] = 16.0
            assert meter.read().current_a == (16.0, 16.0, 16.0)
            clock.advance(1800)
            assert meter.read().import_kwh == pytest.approx(5.52, abs=1e-4)


def test_block_reads_per_transport(sim, clock, transport):
    with driver(sim, clock) as meter:
        before = sim.requests
        meter.read()
        assert sim.requests - before == (1 if transport == "tcp" else 3)  # RTU at 9600 baud skips long gaps


def test_sdm120_fills_phase_one(clock, transport):
    with SimulatedMeter("SDM120", clock=clock, load=10.0, import_kwh=7.0) as sim:
        serve(sim, transport)
        with driver(sim, clock) as meter:
            r = meter.read()
            assert r.voltage_v == (230.0, 0.0, 0.0)
            assert r.current_a == (10.0, 0.0, 0.0)
            assert r.power_w == pytest.approx(2300.0)
            clock.advance(3600)
            assert meter.read().import_kwh == pytest.approx(9.3, abs=1e-4)


def test_decoding_matches_pymodbus_convert(clock):
    """The driver's precompiled struct decode must agree with pymodbus' own float32 conversion."""
    with SimulatedMeter("SDM630", clock=clock, load=(7.0, 8.0, 9.0), import_kwh=3.0) as sim:
        host, port = sim.start_tcp().split(":")
        clock.advance(1234.5)
        with driver(sim, clock) as meter:
            r = meter.read()
        plain = ModbusTcpClient(host, port=int(port))
        try:
            rr = plain.read_input_registers(0x0000, count=0x4A, device_id=1)
            floats = plain.convert_from_registers(rr.registers, plain.DATATYPE.FLOAT32)
        finally:
            plain.close()
    assert r.voltage_v == tuple(floats[0:3]) and r.current_a == tuple(floats[3:6])
    assert r.power_w == floats[0x34 // 2] and r.import_kwh == floats[0x48 // 2]


# ---- errors: each kind is a MeterError saying what and where ----

@pytest.mark.parametrize(("mode", "kind", "register", "words"), [
    (Misbehaviour.EXCEPTION, "exception", 0x0000, "Modbus exception 4 (device failure)"),
    (Misbehaviour.SILENT, "timeout", 0x0000, "no answer within 0.3 s"),
    (Misbehaviour.GARBLED, "protocol", 0x0000, "a garbled or short answer reading"),
    (Misbehaviour.TRUNCATED, "protocol", 0x0000, "a garbled or short answer reading"),
    (Misbehaviour.NAN, "garbage", 0x0048, "import energy is nan"),
    (Misbehaviour.INF, "garbage", 0x0034, "impossible power inf W"),
    (Misbehaviour.NEGATIVE_ENERGY, "garbage", 0x0048, "negative import energy -1.0 kWh"),
    (Misbehaviour.ENERGY_BACKWARDS, "garbage", 0x0048, "went backwards (100.0 -> 99.0 kWh)"),
    (Misbehaviour.BAD_VOLTAGE, "garbage", 0x0000, "impossible voltage 9999.0 V on L1"),
])
def test_each_failure_is_a_meter_error_with_what_and_where(sim, clock, mode, kind, register, words):
    with driver(sim, clock, retries=0, timeout_s=0.3) as meter:
        meter.read()  # a good reading first: "backwards" is relative to it
        sim.misbehave(mode)
        with pytest.raises(MeterError) as info:
            meter.read()
    err = info.value
    assert (err.kind, err.register) == (kind, register)
    text = str(err)
    assert words in text
    assert f"SDM630 {sim.transport} {sim.address} device 1" in text
    assert f"register 0x{register:04X}" in text


def test_refused_connection(clock):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed at once: nothing listens there
    meter = ModbusMeter("SDM630", transport="tcp", address=f"127.0.0.1:{port}", clock=clock, retries=1,
                        timeout_s=0.2, sleep=Sleeps())
    with pytest.raises(MeterError) as info:
        meter.read()
    assert info.value.kind == "connection"
    assert f"SDM630 tcp 127.0.0.1:{port} device 1" in str(info.value)
    meter.close()


def test_missing_serial_port(clock):
    meter = ModbusMeter("SDM120", transport="rtu", address="/dev/no-such-meter", clock=clock, retries=0,
                        device_id=7, sleep=Sleeps())
    with pytest.raises(MeterError, match=r"connection: .*SDM120 rtu /dev/no-such-meter device 7"):
        meter.read()
    meter.close()


def test_wrong_device_id_is_an_error(sim, clock):
    with driver(sim, clock, device_id=9, retries=0) as meter, pytest.raises(MeterError) as info:
        meter.read()
    assert "device 9" in str(info.value)


def test_tcp_address_must_have_a_port(clock):
    with pytest.raises(ValueError, match="HOST:PORT"):
        ModbusMeter("SDM630", transport="tcp", address="127.0.0.1", clock=clock)


# ---- retries, back-off, faulted ----

def test_retries_with_doubling_back_off(sim, clock):
    sleeps = Sleeps()
    with driver(sim, clock, retries=3, sleep=sleeps) as meter:
        meter.read()
        sim.misbehave(Misbehaviour.EXCEPTION)
        before = sim.requests
        with pytest.raises(MeterError):
            meter.read()
        assert sim.requests - before == 4  # an exception ends an attempt at its first request
    assert sleeps == [0.05, 0.1, 0.2]
    assert meter.failures == 4  # every failed attempt counts


def test_back_off_is_capped(sim, clock):
    sleeps = Sleeps()
    with driver(sim, clock, retries=5, sleep=sleeps, backoff_s=0.3, backoff_max_s=1.0) as meter:
        sim.misbehave(Misbehaviour.EXCEPTION)
        with pytest.raises(MeterError):
            meter.read()
    assert sleeps == [0.3, 0.6, 1.0, 1.0, 1.0]


def test_a_retry_that_succeeds_is_a_good_read(sim, clock):
    def heal(seconds: float) -> None:
        sim.misbehave(Misbehaviour.NONE)

    with driver(sim, clock, retries=2, sleep=heal, timeout_s=0.3) as meter:
        sim.misbehave(Misbehaviour.SILENT)
        r = meter.read()
        assert r.import_kwh == pytest.approx(100.0)
        assert meter.failures == 0 and not meter.faulted


def test_faulted_after_n_failed_reads_and_cleared_by_a_good_one(sim, clock, caplog):
    caplog.set_level(logging.INFO, logger="evnet.meter")
    with driver(sim, clock, retries=0, fail_after=3) as meter:
        meter.read()
        sim.misbehave(Misbehaviour.EXCEPTION)
        for n in (1, 2):
            with pytest.raises(MeterError):
                meter.read()
            assert meter.failures == n and not meter.faulted
        with pytest.raises(MeterError):
            meter.read()
        assert meter.faulted
        faulted_lines = [r.getMessage() for r in caplog.records if "event=meter.faulted" in r.getMessage()]
        assert len(faulted_lines) == 1
        assert "cp=cp1" in faulted_lines[0] and "kind=exception" in faulted_lines[0]
        with pytest.raises(MeterError):
            meter.read()
        assert meter.faulted and meter.failures == 4
        assert sum("event=meter.faulted" in r.getMessage() for r in caplog.records) == 1  # logged once

        sim.misbehave(Misbehaviour.NONE)
        meter.read()
        assert not meter.faulted and meter.failures == 0
        assert any("event=meter.recovered" in r.getMessage() for r in caplog.records)


def test_failed_attempts_count_so_one_read_of_a_dead_meter_can_fault_it(sim, clock):
    """`fail_after` counts attempts, not reads: a silent meter is faulted after fail_after x timeout_s."""
    with driver(sim, clock, retries=2, fail_after=3, timeout_s=0.1) as meter:
        meter.read()
        sim.misbehave(Misbehaviour.SILENT)
        with pytest.raises(MeterError) as info:
            meter.read()
        assert info.value.kind == "timeout" and meter.faulted and meter.failures == 3


def test_failed_reads_are_logged_once_and_repeats_folded(sim, clock, caplog):
    caplog.set_level(logging.DEBUG, logger="evnet.meter")
    with driver(sim, clock, retries=1, fail_after=3) as meter:
        meter.read()
        sim.misbehave(Misbehaviour.EXCEPTION)
        for _ in range(20):
            with pytest.raises(MeterError):
                meter.read()
        messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert sum("event=meter.read_failed" in m for m in messages) == 1  # not 20 (or 40, once per attempt)
        assert sum("event=meter.faulted" in m for m in messages) == 1
        sim.misbehave(Misbehaviour.NONE)
        meter.read()  # recovered: the next failure is news again
        sim.misbehave(Misbehaviour.EXCEPTION)
        with pytest.raises(MeterError):
            meter.read()
        messages = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        assert sum("event=meter.read_failed" in m for m in messages) == 2


def test_last_good_reading_survives_failures(sim, clock):
    with driver(sim, clock, retries=0, timeout_s=0.3) as meter:
        good = meter.read()
        sim.misbehave(Misbehaviour.SILENT)
        with pytest.raises(MeterError):
            meter.read()
        assert meter.last_reading is good


# ---- closing ----

def test_close_releases_the_tcp_connection(clock):
    with SimulatedMeter(clock=clock) as sim:
        sim.start_tcp()
        meter = driver(sim, clock)
        meter.read()
        assert sim.wait_connections(1)
        meter.close()
        assert sim.wait_connections(0)
        with pytest.raises(MeterError, match="closed"):
            meter.read()
        meter.close()  # idempotent


def test_close_releases_the_serial_port(clock):
    with SimulatedMeter(clock=clock) as sim:
        sim.start_rtu()
        meter = driver(sim, clock)
        meter.read()
        with pytest.raises(serial.SerialException):  # the driver holds the port exclusively
            serial.Serial(sim.address, exclusive=True)
        meter.close()
        serial.Serial(sim.address, exclusive=True).close()


def test_a_meter_that_goes_away_is_a_connection_error(sim, clock):
    with driver(sim, clock, retries=1) as meter:
        meter.read()
        sim.stop()
        with pytest.raises(MeterError) as info:
            meter.read()
    assert info.value.kind == "connection"
    assert sim.address in str(info.value)
