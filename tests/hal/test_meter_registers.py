"""Register maps and block planning: few requests, never a needed register left out."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.meter.registers import (
    MAX_REGISTERS_PER_REQUEST,
    SDM120,
    SDM630,
    Block,
    max_gap_registers,
    plan_blocks,
)


def test_sdm630_map_is_eastrons():
    assert SDM630.voltage == (0x0000, 0x0002, 0x0004)
    assert SDM630.current == (0x0006, 0x0008, 0x000A)
    assert SDM630.phase_power[0] == 0x000C
    assert (SDM630.power, SDM630.frequency, SDM630.import_kwh, SDM630.export_kwh, SDM630.total_kwh) == (
        0x0034, 0x0046, 0x0048, 0x004A, 0x0156)


def test_sdm120_is_single_phase_with_power_at_phase_register():
    assert SDM120.phases == 1
    assert SDM120.voltage == (0x0000,) and SDM120.current == (0x0006,)
    assert SDM120.power == 0x000C  # the SDM120 has no total system power register at 0x0034
    assert SDM120.import_kwh == 0x0048
    assert SDM120.reading_registers() == (0x0000, 0x0006, 0x000C, 0x0048)


def test_tcp_reads_a_whole_sdm630_reading_in_one_request():
    assert plan_blocks(SDM630.reading_registers(), max_gap_registers("tcp")) == (Block(0x0000, 0x004A),)


def test_rs485_at_9600_skips_long_gaps():
    gap = max_gap_registers("rtu", 9600, "N", 1)
    assert gap == 14  # 30 ms of request turnaround buys 14 registers at 9600 8N1
    assert plan_blocks(SDM630.reading_registers(), gap) == (Block(0x0000, 12), Block(0x0034, 2), Block(0x0048, 2))
    assert plan_blocks(SDM120.reading_registers(), gap) == (Block(0x0000, 14), Block(0x0048, 2))


def test_faster_baud_rates_merge_more():
    assert max_gap_registers("rtu", 115200) > max_gap_registers("rtu", 9600) > max_gap_registers("rtu", 2400)
    assert max_gap_registers("rtu", 9600, "E", 2) < max_gap_registers("rtu", 9600, "N", 1)
    assert plan_blocks(SDM630.reading_registers(), max_gap_registers("rtu", 115200)) == (Block(0, 0x4A),)


def test_block_size_is_capped_by_the_modbus_limit():
    blocks = plan_blocks([0, 200], max_gap=1000)
    assert blocks == (Block(0, 2), Block(200, 2))


@given(st.lists(st.integers(0, 2000), min_size=1, max_size=30), st.integers(0, 200))
def test_every_float_is_inside_one_block(registers, gap):
    blocks = plan_blocks(registers, gap)
    for reg in registers:
        assert any(b.address <= reg and reg + 2 <= b.address + b.count for b in blocks)
    for b in blocks:
        assert 2 <= b.count <= MAX_REGISTERS_PER_REQUEST
    for a, b in zip(blocks, blocks[1:], strict=False):
        assert a.address + a.count <= b.address  # sorted, no overlap


@pytest.mark.parametrize("gap", [0, 14, 125])
def test_no_block_starts_or_ends_on_an_unwanted_register(gap):
    wanted = SDM630.reading_registers()
    for b in plan_blocks(wanted, gap):
        assert b.address in wanted and b.address + b.count - 2 in wanted
