"""Meter reads per second: raw pymodbus vs this project's driver, over Modbus TCP loopback and RTU on a pty.

    python bench/meter.py [--seconds 2]

One "read" is what `ModbusMeter.read()` does for an SDM630: the block reads that cover
V L1-L3, I L1-L3, total power and import kWh (over TCP one request of 74 registers; over
RTU at 9600 baud three requests of 12 + 2 + 2 registers; at 115200 baud one of 74). The
raw figure is the same requests with a plain pymodbus client and nothing else; the driver
figure adds decoding, the sanity checks, the clock and the `MeterReading`. Both run
against the same simulated meter (a real pymodbus server in its own thread of this
process), in alternating slices so both see the same machine. Prints figures; never fails
on a time.
"""

from __future__ import annotations

import argparse
import time

from pymodbus.client import ModbusSerialClient, ModbusTcpClient

from evnet.clock import RealClock
from hal.meter import ModbusMeter, SimulatedMeter

SLICES = 4


def rate(fn, seconds: float) -> tuple[int, float]:
    """Calls of `fn` done in about `seconds`, and the time they took."""
    n, start = 0, time.perf_counter()
    deadline = start + seconds
    while True:
        for _ in range(10):
            fn()
        n += 10
        now = time.perf_counter()
        if now >= deadline:
            return n, now - start


def bench(transport: str, baudrate: int, seconds: float) -> dict:
    clock = RealClock()
    sim = SimulatedMeter("SDM630", clock=clock, load=32.0, import_kwh=1000.0)
    address = sim.start_tcp() if transport == "tcp" else sim.start_rtu(baudrate=baudrate)

    def driver() -> ModbusMeter:
        return ModbusMeter("SDM630", transport=transport, address=address, clock=clock, baudrate=baudrate,
                           timeout_s=1.0, retries=0)

    def raw_client() -> ModbusTcpClient | ModbusSerialClient:
        if transport == "tcp":
            host, port = address.rsplit(":", 1)
            return ModbusTcpClient(host, port=int(port), timeout=1.0, retries=0)
        return ModbusSerialClient(address, baudrate=baudrate, timeout=1.0, retries=0)

    blocks = driver().blocks

    def raw_slice() -> tuple[int, float]:
        client = raw_client()
        read_registers = client.read_input_registers

        def raw_read() -> None:
            for address_, count in blocks:
                read_registers(address_, count=count, device_id=1)

        try:
            raw_read()  # connect, warm up
            return rate(raw_read, seconds / SLICES)
        finally:
            client.close()

    def driver_slice() -> tuple[int, float]:
        meter = driver()
        try:
            meter.read()  # connect, warm up
            return rate(meter.read, seconds / SLICES)
        finally:
            meter.close()

    # A serial line has one master at a time: each slice opens its own client and closes it.
    totals = {"raw": [0, 0.0], "driver": [0, 0.0]}
    try:
        for _ in range(SLICES):
            for name, run in (("raw", raw_slice), ("driver", driver_slice)):
                n, t = run()
                totals[name][0] += n
                totals[name][1] += t
    finally:
        sim.stop()
    raw_rate = totals["raw"][0] / totals["raw"][1]
    drv_rate = totals["driver"][0] / totals["driver"][1]
    what = " + ".join(str(b.count) for b in blocks)
    return {"transport": transport if transport == "tcp" else f"rtu {baudrate}", "requests": len(blocks),
            "registers": what, "raw": raw_rate, "driver": drv_rate, "ratio": drv_rate / raw_rate}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="measuring time per figure (default 2 s)")
    args = parser.parse_args(argv)
    rows = [bench("tcp", 9600, args.seconds), bench("rtu", 9600, args.seconds), bench("rtu", 115200, args.seconds)]
    print("SDM630 reads per second (one read = the requests below; simulated meter in-process)")
    print(f"{'transport':<12} {'requests':>8} {'registers':>12} {'raw pymodbus':>13} {'driver':>9} {'driver/raw':>11}")
    for r in rows:
        print(f"{r['transport']:<12} {r['requests']:>8} {r['registers']:>12} {r['raw']:>13,.0f} {r['driver']:>9,.0f}"
              f" {r['ratio']:>10.1%}")
    tcp = rows[0]
    print(f"target: >= 2,000 driver reads/s over TCP (got {tcp['driver']:,.0f}); "
          f"driver within 20 % of raw (got {tcp['ratio'] - 1:+.1%} over TCP)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
