"""Structured logs: one line per event, `key=value`, always with the charge point id.

    log = event_logger("meter", cp="cp1")
    log.warning("meter.read_failed", addr="0x0048", error="timeout")
    -> 2026-11-21T10:00:00.123Z WARNING cp=cp1 comp=meter event=meter.read_failed addr=0x0048 error=timeout
"""

from __future__ import annotations

import logging
import sys
import time
from collections import Counter
from collections.abc import Callable, Hashable
from typing import Any


def _fmt_value(value: Any) -> str:
    text = value if isinstance(value, str) else repr(value) if isinstance(value, float) else str(value)
    if text == "" or any(c in text for c in ' ="\n\t'):
        text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
    return text


def format_fields(fields: dict[str, Any]) -> str:
    """`key=value` pairs, quoting values that need it."""
    return " ".join(f"{k}={_fmt_value(v)}" for k, v in fields.items() if v is not None)


class EventLogger:
    """A logger bound to a component and a charge point that logs named events."""

    def __init__(self, logger: logging.Logger, **context: Any) -> None:
        self._logger = logger
        self.context = context

    def bind(self, **more: Any) -> EventLogger:
        return EventLogger(self._logger, **{**self.context, **more})

    def log(self, level: int, event: str, **fields: Any) -> None:
        if self._logger.isEnabledFor(level):
            self._logger.log(level, format_fields({**self.context, "event": event, **fields}))

    def debug(self, event: str, **fields: Any) -> None:
        self.log(logging.DEBUG, event, **fields)

    def info(self, event: str, **fields: Any) -> None:
        self.log(logging.INFO, event, **fields)

    def warning(self, event: str, **fields: Any) -> None:
        self.log(logging.WARNING, event, **fields)

    def error(self, event: str, **fields: Any) -> None:
        self.log(logging.ERROR, event, **fields)


class FoldedLog:
    """Repeats of an event logged at most once every `every` seconds, each line with how many it folded.

    A meter that stays unreachable, a replica that cannot win an election or a flood of bad
    frames would otherwise write a line per attempt for as long as the condition lasts. The first
    occurrence of a `key` (by default the event's name) is logged at once; later ones within
    `every` seconds are only counted, and the next line carries `repeats` (how many since the
    line before) and `total`. `reset(key)` (the condition has ended) makes the next one log at once.
    """

    def __init__(self, log: EventLogger, every: float = 5.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self.log = log
        self.every = every
        self.monotonic = monotonic
        self.counts: Counter[Any] = Counter()
        self._last: dict[Hashable, tuple[float, int]] = {}  # key -> (when last logged, count then)

    def emit(self, level: int, event: str, key: Hashable = None, **fields: Any) -> bool:
        """Count one occurrence; log it if the key's last line is `every` seconds old. True if logged."""
        key = event if key is None else key
        self.counts[key] += 1
        now = self.monotonic()
        last = self._last.get(key)
        if last is not None and now - last[0] < self.every:
            return False
        repeats = self.counts[key] - (last[1] if last is not None else 0)
        self._last[key] = (now, self.counts[key])
        self.log.log(level, event, **fields, **({"repeats": repeats, "total": self.counts[key]}
                                                 if last is not None else {}))
        return True

    def warning(self, event: str, key: Hashable = None, **fields: Any) -> bool:
        return self.emit(logging.WARNING, event, key, **fields)

    def info(self, event: str, key: Hashable = None, **fields: Any) -> bool:
        return self.emit(logging.INFO, event, key, **fields)

    def error(self, event: str, key: Hashable = None, **fields: Any) -> bool:
        return self.emit(logging.ERROR, event, key, **fields)

    def reset(self, key: Hashable) -> int:
        """The condition behind `key` is over: its next occurrence logs at once. Returns how many there were."""
        self._last.pop(key, None)
        return self.counts.pop(key, 0)


def event_logger(component: str, cp: str | None = None, **context: Any) -> EventLogger:
    """The logger of `component` (e.g. "meter", "paxos") on charge point `cp`."""
    return EventLogger(logging.getLogger(f"evnet.{component}"), cp=cp, comp=component, **context)


class _UtcFormatter(logging.Formatter):
    converter = time.gmtime

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        base = time.strftime("%Y-%m-%dT%H:%M:%S", self.converter(record.created))
        return f"{base}.{int(record.msecs):03d}Z"


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stderr` is at the moment, not the one there at set-up."""

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def setup_logging(level: str | int = "INFO", stream: Any = None) -> None:
    """Send evnet's log lines to `stream` (stderr by default), one event per line.

    Records still propagate to the root logger, which has no handler in our processes, so
    nothing is printed twice, and test tools that listen at the root still see them.
    """
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler.setFormatter(_UtcFormatter("%(asctime)s %(levelname)s %(message)s"))
    root = logging.getLogger("evnet")
    root.handlers[:] = [handler]
    root.setLevel(level if isinstance(level, int) else level.upper())
    # pymodbus logs a failed read as an error plus raw frame dumps over several lines; our
    # meter driver already logs each failure as one structured line.
    logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
