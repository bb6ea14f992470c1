"""Start an MQTT broker on loopback: Mosquitto (a child process) or amqtt (embedded).

Tests, benchmarks and the demo site all start their broker here, on a free port, so a
busy 1883 never gets in the way and a broker restart is one call. Mosquitto gets
`set_tcp_nodelay true` (the Nagle delay costs ~88 ms per protocol round otherwise) and a
queue deep enough that a slow subscriber is not silently starved under load.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path

MOSQUITTO_CONF = """\
listener {port} {host}
allow_anonymous true
set_tcp_nodelay true
max_queued_messages 100000
max_inflight_messages 0
persistence false
log_dest stderr
log_type error
log_type warning
"""


class BrokerError(RuntimeError):
    """The broker did not start or stop as asked."""


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_listening(host: str, port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Return once `host:port` accepts a connection; raise `BrokerError` after `timeout` s."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as exc:
            if proc is not None and proc.poll() is not None:
                raise BrokerError(f"broker on {host}:{port} exited with status {proc.returncode}") from exc
            if time.monotonic() > deadline:
                raise BrokerError(f"nothing listens on {host}:{port} after {timeout} s") from exc
            time.sleep(delay)
            delay = min(delay * 2, 0.1)


class MosquittoBroker:
    """A Mosquitto child process on loopback; `restart()` keeps its port."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", extra_conf: str = "") -> None:
        exe = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else None)
        if exe is None:
            raise BrokerError("mosquitto is not installed (Debian: apt-get install mosquitto)")
        self.exe = exe
        self.host = host
        self.port = port or free_port(host)
        self._dir = Path(tempfile.mkdtemp(prefix="evnet-mosquitto-"))
        self.conf_path = self._dir / "mosquitto.conf"
        self.conf_path.write_text(MOSQUITTO_CONF.format(port=self.port, host=host) + extra_conf)
        self.log_path = self._dir / "mosquitto.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> MosquittoBroker:
        if self.proc is not None and self.proc.poll() is None:
            return self
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen([self.exe, "-c", str(self.conf_path)], stdout=log, stderr=log,
                                         stdin=subprocess.DEVNULL)
        try:
            wait_listening(self.host, self.port, timeout, self.proc)
        except BrokerError as exc:
            raise BrokerError(f"{exc}; log: {self.log_path.read_text(errors='replace')[-2000:]}") from None
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """Stop without a goodbye: the way a crashed broker goes."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class EmbeddedBroker:
    """amqtt in a thread of its own: MQTT 3.1.1 only, no install beyond pip."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = port or free_port(host)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._broker: object | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> EmbeddedBroker:
        self._ready.clear()
        self._error = None
        self._thread = threading.Thread(target=self._run, name="amqtt-broker", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout):
            raise BrokerError(f"embedded broker on {self.host}:{self.port} did not start in {timeout} s")
        if self._error is not None:
            raise BrokerError(f"embedded broker on {self.host}:{self.port}: {self._error}") from self._error
        return self

    def _run(self) -> None:
        from amqtt.broker import Broker

        loop = asyncio.new_event_loop()
        self._loop = loop
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
        }
        try:
            async def boot() -> None:
                self._broker = Broker(config)
                await self._broker.start()  # type: ignore[attr-defined]

            loop.run_until_complete(boot())
        except BaseException as exc:  # noqa: BLE001 - reported to the starting thread
            self._error = exc
            self._ready.set()
            loop.close()
            return
        self._ready.set()
        loop.run_forever()
        loop.run_until_complete(self._broker.shutdown())  # type: ignore[attr-defined]
        loop.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout)
        self._loop = self._thread = None

    close = stop

    def restart(self) -> None:
        self.stop()
        self.start()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_local_broker(kind: str, port: int = 0, host: str = "127.0.0.1",
                       extra_conf: str = "") -> tuple[MosquittoBroker | EmbeddedBroker, str]:
    """`kind` "mosquitto", "embedded" or "auto" (Mosquitto where installed, else amqtt), started; and the MQTT
    version its clients must speak ("3.1.1" for amqtt, which has no MQTT 5)."""
    if kind in ("mosquitto", "auto"):
        try:
            return MosquittoBroker(port, host, extra_conf=extra_conf).start(), "5"
        except BrokerError as exc:
            if kind == "mosquitto" or "not installed" not in str(exc):
                raise
    return EmbeddedBroker(port, host).start(), "3.1.1"
