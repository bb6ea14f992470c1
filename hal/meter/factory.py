"""`open_meter`: the meter the configuration asks for, behind the one `Meter` interface."""

from __future__ import annotations

import time
from collections.abc import Callable

from evnet.clock import Clock
from evnet.config.schema import MeterConfig

from .driver import ModbusMeter, parse_tcp_address
from .physics import Load
from .simulated import SimulatedMeter


def open_meter(cfg: MeterConfig, *, clock: Clock, cp_id: str | None = None,
               load: Callable[[], Load] | Load = 0.0,
               sleep: Callable[[float], None] = time.sleep) -> ModbusMeter:
    """Build what `cfg.backend` says.

    "real": the driver for the meter at `cfg.address` (`load` is ignored).
    "simulated": start a `SimulatedMeter` (a real pymodbus server: TCP on cfg.address's
    host and port, port 0 for a free one; RTU on a new pty pair, cfg.address ignored)
    whose current follows `load`, and return a driver talking to it over real Modbus.
    The driver owns it: `meter.simulator` reaches it, `meter.close()` stops it.
    """
    if cfg.backend == "real":
        return ModbusMeter.from_config(cfg, clock=clock, cp_id=cp_id, sleep=sleep)
    sim = SimulatedMeter(cfg.model, clock=clock, load=load, device_id=cfg.device_id, cp_id=cp_id)
    try:
        if cfg.transport == "tcp":
            host, _, port = cfg.address.rpartition(":")
            address = sim.start_tcp(host or "127.0.0.1", int(port or 0))
            parse_tcp_address(address)
        else:
            address = sim.start_rtu(cfg.baudrate, cfg.parity, cfg.stopbits)
        return ModbusMeter.from_config(cfg, clock=clock, cp_id=cp_id, address=address, sleep=sleep, simulator=sim)
    except BaseException:
        sim.stop()
        raise
