"""A stand-in engine for the monitor's tests and benchmark: answers heartbeats from its control loop.

    python -m firmware.monitor.engine_stub socket://127.0.0.1:PORT STATUS

It does what the real engine does about the monitor and nothing else, so that the monitor's
detection is measured on its own: SIGTERM is a planned stop, said with a farewell before it exits.

A reader thread only moves frames from the serial link to a queue; the control loop answers
them with `HeartbeatResponder`. SIGUSR1 makes the control loop block for good (a hung engine
whose process and link stay up); SIGSTOP / kill -9 freeze or kill the whole process.
Prints "ready" once the link is open.
"""

from __future__ import annotations

import queue
import signal
import sys
import threading
import time

from firmware.protocols.heartbeat import HeartbeatResponder
from hal.serial_link import SerialLink, SerialLinkError


def main(url: str, status: str) -> int:
    deadline = time.monotonic() + 10
    while True:
        try:
            link = SerialLink.open(url)
            break
        except SerialLinkError:
            if time.monotonic() > deadline:
                return 1
            time.sleep(0.05)
    inbox: queue.SimpleQueue[bytes] = queue.SimpleQueue()
    hang, stop = threading.Event(), threading.Event()
    signal.signal(signal.SIGUSR1, lambda *_: hang.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def reader() -> None:
        while True:
            try:
                payload = link.recv(0.5)
            except SerialLinkError:
                return
            if payload is not None:
                inbox.put(payload)

    threading.Thread(target=reader, daemon=True).start()
    responder = HeartbeatResponder()
    print("ready", flush=True)
    while not stop.is_set():  # the control loop
        if hang.is_set():
            threading.Event().wait()  # blocked for good, like a loop stuck in a call
        try:
            payload = inbox.get(timeout=0.01)
        except queue.Empty:
            continue
        answer = responder.answer(payload, time.monotonic(), status)
        if answer is not None:
            link.send(answer)
    link.send(responder.farewell("SHUTDOWN"))
    link.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
