"""sd_notify without a dependency: READY=1, WATCHDOG=1, STATUS=... to systemd's socket.

systemd passes `NOTIFY_SOCKET` (a path, or an abstract socket written with a leading
'@') to a `Type=notify` service; a datagram of `KEY=VALUE` lines is the whole protocol.
With `WatchdogSec=` set, systemd also passes `WATCHDOG_USEC` (and `WATCHDOG_PID`) and
kills and restarts the service when `WATCHDOG=1` stops coming: this is how a hung engine
gets restarted even when its monitor is gone too.

Without `NOTIFY_SOCKET` (a laptop, a test) every call does nothing and returns False.
A failed send is logged once and never raised: a notification must not stop charging.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping

from evnet.logs import event_logger


def socket_address(value: str) -> str | None:
    """The AF_UNIX address `NOTIFY_SOCKET` names ('@name' is the abstract '\\0name'); None if unusable."""
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # e.g. vsock:..., which this helper does not speak


class SystemdNotifier:
    """One service's channel to systemd; cheap to call from a control loop."""

    def __init__(self, env: Mapping[str, str] | None = None, cp: str | None = None,
                 component: str = "systemd") -> None:
        env = os.environ if env is None else env
        self.log = event_logger(component, cp=cp)
        raw = env.get("NOTIFY_SOCKET", "")
        self.address = socket_address(raw) if raw else None
        if raw and self.address is None:
            self.log.warning("systemd.notify_socket_unsupported", notify_socket=raw)
        self.watchdog_s = _watchdog_seconds(env)
        self._sock: socket.socket | None = None
        self._failed = False
        self.sent = 0

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def notify(self, *fields: str) -> bool:
        """Send `KEY=VALUE` fields in one datagram; True if it left."""
        if self.address is None:
            return False
        data = "\n".join(fields).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto(data, self.address)
        except OSError as exc:
            if not self._failed:
                self.log.warning("systemd.notify_failed", notify_socket=self.address.replace("\0", "@"),
                                 error=str(exc))
            self._failed = True
            self.close()
            return False
        if self._failed:
            self.log.info("systemd.notify_restored")
            self._failed = False
        self.sent += 1
        return True

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text.replace(chr(10), ' ')}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def watchdog_trigger(self, reason: str) -> bool:
        """Ask systemd to treat the service as failed now (as if the watchdog ran out)."""
        return self.notify("WATCHDOG=trigger", f"STATUS={reason}")

    def ping_interval(self, default: float) -> float:
        """How often to send WATCHDOG=1: half systemd's watchdog period, else `default`."""
        return self.watchdog_s / 2 if self.watchdog_s else default

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _watchdog_seconds(env: Mapping[str, str]) -> float | None:
    """`WATCHDOG_USEC` in seconds, if it is meant for this process."""
    usec, pid = env.get("WATCHDOG_USEC"), env.get("WATCHDOG_PID")
    if not usec or not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid.isdigit() and int(pid) != os.getpid():
        return None
    return int(usec) / 1e6
