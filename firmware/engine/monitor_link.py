"""The engine's end of the serial link to the monitor watchdog, on its own thread.

The thread only moves bytes: frames in go to the control loop (`deliver(("heartbeat",
payload))`), and the loop's answers go out. The answer itself is made on the control loop
(`HeartbeatResponder`), so a hung loop stops answering and the monitor notices. A link that
cannot be opened (the monitor not up yet) or fails is retried every `retry_s`; so is one whose
thread meets anything unexpected: the thread never ends before `stop()` (meanwhile the monitor
counts missed heartbeats, and cuts the safety line if that lasts).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from evnet.logs import FoldedLog, event_logger
from hal.serial_link import FrameError, SerialLink, SerialLinkError

READ_SLICE_S = 0.02


class MonitorLink:
    def __init__(self, url: str, deliver: Callable[[tuple[Any, ...]], None], *, cp: str | None = None,
                 retry_s: float = 1.0) -> None:
        self.url = url
        self.deliver = deliver
        self.retry_s = retry_s
        self.log = event_logger("monitor_link", cp=cp, url=url)
        self._fold = FoldedLog(self.log)
        self._out: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._link: SerialLink | None = None
        self._thread = threading.Thread(target=self._run, name="monitor-link", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def send(self, payload: bytes) -> None:
        """Queue an answer; the link thread writes it (a stuck line never blocks the control loop)."""
        self._out.put(payload)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5.0)
        if self._link is not None:
            self._link.close()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._serve()
            except Exception as exc:  # a bug or a port gone strange: drop the line, try again, never end
                self._fold.error("monitor_link.thread_failed", error=repr(exc), retry_s=self.retry_s)
                if self._link is not None:
                    self._link.close()
                    self._link = None
                self._stop.wait(self.retry_s)

    def _serve(self) -> None:
        failed_once = False
        while not self._stop.is_set():
            if self._link is None:
                try:
                    self._link = SerialLink.open(self.url)
                    self.log.info("monitor_link.open")
                    failed_once = False
                except SerialLinkError as exc:
                    if not failed_once:
                        self.log.warning("monitor_link.unavailable", error=str(exc), retry_s=self.retry_s)
                        failed_once = True
                    self._stop.wait(self.retry_s)
                    continue
            try:
                while True:
                    try:
                        self._link.send(self._out.get_nowait())
                    except queue.Empty:
                        break
                payload = self._link.recv(READ_SLICE_S)
            except (SerialLinkError, FrameError) as exc:
                self.log.warning("monitor_link.failed", error=str(exc))
                self._link.close()
                self._link = None
                self._stop.wait(self.retry_s)
                continue
            if payload is not None:
                self.deliver(("heartbeat", payload))
