"""Eastron SDM630 / SDM120 input-register maps, and how to read them in few requests.

Every value is an IEEE-754 float32 in two input registers (function code 4), high word
first. On RS-485 at 9600 baud each request costs about 30 ms of turnaround while each
register costs about 2 ms on the wire, so registers are read in blocks: two wanted values
share one request when the registers between them cost less on the wire than a request
(`max_gap_registers`). Over TCP a request costs far more than a register: one block.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

FLOAT_WORDS = 2  # registers per float32
MAX_REGISTERS_PER_REQUEST = 125  # Modbus limit for FC 3/4
REQUEST_COST_S = 0.030  # turnaround of one RS-485 request to an Eastron meter, measured by others at 9600 baud


@dataclass(frozen=True)
class RegisterMap:
    """Where a model keeps its values (register addresses, each the first of a float32 pair)."""

    model: str
    phases: int
    voltage: tuple[int, ...]  # V, per phase present (L-N)
    current: tuple[int, ...]  # A, per phase present
    phase_power: tuple[int, ...]  # W, per phase present
    power: int  # W, total active power
    frequency: int  # Hz
    import_kwh: int
    export_kwh: int
    total_kwh: int  # import + export (not import alone)

    def reading_registers(self) -> tuple[int, ...]:
        """The registers a `MeterReading` is built from, in reading order: V..., I..., P, import kWh."""
        return (*self.voltage, *self.current, self.power, self.import_kwh)


SDM630 = RegisterMap(
    model="SDM630", phases=3,
    voltage=(0x0000, 0x0002, 0x0004), current=(0x0006, 0x0008, 0x000A), phase_power=(0x000C, 0x000E, 0x0010),
    power=0x0034, frequency=0x0046, import_kwh=0x0048, export_kwh=0x004A, total_kwh=0x0156,
)

# The SDM120 is single-phase: its total active power is the phase power at 0x000C (it has no 0x0034).
SDM120 = RegisterMap(
    model="SDM120", phases=1,
    voltage=(0x0000,), current=(0x0006,), phase_power=(0x000C,),
    power=0x000C, frequency=0x0046, import_kwh=0x0048, export_kwh=0x004A, total_kwh=0x0156,
)

MAPS: dict[str, RegisterMap] = {m.model: m for m in (SDM630, SDM120)}


class Block(NamedTuple):
    """One read request: `count` registers from `address`."""

    address: int
    count: int


def max_gap_registers(transport: str, baudrate: int = 9600, parity: str = "N", stopbits: int = 1) -> int:
    """How many unwanted registers are worth reading to save one request on this transport."""
    if transport == "tcp":
        return MAX_REGISTERS_PER_REQUEST
    bits_per_char = 1 + 8 + (parity != "N") + stopbits
    seconds_per_register = 2 * bits_per_char / baudrate
    return int(REQUEST_COST_S / seconds_per_register)


def plan_blocks(registers: tuple[int, ...] | list[int], max_gap: int,
                max_count: int = MAX_REGISTERS_PER_REQUEST) -> tuple[Block, ...]:
    """The fewest blocks covering every float32 at `registers` with gaps of at most `max_gap` registers."""
    blocks: list[Block] = []
    for address in sorted(set(registers)):
        end = address + FLOAT_WORDS
        if blocks:
            last = blocks[-1]
            gap = address - (last.address + last.count)
            if gap <= max_gap and end - last.address <= max_count:
                blocks[-1] = Block(last.address, max(last.count, end - last.address))
                continue
        blocks.append(Block(address, FLOAT_WORDS))
    return tuple(blocks)
