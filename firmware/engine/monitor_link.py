"""The engine's end of the serial link to the monitor watchdog, on two threads of its own.

The threads only move bytes: the reader hands frames to the control loop (`deliver(("heartbeat",
payload))`), and the writer sends the loop's answers the moment they are queued (a blocking read
never delays an answer: the writer waits on its queue, not on the line). The answer itself is made
on the control loop (`HeartbeatResponder`), so a hung loop stops answering and the monitor notices.
A stuck line blocks the writer, never the control loop. A link that cannot be opened (the monitor
not up yet) or fails is retried every `retry_s` by the reader; answers made meanwhile are dropped,
as the monitor counts a miss for them anyway. Neither thread ends before `stop()`, whatever it
meets: anything unexpected drops the line, which is opened again (meanwhile the monitor counts
missed heartbeats, and cuts the safety line if that lasts).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any

from evnet.logs import FoldedLog, event_logger
from hal.serial_link import FrameError, SerialLink, SerialLinkError

READ_SLICE_S = 0.02
_STOP = b""  # the writer's end-of-queue mark (a payload is never empty)


class MonitorLink:
    def __init__(self, url: str, deliver: Callable[[tuple[Any, ...]], None], *, cp: str | None = None,
                 retry_s: float = 1.0) -> None:
        self.url = url
        self.deliver = deliver
        self.retry_s = retry_s
        self.log = event_logger("monitor_link", cp=cp, url=url)
        self._folded = FoldedLog(self.log, every=60.0)
        self.dropped = 0  # answers made while no link was open
        self._out: queue.SimpleQueue[bytes] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._link: SerialLink | None = None
        self._thread = threading.Thread(target=self._read, name="monitor-link-read", daemon=True)
        self._writer = threading.Thread(target=self._write, name="monitor-link-write", daemon=True)

    def start(self) -> None:
        self._thread.start()
        self._writer.start()

    def send(self, payload: bytes) -> None:
        """Queue an answer; the writer thread sends it at once."""
        self._out.put(payload)

    def stop(self, farewell: bytes | None = None) -> None:
        """Send what is queued (then `farewell`, if given and the link is open), and close the link."""
        if farewell is not None:
            self._out.put(farewell)
        self._out.put(_STOP)
        if self._writer.is_alive():
            self._writer.join(timeout=2.0)
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5.0)
        if self._link is not None:
            self._link.close()

    def _write(self) -> None:
        while (payload := self._out.get()) != _STOP:
            link = self._link
            if link is None:
                self.dropped += 1
                continue
            try:
                link.send(payload)
            except (SerialLinkError, FrameError) as exc:  # the reader sees the failed link and reopens it
                self.log.warning("monitor_link.send_failed", error=str(exc))
            except Exception as exc:  # a bug or a port gone strange: this answer is lost, not the thread
                self._folded.error("monitor_link.thread_failed", thread="write", error=repr(exc))

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                self._serve()
            except Exception as exc:  # a bug or a port gone strange: drop the line, try again, never end
                self._folded.error("monitor_link.thread_failed", thread="read", error=repr(exc),
                                   retry_s=self.retry_s)
                link, self._link = self._link, None
                if link is not None:
                    link.close()
                self._stop.wait(self.retry_s)

    def _serve(self) -> None:
        while not self._stop.is_set():
            link = self._link
            if link is None:
                try:
                    link = self._link = SerialLink.open(self.url)
                    self.log.info("monitor_link.open")
                    self._folded.reset("monitor_link.unavailable")
                except SerialLinkError as exc:
                    self._folded.warning("monitor_link.unavailable", error=str(exc), retry_s=self.retry_s)
                    self._stop.wait(self.retry_s)
                    continue
            try:
                payload = link.recv(READ_SLICE_S)
            except (SerialLinkError, FrameError) as exc:
                self.log.warning("monitor_link.failed", error=str(exc))
                self._link = None
                link.close()
                self._stop.wait(self.retry_s)
                continue
            if payload is not None:
                self.deliver(("heartbeat", payload))
