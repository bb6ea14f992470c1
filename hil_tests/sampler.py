"""What a clamp meter on each cable of the rig would show: every meter's current and energy, read every 100 ms
by an ordinary pymodbus client, independent of what evnet believes. And `wait_for`, the rigs' poll with a
deadline (the state is in other processes: there is no event to await).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from pymodbus.client import ModbusTcpClient

SAMPLE_S = 0.1
CURRENT_L1, IMPORT_KWH = 0x0006, 0x0048  # SDM630 input registers (hal/meter/registers.py)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` every 20 ms (the state is in other processes: nothing to await); fail naming `what`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Sample:
    t: float                      # time.monotonic() of the read
    amps: dict[str, float | None]  # each meter's L1 current; None: the read failed
    kwh: dict[str, float | None]

    def total(self) -> float:
        return sum(a for a in self.amps.values() if a is not None)


class Sampler:
    """Every meter's current every `period` s, by an ordinary Modbus client: `samples`, newest last."""

    def __init__(self, meters: dict[str, str], period: float = SAMPLE_S) -> None:
        self.meters = meters
        self.period = period
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._clients: dict[str, ModbusTcpClient] = {}
        self._thread = threading.Thread(target=self._run, name="meter-sampler", daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)
        for client in self._clients.values():
            client.close()

    def since(self, t: float) -> list[Sample]:
        with self._lock:
            return [s for s in self.samples if s.t >= t]

    def latest(self) -> Sample | None:
        with self._lock:
            return self.samples[-1] if self.samples else None

    def wait(self, predicate: Callable[[Sample], bool], timeout: float, what: str, *,
             since: float | None = None) -> Sample:
        """The first sample from `since` (time.monotonic(); default: now) on for which `predicate` holds."""
        start = time.monotonic() if since is None else since
        wait_for(lambda: any(predicate(s) for s in self.since(start)), timeout, what)
        return next(s for s in self.since(start) if predicate(s))

    def _read(self, cp: str) -> tuple[float | None, float | None]:
        client = self._clients.get(cp)
        if client is None:
            host, _, port = self.meters[cp].rpartition(":")
            client = self._clients[cp] = ModbusTcpClient(host, port=int(port), timeout=0.2, retries=0)
        try:
            if not client.connected and not client.connect():
                return None, None
            amps = client.read_input_registers(CURRENT_L1, count=2, device_id=1)
            kwh = client.read_input_registers(IMPORT_KWH, count=2, device_id=1)
            if amps.isError() or kwh.isError():
                return None, None
            f32 = client.DATATYPE.FLOAT32
            return client.convert_from_registers(amps.registers, f32), client.convert_from_registers(kwh.registers, f32)
        except Exception:  # noqa: BLE001 - a meter whose process was killed: no sample, try again next time
            client.close()
            return None, None

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            t = time.monotonic()
            reads = {cp: self._read(cp) for cp in self.meters}
            with self._lock:
                self.samples.append(Sample(t, {cp: r[0] for cp, r in reads.items()},
                                           {cp: r[1] for cp, r in reads.items()}))
            next_t += self.period
            self._stop.wait(max(0.0, next_t - time.monotonic()))
