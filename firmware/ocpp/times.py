"""Our times on OCPP's wire: RFC 3339, UTC, to the millisecond (a CSMS's are read by profiles.parse_time)."""

from __future__ import annotations

from datetime import UTC, datetime


def stamp(t: float) -> str:
    """Unix seconds as OCPP writes them: 2026-11-30T12:00:00.000Z."""
    return datetime.fromtimestamp(t, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
