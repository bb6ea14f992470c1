"""The simulated meter is a real Modbus server: ordinary clients, not this project's driver, read it."""

from __future__ import annotations

import shutil
import socket
import struct
import subprocess
import threading

import pytest
from pymodbus.client import ModbusSerialClient, ModbusTcpClient

from evnet.clock import ManualClock, RealClock
from hal.meter import SimulatedMeter


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def test_plain_pymodbus_reads_import_kwh_at_0x0048(clock):
    with SimulatedMeter("SDM630", clock=clock, load=32.0) as sim:
        sim.start_tcp()
        clock.advance(3600)
        client = ModbusTcpClient("127.0.0.1", port=sim.port)
        try:
            assert client.connect()
            rr = client.read_input_registers(0x0048, count=2, device_id=1)
            assert not rr.isError()
            kwh = client.convert_from_registers(rr.registers, client.DATATYPE.FLOAT32)
        finally:
            client.close()
    assert kwh == pytest.approx(22.08, abs=1e-4)


def test_plain_pymodbus_over_rtu(clock):
    with SimulatedMeter("SDM120", clock=clock, load=10.0, import_kwh=1.0) as sim:
        path = sim.start_rtu(baudrate=9600)
        clock.advance(3600)
        client = ModbusSerialClient(path, baudrate=9600, timeout=1)
        try:
            rr = client.read_input_registers(0x0048, count=2, device_id=1)
            assert not rr.isError()
            kwh = client.convert_from_registers(rr.registers, client.DATATYPE.FLOAT32)
        finally:
            client.close()
    assert kwh == pytest.approx(3.3, abs=1e-4)


def test_raw_modbus_tcp_bytes(clock):
    """What mbpoll sends, by hand: MBAP header + FC 4 request for 2 registers at 0x0048."""
    with SimulatedMeter(clock=clock, import_kwh=42.5) as sim:
        sim.start_tcp()
        with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as s:
            s.sendall(struct.pack(">HHHBBHH", 0x1234, 0, 6, 1, 4, 0x0048, 2))
            answer = b""
            while len(answer) < 13:
                chunk = s.recv(64)
                assert chunk, "server closed the connection"
                answer += chunk
    tid, proto, length, unit, fc, nbytes = struct.unpack(">HHHBBB", answer[:9])
    assert (tid, proto, length, unit, fc, nbytes) == (0x1234, 0, 7, 1, 4, 4)
    assert struct.unpack(">f", answer[9:13])[0] == 42.5


@pytest.mark.skipif(shutil.which("mbpoll") is None, reason="mbpoll is not installed (apt-get install mbpoll)")
def test_mbpoll_reads_import_kwh(clock):
    with SimulatedMeter(clock=clock, import_kwh=42.5) as sim:
        sim.start_tcp()
        out = subprocess.run(["mbpoll", "-m", "tcp", "-p", str(sim.port), "-a", "1", "-0", "-t", "3:float", "-B",
                              "-r", str(0x0048), "-c", "1", "-1", "127.0.0.1"],
                             capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert "[72]: \t42.5\n" in out.stdout  # register 72 = 0x0048, 0-based (-0), big-endian words (-B)


def test_writes_are_refused(clock):
    with SimulatedMeter(clock=clock) as sim:
        sim.start_tcp()
        client = ModbusTcpClient("127.0.0.1", port=sim.port)
        try:
            rr = client.write_register(0x0048, 7, device_id=1)
        finally:
            client.close()
    assert rr.isError()


def test_start_and_stop_leave_nothing_behind(clock):
    threads_before = set(threading.enumerate())
    sim = SimulatedMeter(clock=clock)
    sim.start_tcp()
    port = sim.port
    client = ModbusTcpClient("127.0.0.1", port=port)
    assert client.connect()
    client.read_input_registers(0, count=2, device_id=1)
    sim.stop()
    client.close()
    assert not set(threading.enumerate()) - threads_before
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    sim.stop()  # idempotent


def test_rtu_start_and_stop_leave_nothing_behind(clock):
    threads_before = set(threading.enumerate())
    with SimulatedMeter(clock=clock, load=5.0) as sim:
        path = sim.start_rtu()
        client = ModbusSerialClient(path, timeout=1)
        assert not client.read_input_registers(6, count=2, device_id=1).isError()
        client.close()
    assert not set(threading.enumerate()) - threads_before


def test_cannot_start_twice(clock):
    with SimulatedMeter(clock=clock) as sim:
        sim.start_tcp()
        with pytest.raises(RuntimeError, match="already serving"):
            sim.start_tcp()


def test_bad_models_and_loads_are_refused(clock):
    with pytest.raises(ValueError, match="SDM630"):
        SimulatedMeter("SDM999", clock=clock)
    with pytest.raises(ValueError, match="load"):
        SimulatedMeter(clock=clock, load=-3.0)
    sim = SimulatedMeter(clock=clock)
    with pytest.raises(ValueError, match="load"):
        sim.set_load((1.0, 2.0))


def test_energy_counts_each_interval_at_its_own_load(clock):
    sim = SimulatedMeter(clock=clock, load=32.0, import_kwh=10.0)
    clock.advance(1800)
    sim.set_load(16.0)
    clock.advance(1800)
    sim.set_load(0.0)
    clock.advance(3600)
    assert sim.energy_kwh == pytest.approx(10.0 + 11.04 + 5.52)
    assert sim.power_w == 0.0


def test_energy_accrues_in_domain_time_of_a_fast_real_clock():
    """With RealClock(speed=3600) a real millisecond is 3.6 domain seconds: energy follows domain time."""
    clock = RealClock(speed=3600)
    t0 = clock.monotonic()
    sim = SimulatedMeter(clock=clock, load=32.0)
    t1 = clock.monotonic()
    while clock.monotonic() < t1 + 36:  # ~10 ms of real time
        pass
    t2 = clock.monotonic()
    kwh = sim.energy_kwh
    t3 = clock.monotonic()
    per_s = 22_080.0 / 3_600_000.0
    assert (t2 - t1) * per_s <= kwh <= (t3 - t0) * per_s


def test_a_broken_load_callable_makes_the_meter_answer_an_exception(clock):
    broken = {"now": False}

    def load() -> float:
        if broken["now"]:
            raise RuntimeError("cable gone")
        return 5.0

    with SimulatedMeter(clock=clock, load=load) as sim:
        sim.start_tcp()
        broken["now"] = True
        client = ModbusTcpClient("127.0.0.1", port=sim.port)
        try:
            rr = client.read_input_registers(0x0048, count=2, device_id=1)
        finally:
            client.close()
    assert rr.isError() and rr.exception_code == 4  # device failure
