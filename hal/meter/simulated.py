"""The simulated meter: a real pymodbus server whose registers follow the load.

It serves an SDM630 or SDM120 register map over Modbus TCP (port 0: the kernel picks a
free port) or Modbus RTU on a pty pair, from its own thread running its own asyncio loop,
so any Modbus client — this project's driver, plain pymodbus, mbpoll — reads it like the
real thing. Current and power follow `load` (amps per phase; the caller decides that an
open contactor means 0 A), and energy is integrated over the INJECTED clock, so with
`RealClock(speed=60)` a kWh accrues 60 times faster and with `ManualClock` only when the
test advances time. `misbehave()` makes it answer garbage, Modbus exceptions or nothing,
so error paths are tested against a real server, not a mock.
"""

from __future__ import annotations

import asyncio
import enum
import math
import struct
import threading
from collections.abc import Callable

from pymodbus.constants import ExcCodes
from pymodbus.framer import FramerType
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from evnet.clock import Clock
from evnet.logs import event_logger

from .physics import EnergyIntegrator, Load, phase_currents
from .pty_pair import PtyPair
from .registers import MAPS, RegisterMap

REGISTER_SPAN = 0x0158  # 0x0000 .. 0x0157: every register of both maps, readable in any block
_FLOAT = struct.Struct(">f")
_WORDS = struct.Struct(">HH")


class Misbehaviour(enum.Enum):
    """What the simulated meter does wrong, for tests of the driver's error paths."""

    NONE = "none"
    EXCEPTION = "exception"  # answers every request with Modbus exception 4 (device failure)
    SILENT = "silent"  # receives requests and never answers
    GARBLED = "garbled"  # answers with every byte inverted (noise on the line, a wrong baud rate)
    TRUNCATED = "truncated"  # answers with the first half of the frame only
    NAN = "nan"  # import energy reads NaN
    INF = "inf"  # total power reads +inf
    NEGATIVE_ENERGY = "negative_energy"  # import energy reads -1 kWh
    ENERGY_BACKWARDS = "energy_backwards"  # import energy reads 1 kWh less than the truth
    BAD_VOLTAGE = "bad_voltage"  # L1 voltage reads 9999 V


