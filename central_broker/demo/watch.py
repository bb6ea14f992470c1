"""What the demo sees from outside, as a site's owner would: every meter by Modbus, the site by MQTT.

`Sampler` reads each meter's current and energy register with an ordinary pymodbus client every
100 ms (real time): what a clamp meter on each cable would show, independent of what evnet believes.
`SiteWatch` records, with the real time it arrived, what the site says on the broker: the leader's
state, every final telemetry (its ticket), every monitor event and status change.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pymodbus.client import ModbusTcpClient

from evnet.config.schema import MqttConfig
from evnet.mqtt import MqttLink
from evnet.mqtt.payload import PayloadError, decode_payload
from evnet.topics import SiteTopics

SAMPLE_S = 0.1
CURRENT_L1, IMPORT_KWH = 0x0006, 0x0048  # SDM630 input registers (hal/meter/registers.py)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll `predicate` every 20 ms (the state is in other processes: nothing to await); fail naming `what`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.02)


@dataclass
class Sample:
    t: float                      # time.monotonic() of the read
    amps: dict[str, float | None]  # each meter's L1 current; None: it did not answer
    kwh: dict[str, float | None]

    def total(self) -> float:
        return sum(a for a in self.amps.values() if a is not None)


class Sampler:
    """Every meter's current every `period` s, by an ordinary Modbus client: `samples`, newest last."""

    def __init__(self, meters: dict[str, str], period: float = SAMPLE_S) -> None:
        self.meters = meters  # cp -> "host:port"
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
        except Exception:  # noqa: BLE001 - a meter that is gone for now: no sample, try again next time
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


@dataclass(frozen=True)
class Heard:
    t: float              # time.monotonic() when it arrived
    topic: str
    body: dict[str, Any]

    @property
    def cp(self) -> str:
        """The charge point of a `cp/{cp}/...` topic ("" for the site's own topics)."""
        parts = self.topic.split("/")
        return parts[-2] if len(parts) >= 4 and parts[-3] == "cp" else ""

    @property
    def kind(self) -> str:
        """The topic's last part: "status", "telemetry", "monitor", "state"."""
        return self.topic.rsplit("/", 1)[-1]


@dataclass
class SiteWatch:
    """Subscribes to a site's state and its charge points' topics; keeps what it heard, in order."""

    mqtt: MqttConfig
    site: str
    heard: list[Heard] = field(default_factory=list)
    dropped: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _link: MqttLink | None = None

    def start(self, timeout: float = 10.0) -> SiteWatch:
        topics = SiteTopics(self.mqtt.prefix, self.site)
        self._link = MqttLink(self.mqtt, f"watch-{self.site}-{id(self):x}")
        if not self._link.start(timeout):
            raise ConnectionError(f"no broker at {self.mqtt.url} after {timeout} s")
        for topic in (topics.state, topics.cp_all()):
            self._link.subscribe(topic, self._on_message, qos=1, wait=timeout)
        return self

    def stop(self) -> None:
        if self._link is not None:
            self._link.stop()

    def _on_message(self, topic: str, payload: bytes) -> None:
        try:
            body = decode_payload(payload)
        except PayloadError:
            self.dropped += 1
            return
        with self._lock:
            self.heard.append(Heard(time.monotonic(), topic, body))

    def since(self, t: float) -> list[Heard]:
        with self._lock:
            return [h for h in self.heard if h.t >= t]

    def wait(self, since: float, predicate: Callable[[Heard], bool], timeout: float, what: str) -> Heard:
        """The first message heard from `since` on for which `predicate` holds."""
        wait_for(lambda: any(predicate(h) for h in self.since(since)), timeout, what)
        return next(h for h in self.since(since) if predicate(h))

    def of(self, suffix: str, since: float = 0.0) -> list[Heard]:
        """What arrived on topics ending with `suffix` ("/state", "/telemetry", ...) at or after `since`."""
        with self._lock:
            return [h for h in self.heard if h.topic.endswith(suffix) and h.t >= since]

    def tickets(self) -> list[dict[str, Any]]:
        """Every ticket of a final telemetry message, once per session (QoS 1 may deliver one twice)."""
        seen: dict[str, dict[str, Any]] = {}
        for h in self.of("/telemetry"):
            ticket = h.body.get("ticket")
            if h.body.get("final") and isinstance(ticket, dict) and isinstance(ticket.get("session_id"), str):
                seen.setdefault(ticket["session_id"], ticket)
        return list(seen.values())

    def state(self) -> dict[str, Any] | None:
        states = self.of("/state")
        return states[-1].body if states else None
