"""OCPP's times on the wire (RFC 3339, UTC) and ours (unix seconds)."""

from __future__ import annotations

import math
from datetime import UTC, datetime


def stamp(t: float) -> str:
    """Unix seconds as OCPP writes them: 2026-11-30T12:00:00.000Z."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def unix(text: str) -> float:
    """An RFC 3339 time from the CSMS as unix seconds; ValueError for anything else (no zone counts as UTC)."""
    if not isinstance(text, str) or len(text) > 40:
        raise ValueError("not a time")
    parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    t = parsed.timestamp()
    if not math.isfinite(t):
        raise ValueError("not a time")
    return t