class SimulatedMeter:
    """A Modbus server that behaves like an Eastron meter on a charge point."""

    def __init__(self, model: str = "SDM630", *, clock: Clock, load: Callable[[], Load] | Load = 0.0,
                 device_id: int = 1, voltage_v: float = 230.0, frequency_hz: float = 50.0,
                 import_kwh: float = 0.0, cp_id: str | None = None, tick_s: float = 0.1) -> None:
        if model not in MAPS:
            raise ValueError(f"unknown meter model {model!r} (expected one of {', '.join(MAPS)})")
        self.map: RegisterMap = MAPS[model]
        self.model = model
        self.device_id = device_id
        self.frequency_hz = frequency_hz
        self._clock = clock
        self._tick_s = tick_s
        self._log = event_logger("meter", cp=cp_id, sim=model)
        self._lock = threading.Lock()
        self._load_fn = self._as_callable(load)
        self._energy = EnergyIntegrator(self.map.phases, voltage_v, clock.monotonic(), import_kwh)
        self._energy.advance(clock.monotonic(), self._load_fn())
        self._mode = Misbehaviour.NONE
        self.requests = 0  # read requests that reached the device (answered or not)
        self.connections = 0  # clients connected right now (TCP; 1 while an RTU server has its port open)
        self._conn_cond = threading.Condition()
        self.transport: str | None = None
        self.address: str | None = None  # what a client connects to: "HOST:PORT" or a serial path
        self.port: int | None = None
        self._pty: PtyPair | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._tick_task: asyncio.Task | None = None
        self._start_error: BaseException | None = None

    # ---- what tests and the engine's simulation change ----

    @staticmethod
    def _as_callable(load: Callable[[], Load] | Load) -> Callable[[], Load]:
        if callable(load):
            return load
        phase_currents(load, 3)  # reject a bad constant now, not on the server thread
        return lambda: load

    def set_load(self, load: Callable[[], Load] | Load) -> None:
        """Change what the load is; energy up to now is counted at the old load."""
        fn = self._as_callable(load)
        with self._lock:
            self._energy.advance(self._clock.monotonic(), self._load_fn())
            self._load_fn = fn
            self._energy.advance(self._clock.monotonic(), fn())

    def misbehave(self, mode: Misbehaviour | str) -> None:
        """Answer wrongly from now on (`Misbehaviour.NONE` to behave again)."""
        self._mode = Misbehaviour(mode)
        self._log.info("meter_sim.misbehave", mode=self._mode.value)

    @property
    def energy_kwh(self) -> float:
        """The true import energy at the clock's now (float64; the registers hold float32)."""
        with self._lock:
            self._energy.advance(self._clock.monotonic(), self._load_fn())
            return self._energy.import_kwh

    @property
    def power_w(self) -> float:
        with self._lock:
            return self._energy.power_w

    # ---- serving ----

    def _device(self) -> SimDevice:
        data = SimData(0, count=REGISTER_SPAN, values=0, datatype=DataType.REGISTERS)
        return SimDevice(self.device_id, simdata=[data], action=self._on_access)

    def _trace_packet(self, sending: bool, data: bytes) -> bytes:
        if not sending:
            return data
        mode = self._mode
        if mode is Misbehaviour.SILENT:
            return b""
        if mode is Misbehaviour.GARBLED:
            return bytes(b ^ 0xFF for b in data)
        if mode is Misbehaviour.TRUNCATED:
            return data[: len(data) // 2]
        return data

    def _trace_connect(self, connected: bool) -> None:
        with self._conn_cond:
            self.connections += 1 if connected else -1
            self._conn_cond.notify_all()

    def wait_connections(self, count: int, timeout: float = 5.0) -> bool:
        """Block until exactly `count` clients are connected (False after `timeout` real seconds)."""
        with self._conn_cond:
            return self._conn_cond.wait_for(lambda: self.connections == count, timeout)

    def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Serve Modbus TCP on `host:port` (0: a free port); returns "HOST:PORT" to connect to."""
        device = self._device()
        self._start(lambda: ModbusTcpServer(device, address=(host, port), trace_packet=self._trace_packet,
                                            trace_connect=self._trace_connect))
        assert self._server is not None
        self.port = self._server.transport.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.transport, self.address = "tcp", f"{host}:{self.port}"
        self._log.info("meter_sim.started", transport="tcp", address=self.address, device_id=self.device_id)
        return self.address

    def start_rtu(self, baudrate: int = 9600, parity: str = "N", stopbits: int = 1) -> str:
        """Serve Modbus RTU on one end of a new pty pair; returns the other end's path."""
        device = self._device()
        self._pty = PtyPair(name=f"meter-sim-pty-{self.model}")
        path = self._pty.a
        try:
            self._start(lambda: ModbusSerialServer(device, framer=FramerType.RTU, port=path, baudrate=baudrate,
                                                   parity=parity, stopbits=stopbits,
                                                   trace_packet=self._trace_packet,
                                                   trace_connect=self._trace_connect))
        except BaseException:
            self._pty.close()
            self._pty = None
            raise
        self.transport, self.address = "rtu", self._pty.b
        self._log.info("meter_sim.started", transport="rtu", address=self.address, device_id=self.device_id)
        return self.address

    def _start(self, make: Callable[[], ModbusTcpServer | ModbusSerialServer]) -> None:
        if self._thread is not None:
            raise RuntimeError("this simulated meter is already serving")
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(make, ready), name=f"meter-sim-{self.model}",
                                        daemon=True)
        self._thread.start()
        if not ready.wait(timeout=10) or self._start_error is not None:
            self._thread.join(timeout=5)
            self._thread = None
            raise RuntimeError(f"simulated meter could not start: {self._start_error!r}") from self._start_error

    def _run(self, make: Callable[[], ModbusTcpServer | ModbusSerialServer], ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self._loop = loop
        try:
            loop.run_until_complete(self._serve(make))
        except BaseException as exc:  # reported to the starting thread
            self._start_error = exc
            asyncio.set_event_loop(None)
            loop.close()
            ready.set()
            return
        ready.set()
        try:
            loop.run_forever()
        finally:
            pending = asyncio.all_tasks(loop)
            for task in pending:
                task.cancel()
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            asyncio.set_event_loop(None)
            loop.close()

    async def _serve(self, make: Callable[[], ModbusTcpServer | ModbusSerialServer]) -> None:
        self._server = make()
        await self._server.serve_forever(background=True)
        self._tick_task = asyncio.get_running_loop().create_task(self._tick())

    async def _tick(self) -> None:
        """Sample the load now and then, so energy stays right between sparse reads."""
        failing = False
        while True:
            await asyncio.sleep(self._tick_s)
            try:
                with self._lock:
                    self._energy.advance(self._clock.monotonic(), self._load_fn())
            except Exception as exc:  # a broken load callable: reads answer Modbus exception 4 meanwhile
                if not failing:
                    self._log.warning("meter_sim.load_failed", error=repr(exc))
                failing = True
            else:
                failing = False

    async def _on_access(self, function_code: int, start_address: int, address: int, count: int,
                         registers: list[int], set_values: list[int] | list[bool] | None) -> ExcCodes | None:
        """pymodbus calls this before answering any request; it writes fresh values in place."""
        if set_values is not None:
            return ExcCodes.ILLEGAL_FUNCTION  # a meter's measurements are read-only
        self.requests += 1
        mode = self._mode
        if mode is Misbehaviour.EXCEPTION:
            return ExcCodes.DEVICE_FAILURE
        with self._lock:
            self._energy.advance(self._clock.monotonic(), self._load_fn())
            e = self._energy
            values = self._values(e, mode)
        for reg, value in values:
            registers[reg - start_address], registers[reg - start_address + 1] = _WORDS.unpack(_FLOAT.pack(value))
        return None

    def _values(self, e: EnergyIntegrator, mode: Misbehaviour) -> list[tuple[int, float]]:
        m = self.map
        out: list[tuple[int, float]] = []
        for i in range(m.phases):
            v, a = e.voltage_v[i], e.current_a[i]
            out += [(m.voltage[i], v), (m.current[i], a), (m.phase_power[i], v * a)]
        kwh, power = e.import_kwh, e.power_w
        if mode is Misbehaviour.NAN:
            kwh = math.nan
        elif mode is Misbehaviour.INF:
            power = math.inf
        elif mode is Misbehaviour.NEGATIVE_ENERGY:
            kwh = -1.0
        elif mode is Misbehaviour.ENERGY_BACKWARDS:
            kwh -= 1.0
        elif mode is Misbehaviour.BAD_VOLTAGE:
            out[0] = (m.voltage[0], 9999.0)
        out += [(m.power, power), (m.frequency, self.frequency_hz), (m.import_kwh, kwh),
                (m.export_kwh, 0.0), (m.total_kwh, kwh)]
        return out

    # ---- stopping ----

    def stop(self) -> None:
        """Stop serving, close every connection, the listening port, the pty pair and the thread."""
        thread, loop = self._thread, self._loop
        if thread is not None and loop is not None and thread.is_alive():
            try:
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout=5)
            finally:
                loop.call_soon_threadsafe(loop.stop)
                thread.join(timeout=5)
            self._log.info("meter_sim.stopped", transport=self.transport, address=self.address)
        self._thread = None
        if self._pty is not None:
            self._pty.close()
            self._pty = None

    async def _shutdown(self) -> None:
        if self._tick_task is not None:
            self._tick_task.cancel()
        if self._server is not None:
            listener = self._server.transport
            await self._server.shutdown()
            if isinstance(listener, asyncio.base_events.Server):
                listener.close()
                await listener.wait_closed()
        for _ in range(3):  # let transports run their close callbacks
            await asyncio.sleep(0)

    def __enter__(self) -> SimulatedMeter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
