"""One charge point as a driver and an operator see it: plug in, charge, unplug, pay what the meter says."""

from __future__ import annotations

import re
import signal

import pytest
from pymodbus.client import ModbusTcpClient

IMPORT_KWH = 0x0048


def read_meter_kwh(address: str) -> float:
    """Import kWh from the charge point's meter with an ordinary Modbus client, not evnet's driver."""
    host, _, port = address.rpartition(":")
    client = ModbusTcpClient(host, port=int(port), timeout=2)
    try:
        assert client.connect(), f"no meter at {address}"
        rr = client.read_input_registers(IMPORT_KWH, count=2, device_id=1)
        assert not rr.isError(), rr
        return client.convert_from_registers(rr.registers, client.DATATYPE.FLOAT32)
    finally:
        client.close()


def test_a_session_from_plug_to_ticket(charge_point) -> None:
    cp = charge_point
    assert cp.next_message("status")["status"] == "AVAILABLE"
    before = read_meter_kwh(cp.cfg.meter.address)

    # A car without ISO 15118 waits out the charge point's 5 % offer (1 s real at --speed 60) before charging.
    ev_line = cp.plug_ev("plug; wait 90; charge 32; wait 600; stop; wait 30; unplug")

    assert cp.next_message("status", status="CHARGING")["price_eur_kwh"] == pytest.approx(0.40)
    live = cp.next_message("telemetry", session=cp.next_message("telemetry")["session"])
    assert live["driver"] == "hil-driver"
    ticket = cp.next_message("telemetry", final=True)["ticket"]
    assert cp.next_message("status")["status"] == "AVAILABLE"
    after = read_meter_kwh(cp.cfg.meter.address)

    # Ten minutes at 32 A on three phases of 230 V: 3.68 kWh, as the meter counted it.
    assert ticket["kwh"] == pytest.approx(after - before, abs=0.002)
    assert ticket["kwh"] == pytest.approx(32 * 3 * 230 * 600 / 3.6e6, rel=0.03)
    assert ticket["cost_eur"] == pytest.approx(round(ticket["kwh"] * 0.40, 2), abs=0.006)
    delivered = float(re.search(r"delivered ([\d.]+) kWh", ev_line).group(1))  # what the car counted
    assert delivered == pytest.approx(ticket["kwh"], rel=0.03)
    if cp.proc is not None:
        assert any(line.startswith("Ticket ") and f"{ticket['kwh']:.3f} kWh" in line for line in cp.stdout)


def test_the_broker_hears_disconnected_when_the_engine_dies(charge_point) -> None:
    cp = charge_point
    if cp.proc is None:
        pytest.skip("kills the engine process: not on a rig")
    assert cp.next_message("status")["status"] == "AVAILABLE"
    cp.proc.send_signal(signal.SIGKILL)
    cp.proc.wait(10)
    assert cp.next_message("status", status="DISCONNECTED")["cp"] == "hil1"
