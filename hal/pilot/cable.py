"""The virtual cable: the simulated pilot backend, between an EVSE and an EV emulator.

The cable carries what a real one would: the EVSE's PWM duty one way, the EV's load (not
connected, B, C, D, a short) and diode the other; plus what the simulation needs from physics,
the current the EV draws (the simulated meter reads it), and a channel of ISO 15118-style
high-level messages (plain JSON-serialisable dicts) both ways.

Each end keeps a mirror of the other end's state, updated by a *link*: `VirtualCable` joins two
ends in one process (a change runs the other end's listeners at once, on the changing thread);
`hal.pilot.cable_tcp` joins them over a socket between two processes. When the link is lost the
mirror falls back to "nothing there": the EVSE reads state A and no current, never a stuck C.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable
from typing import Any, Protocol

from evnet.logs import EventLogger, FoldedLog, event_logger
from hal.pilot.base import ControlPilot, Listener, Listeners
from hal.pilot.cable_updates import (
    MAX_EV_CURRENT_A,
    MAX_MESSAGE_BYTES,
    UpdateError,
    parse_current,
    parse_duty,
    parse_load,
    parse_message,
)
from hal.pilot.conversions import PilotValueError, current_for_duty
from hal.pilot.physics import EvLoad, PilotReading, reading_for

MAX_INBOX = 64  # high-level messages not yet taken; ISO 15118 has one request out at a time


class Link(Protocol):
    """How an end reaches the other: `publish` must not block for long and must not raise."""

    def publish(self, kind: str, body: dict[str, Any]) -> bool: ...

    def close(self) -> None: ...


def _copy_message(message: dict[str, Any]) -> dict[str, Any]:
    """The message as the other end will see it: JSON round trip, so both transports behave alike."""
    if not isinstance(message, dict):
        raise TypeError(f"a cable message is a dict, got {type(message).__name__}")
    text = json.dumps(message, separators=(",", ":"), allow_nan=False)
    if len(text) > MAX_MESSAGE_BYTES:
        raise ValueError(f"a cable message is at most {MAX_MESSAGE_BYTES} bytes as JSON, got {len(text)}")
    return json.loads(text)


class CableEnd:
    """What both ends share: the link, the message inbox, the listeners."""

    role = "?"

    def __init__(self, log: EventLogger) -> None:
        self._log = log
        self._lock = threading.RLock()
        self._link: Link | None = None
        self._linked = False
        self._inbox: deque[dict[str, Any]] = deque()
        self._inbox_cond = threading.Condition(self._lock)
        self._listeners = Listeners(log)
        self._closed = False
        self.dropped = 0  # updates from the other end that were not valid (and so not used)
        self._fold = FoldedLog(log)

    # -- the application's side -------------------------------------------------------------
    @property
    def linked(self) -> bool:
        """True while the other end is there (same process: until one end closes; TCP: while connected)."""
        return self._linked

    def on_change(self, callback: Listener) -> None:
        """Call `callback(what)` whenever the other side changes; see `hal.pilot.base.Listener`."""
        self._listeners.add(callback)

    def remove_listener(self, callback: Listener) -> None:
        self._listeners.remove(callback)

    def send(self, message: dict[str, Any]) -> bool:
        """Send a high-level message; False when no other end is there to get it (it is dropped)."""
        body = {"m": _copy_message(message)}
        link = self._link
        if link is None or not self._linked:
            self._log.info("cable.message_dropped", role=self.role, reason="no peer")
            return False
        return link.publish("msg", body)

    def poll(self) -> dict[str, Any] | None:
        """The next high-level message received, or None at once."""
        with self._lock:
            return self._inbox.popleft() if self._inbox else None

    def recv(self, timeout: float) -> dict[str, Any] | None:
        """The next high-level message, waiting up to `timeout` real seconds; None if none came."""
        with self._inbox_cond:
            self._inbox_cond.wait_for(lambda: self._inbox or self._closed, timeout)
            return self._inbox.popleft() if self._inbox else None

    # -- the link's side ----------------------------------------------------------------------
    def attach(self, link: Link) -> None:
        """A link reached the other end; send it our whole state so its mirror is right."""
        with self._lock:
            self._link = link
            self._linked = True
        for kind, body in self._state_messages():
            link.publish(kind, body)
        self._log.info("cable.linked", role=self.role)
        self._listeners.notify("link")

    def detach(self, reason: str, link: Link | None = None) -> None:
        """The other end went (closed, unplugged, dead): forget what it said.

        With `link`, only if that link is still ours: a new EV may already be plugged in when
        the old connection's reader thread says goodbye.
        """
        with self._lock:
            if not self._linked or (link is not None and self._link is not link):
                return
            self._linked = False
            self._link = None
            self._forget_peer()
        level = self._log.info if reason == "closed" else self._log.warning  # an orderly close is no news
        level("cable.peer_lost", role=self.role, reason=reason)
        self._listeners.notify("link")

    def receive(self, kind: str, body: dict[str, Any], source: str = "peer") -> None:
        """A change from the other end (`source` names it in the log). An invalid one is dropped, counted
        in `dropped` and logged; nothing an update holds raises out of here."""
        try:
            if kind == "msg":
                message = parse_message(body)
                with self._inbox_cond:
                    if len(self._inbox) >= MAX_INBOX:
                        raise UpdateError(f"{MAX_INBOX} messages already wait to be read")
                    self._inbox.append(message)
                    self._inbox_cond.notify_all()
                what = "message"
            else:
                with self._lock:
                    what = self._apply_peer(kind, body)
        except UpdateError as exc:
            self.drop(source, f"{kind}: {exc}")
            return
        except Exception as exc:  # a bug of ours, not the peer's: still only this update is lost, loudly
            self.drop(source, f"{kind}: {exc!r}", unexpected=True)
            return
        if what:
            self._listeners.notify(what)

    def drop(self, source: str, why: str, unexpected: bool = False) -> None:
        """An update from `source` that cannot be used: counted in `dropped`, logged (repeats folded)."""
        self.dropped += 1
        self._fold.emit(logging.ERROR if unexpected else logging.WARNING, "cable.update_dropped",
                        key=("dropped", source), role=self.role, source=source, error=why, dropped=self.dropped)

    def link_failed(self, reason: str) -> None:
        """The link's own machinery failed (not the peer): it has been dropped; say so loudly."""
        self._log.error("cable.link_failed", role=self.role, error=reason)

    def _publish(self, kind: str, body: dict[str, Any]) -> None:
        link = self._link
        if link is not None and self._linked:
            link.publish(kind, body)

    def close(self) -> None:
        """Leave the cable: the other end sees this end go."""
        with self._inbox_cond:
            self._closed = True
            self._inbox_cond.notify_all()
        link = self._link
        if link is not None:
            link.close()

    # -- per role -----------------------------------------------------------------------------
    def _state_messages(self) -> list[tuple[str, dict[str, Any]]]:
        raise NotImplementedError

    def _apply_peer(self, kind: str, body: dict[str, Any]) -> str | None:
        raise NotImplementedError

    def _forget_peer(self) -> None:
        raise NotImplementedError


