"""Structured logs: one line per event, `key=value`, always with the charge point id.

    log = event_logger("meter", cp="cp1")
    log.warning("meter.read_failed", addr="0x0048", error="timeout")
    -> 2026-11-21T10:00:00.123Z WARNING cp=cp1 comp=meter event=meter.read_failed addr=0x0048 error=timeout
"""

from __future__ import annotations

import logging
import sys
import time
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
