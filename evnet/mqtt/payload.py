"""What travels on evnet's topics: JSON objects that carry `"v": 1`, and the one size cap of every payload.

The cap is the trust boundary's first line for every subscriber: the shipped Mosquitto
configuration (config/mosquitto/*.conf, `message_size_limit`) says the same number.
"""

from __future__ import annotations

import json
from typing import Any

PAYLOAD_VERSION = 1
# The largest payload any evnet part sends or accepts, on any topic. The shipped Mosquitto
# configuration (config/mosquitto/*.conf, `message_size_limit`) says the same number.
MAX_PAYLOAD = 1 << 20
# The largest MQTT packet we take: MAX_PAYLOAD plus room for the fixed header, topic and properties.
MAX_PACKET = MAX_PAYLOAD + 4096


class PayloadError(ValueError):
    """A message body that is not a JSON object of a version we speak."""


def encode_payload(body: dict[str, Any]) -> bytes:
    """A compact JSON object with `"v": 1` first."""
    return json.dumps({"v": PAYLOAD_VERSION, **body}, separators=(",", ":")).encode()


def decode_payload(data: bytes) -> dict[str, Any]:
    """The JSON object in `data`, or `PayloadError` saying what is wrong with it."""
    if len(data) > MAX_PAYLOAD:
        raise PayloadError(f"{len(data)} bytes, more than the {MAX_PAYLOAD} allowed")
    try:
        body = json.loads(data)
    except (ValueError, RecursionError) as exc:  # not UTF-8 or not JSON, an int of 5,000 digits, deep nesting
        raise PayloadError(f"not UTF-8 JSON ({type(exc).__name__}: {str(exc)[:100]})") from None
    if not isinstance(body, dict):
        raise PayloadError(f"expected a JSON object, got {type(body).__name__}")
    if body.get("v") != PAYLOAD_VERSION:
        raise PayloadError(f"expected \"v\": {PAYLOAD_VERSION}, got {body.get('v')!r}")
    return body