class EvseEnd(CableEnd, ControlPilot):
    """The EVSE end: the simulated `ControlPilot` backend, plus the EV's current and messages."""

    role = "evse"
    supports_messages = True

    def __init__(self, log: EventLogger) -> None:
        CableEnd.__init__(self, log)
        ControlPilot.__init__(self, log)  # after CableEnd: one `_listeners` serves both bases
        self._ev_load = EvLoad.NOT_CONNECTED
        self._ev_diode = True
        self._ev_current = 0.0

    def _output(self, duty: float) -> None:
        self._publish("duty", {"duty": duty})

    def read(self) -> PilotReading:
        with self._lock:
            return reading_for(self._duty, self._ev_load, self._ev_diode)

    @property
    def ev_load(self) -> EvLoad:
        return self._ev_load

    @property
    def ev_current_a(self) -> float:
        """The current the EV draws now (A per phase); 0 when nothing is plugged in."""
        return self._ev_current

    def close(self) -> None:
        ControlPilot.close(self)

    def _release(self) -> None:
        CableEnd.close(self)

    def attach(self, link: Link) -> None:
        """As `CableEnd.attach`; a new link also clears a `cable_fault` an earlier one left."""
        super().attach(link)
        self._set_fault(None)

    def link_failed(self, reason: str) -> None:
        """The cable's reader failed: the EV is dropped (reads A) and the charge point faults until one plugs in."""
        super().link_failed(reason)
        self._set_fault("cable_fault", error=reason)

    def _state_messages(self) -> list[tuple[str, dict[str, Any]]]:
        return [("duty", {"duty": self._duty})]

    def _apply_peer(self, kind: str, body: dict[str, Any]) -> str | None:
        if kind == "load":
            load, diode = parse_load(body)
            changed = (load, diode) != (self._ev_load, self._ev_diode)
            self._ev_load, self._ev_diode = load, diode
            return "pilot" if changed else None
        if kind == "current":
            amps = parse_current(body)
            changed = amps != self._ev_current
            self._ev_current = amps
            return "current" if changed else None
        raise UpdateError(f"an EVSE end takes no {kind!r} update")

    def _forget_peer(self) -> None:
        self._ev_load, self._ev_diode, self._ev_current = EvLoad.NOT_CONNECTED, True, 0.0


