"""Canonical JSON (sorted keys, no spaces, ASCII): the one form that commands and signed bodies take.

One encoder built once: `json.dumps` with options builds a new one on every call.
"""

from __future__ import annotations

import json
from typing import Any

_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def dumps(obj: Any) -> bytes:
    return _ENCODER.encode(obj).encode()
