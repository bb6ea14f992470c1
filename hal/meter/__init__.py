"""The energy meter HAL: Eastron SDM630 / SDM120 over Modbus TCP or RTU, real or simulated.

    from hal.meter import open_meter, MeterError
    meter = open_meter(cfg.meter, clock=clock, cp_id=cfg.cp_id, load=lambda: cable.current_a)
    reading = meter.read()          # MeterReading: voltage_v, current_a (3 phases), power_w, import_kwh, taken_at
    meter.faulted                   # True after cfg.meter.fail_after failed attempts in a row
    meter.close()

Files: `registers.py` (register maps, block planning), `reading.py` (`MeterReading`,
`MeterError`, the `Meter` interface), `sanity.py` (garbage detection), `driver.py`
(`ModbusMeter`), `physics.py` (energy integration), `simulated.py` (`SimulatedMeter`, a
real pymodbus server), `pty_pair.py` (`PtyPair`, a null-modem of two ptys), `factory.py`
(`open_meter`).
"""

from .driver import ModbusMeter
from .factory import open_meter
from .pty_pair import PtyPair
from .reading import Meter, MeterError, MeterReading
from .registers import MAPS, SDM120, SDM630, Block, RegisterMap, plan_blocks
from .simulated import Misbehaviour, SimulatedMeter

__all__ = [
    "MAPS", "SDM120", "SDM630", "Block", "Meter", "MeterError", "MeterReading", "Misbehaviour", "ModbusMeter",
    "PtyPair", "RegisterMap", "SimulatedMeter", "open_meter", "plan_blocks",
]