class EvEnd(CableEnd):
    """The EV end, for the EV emulator: read the EVSE's offer, set the load, the diode and the draw."""

    role = "ev"

    def __init__(self, log: EventLogger) -> None:
        super().__init__(log)
        self._evse_duty: float | None = None
        self._load = EvLoad.NOT_CONNECTED
        self._diode = True
        self._current = 0.0

    @property
    def duty(self) -> float | None:
        """The duty (%) the EVSE sends, or None when there is no EVSE on the cable."""
        return self._evse_duty

    def allowed_current_a(self) -> float | None:
        """What the EV may draw for the EVSE's duty (IEC 61851-1 A.8): amps, 0 when nothing is
        offered or no EVSE is there, None when high-level communication is required (5 %)."""
        duty = self._evse_duty
        return 0.0 if duty is None else current_for_duty(duty)

    @property
    def load(self) -> EvLoad:
        return self._load

    @property
    def current_a(self) -> float:
        return self._current

    def set_load(self, load: EvLoad | str, diode: bool | None = None) -> None:
        """Put `load` on the pilot: NOT_CONNECTED (unplugged), B, C, D or SHORT; `diode=False` breaks the diode."""
        with self._lock:
            self._load = EvLoad(load)
            if diode is not None:
                self._diode = bool(diode)
            body = {"load": self._load.value, "diode": self._diode}
        self._publish("load", body)

    def set_current(self, amps: float) -> None:
        """Draw `amps` (what the meter will see). The EV is trusted to respect the offer; the engine checks."""
        amps = float(amps)
        if not 0.0 <= amps <= MAX_EV_CURRENT_A:
            raise PilotValueError(f"EV current {amps} A is outside 0-{MAX_EV_CURRENT_A:g} A")
        with self._lock:
            self._current = amps
        self._publish("current", {"a": amps})

    def _state_messages(self) -> list[tuple[str, dict[str, Any]]]:
        return [("load", {"load": self._load.value, "diode": self._diode}), ("current", {"a": self._current})]

    def _apply_peer(self, kind: str, body: dict[str, Any]) -> str | None:
        if kind == "duty":
            duty = parse_duty(body)
            changed = duty != self._evse_duty
            self._evse_duty = duty
            return "duty" if changed else None
        raise UpdateError(f"an EV end takes no {kind!r} update")

    def _forget_peer(self) -> None:
        self._evse_duty = None


class _InprocLink:
    """Delivers straight to the other end, on the caller's thread."""

    def __init__(self, deliver: Callable[[str, dict[str, Any]], None], on_close: Callable[[], None]) -> None:
        self._deliver = deliver
        self._on_close = on_close
        self._open = True

    def publish(self, kind: str, body: dict[str, Any]) -> bool:
        if not self._open:
            return False
        self._deliver(kind, body)
        return True

    def close(self) -> None:
        if self._open:
            self._open = False
            self._on_close()


class VirtualCable:
    """Both ends in one process: `cable.evse` for the engine, `cable.ev` for the EV emulator.

    The EV unplugs and plugs in again with `ev.set_load(EvLoad.NOT_CONNECTED)` / `ev.set_load(EvLoad.B)`.
    Closing either end cuts the cable for good: the other end sees the link go (the EVSE reads A).
    """

    def __init__(self, cp: str | None = None) -> None:
        self.evse = EvseEnd(event_logger("pilot", cp=cp, cable="inproc"))
        self.ev = EvEnd(event_logger("ev_cable", cp=cp, cable="inproc"))

        def unplug() -> None:
            self.evse.detach("closed")
            self.ev.detach("closed")

        self.evse.attach(_InprocLink(self.ev.receive, unplug))
        self.ev.attach(_InprocLink(self.evse.receive, unplug))

    def close(self) -> None:
        self.ev.close()
        self.evse.close()
