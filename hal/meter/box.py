"""The meter on a rig's cable: a process of its own that outlives the charge point's, as an SDM630 on a real
cable keeps counting while the Pi reboots.

    python -m hal.meter.box --evse tcp://127.0.0.1:7311 --listen 127.0.0.1:0 --modbus 127.0.0.1:0

prints `ready CABLE_URL MODBUS_ADDRESS` on stdout once both listen (port 0: a free one, chosen by the kernel
while binding, so no other process can take it in between); its log goes to stderr.

The EV plugs into `--listen`; the box passes the cable's updates both ways, unchanged, to the charge point
at `--evse` (evnet/tcp_proxy.py), and reads from them the current the EV draws: the current through
the box while the EV is connected to a live charge point, 0 A once either end is gone (a killed or frozen
charge point's EV reads the cable as unplugged and stops drawing; the box sees the cable close). It serves
that current, and the energy it integrates, as the simulated SDM630 of hal.meter (a real pymodbus server,
the same registers `evnet cp` reads with `meter.backend = "real"`) on `--modbus`, at `--speed` domain
seconds per real second like the charge point's clock.

Why on the cable and not in the EV emulator: the meter belongs to the charge point's side (an `evnet ev`
restarts, plugs out, or is another car, and the register must keep its count), and what it measures is what
flows through the cable. What it cannot see: the charge point's contactor and its monitor's safety relay,
both mock pins inside their processes on a laptop. It counts what the EV draws; the EV draws only what the
PWM offers, and the engine offers PWM only with the contactor closing (pilot_sm), so the two differ for the
milliseconds between the EV's state C and the contactor's close.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys

from evnet.clock import RealClock
from evnet.logs import event_logger, setup_logging
from evnet.tcp_proxy import TcpProxy
from hal.meter import SimulatedMeter
from hal.pilot.cable_tcp import parse_cable_url
from hal.pilot.cable_updates import MAX_LINE, UpdateError, decode_line, parse_current


class CableTap:
    """The current one EV connection says it draws (lines of hal.pilot.cable_updates), 0 once it closed."""

    def __init__(self, live: set[CableTap]) -> None:
        self.amps = 0.0
        self.dropped = 0  # lines that were not a valid update (the charge point drops them too)
        self._buf = b""
        self._live = live
        live.add(self)

    def upstream(self, data: bytes) -> None:
        *lines, self._buf = (self._buf + data).split(b"\n")
        if len(self._buf) > MAX_LINE:
            self._buf, self.dropped = b"", self.dropped + 1
        for line in lines:
            try:
                kind, body = decode_line(line)
                if kind == "current":
                    self.amps = parse_current(body)
            except UpdateError:
                self.dropped += 1

    def closed(self) -> None:
        self.amps = 0.0
        self._live.discard(self)


def host_port(address: str) -> tuple[str, int]:
    host, _, port = address.rpartition(":")
    return host or "127.0.0.1", int(port)


async def serve(args: argparse.Namespace) -> None:
    log = event_logger("meter_box", cp=args.cp)
    live: set[CableTap] = set()
    meter = SimulatedMeter("SDM630", clock=RealClock(args.speed), cp_id=args.cp,
                           load=lambda: sum(tap.amps for tap in list(live)))  # the charge point refuses a 2nd EV
    host, port = host_port(args.listen)
    proxy = await TcpProxy(parse_cable_url(args.evse), host=host, port=port, tap=lambda: CableTap(live)).start()
    meter.start_tcp(*host_port(args.modbus))
    log.info("meter_box.ready", cable=f"tcp://{host}:{proxy.port}", evse=args.evse, modbus=meter.address)
    print(f"ready tcp://{host}:{proxy.port} {meter.address}", flush=True)  # the ports, when 0 asked for free ones
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await proxy.close()
        meter.stop()
        log.info("meter_box.stopped", import_kwh=round(meter.energy_kwh, 4))


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m hal.meter.box", description=__doc__.splitlines()[0])
    p.add_argument("--evse", required=True, help="the charge point's cable, tcp://HOST:PORT")
    p.add_argument("--listen", default="127.0.0.1:0", help="HOST:PORT the EV plugs into")
    p.add_argument("--modbus", default="127.0.0.1:0", help="HOST:PORT of the meter's Modbus TCP server")
    p.add_argument("--speed", type=float, default=1.0, help="domain seconds per real second (energy)")
    p.add_argument("--cp", help="the charge point's id, for the log")
    args = p.parse_args(argv)
    setup_logging("INFO")
    asyncio.run(serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
