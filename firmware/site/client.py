"""`SiteClient`: a driver's, an operator's or a charge point tool's client of the site, over the broker.

Built on the Paxos client (`firmware.paxos.io.client`): one request at a time, retried with the same
request id (and so the same signed command, the same `seq`) until answered; a leader change costs
about the election; a timeout says what silence most likely means.

Who it speaks as:
- a **principal** (`principal=` id, `key=` its Ed25519 private key): every request is signed
  (`credentials.signed_request`, `seq` from the wall clock). Without the site key the session is
  *open*: the request travels without the site's MAC and the replica that takes it checks the
  signature before it may take a slot (admission.py). The replies to an open client **cannot be
  verified by it** (they are MAC'd under the site key, which it does not hold): what it trusts is
  the broker's ACL, by which only the site's members may write its `reply/{client}` topic and only
  it may read it (config/mosquitto/evnet.acl);
- a **member-role tool** (`site_key=` the site key, no principal): unsigned member commands under
  the site's MAC, so the machine sees `ctx.member` (how the first operator is added, on a charge
  point). With both, signed requests travel under the MAC.

Every op returns the result's fields (a dict) or raises `SiteRefused(code, reason)`; a timeout is
`KvTimeout` with the client's diagnosis.
"""

from __future__ import annotations

import threading
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evnet.config.schema import MqttConfig
from evnet.mqtt import MqttLink, PayloadError, decode_payload
from evnet.topics import SiteTopics
from firmware.paxos.io.client import KvClient, KvTimeout
from firmware.site.credentials import member_command, next_seq, signed_request

__all__ = ["KvTimeout", "SiteClient", "SiteRefused", "read_state"]


class SiteRefused(Exception):  # noqa: N818 - reads as what happened: the site refused
    """The site refused the request: `code` (errors.py, ERRORS), `reason`, and the rest of the error in `extra`."""

    def __init__(self, code: str, reason: str, extra: dict[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {reason}")
        self.code, self.reason, self.extra = code, reason, extra or {}


class SiteClient:
    """A client of site `site`; `client_id` (default: the principal's id) is its Paxos client id and,
    for an open client, the account whose `reply/` topic the broker lets it read."""

    def __init__(self, mqtt_cfg: MqttConfig, site: str, *, principal: str | None = None,
                 key: Ed25519PrivateKey | None = None, site_key: bytes | None = None, client_id: str | None = None,
                 timeout: float = 5.0) -> None:
        if (principal is None) != (key is None):
            raise ValueError("a principal needs its private key, and a key its principal id")
        if principal is None and site_key is None:
            raise ValueError("a site client speaks as a principal (principal, key) or with the site key")
        client = client_id or principal
        if client is None:
            raise ValueError("a member-role tool needs a client_id (not a member's id)")
        self.mqtt_cfg, self.site, self.principal, self.key = mqtt_cfg, site, principal, key
        self.topics = SiteTopics(mqtt_cfg.prefix, site)
        self.kv = KvClient(mqtt_cfg, site, client, site_key, timeout=timeout)
        self.seq = 0
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        """No site key: open requests, replies that cannot be verified (see the module's docstring)."""
        return self.kv.session.open

    def start(self, wait: float = 10.0) -> SiteClient:
        self.kv.start(wait)
        return self

    def close(self) -> None:
        self.kv.close()

    def __enter__(self) -> SiteClient:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ one request

    def call(self, op: str, args: dict[str, Any] | None = None, timeout: float | None = None) -> dict[str, Any]:
        """Any site op: its result (without `ok`), or `SiteRefused`; `KvTimeout` if the site does not answer."""
        args = args or {}
        with self._lock:
            if self.key is not None and self.principal is not None:
                self.seq = next_seq(self.seq)
                command = signed_request(self.key, site=self.site, by=self.principal, seq=self.seq, op=op, args=args)
            else:
                command = member_command(op, args)
            result = self.kv.call(command, f"{op} {args!r}", timeout)
        if not isinstance(result, dict):
            raise SiteRefused("internal", f"the site's answer is not a result object: {str(result)[:100]}")
        if "error" in result:
            extra = {k: v for k, v in result.items() if k not in ("error", "reason")}
            raise SiteRefused(str(result["error"]), str(result.get("reason", "")), extra)
        return {k: v for k, v in result.items() if k != "ok"}

    # ------------------------------------------------------------------ drivers (and operators: whoami)

    def request_charge(self, at: str | None = None) -> dict[str, Any]:
        return self.call("request_charge", {"at": at})

    def reserve(self, at: str, duration_s: int | None = None) -> dict[str, Any]:
        return self.call("reserve", {"at": at} if duration_s is None else {"at": at, "duration_s": duration_s})

    def cancel_reservation(self) -> dict[str, Any]:
        return self.call("cancel_reservation")

    def stop_charge(self) -> dict[str, Any]:
        return self.call("stop_charge")

    def whoami(self) -> dict[str, Any]:
        return self.call("whoami")

    # ------------------------------------------------------------------ operators

    def stop_cp(self, cp: str) -> dict[str, Any]:
        """Stop charge point `cp`, or every one with "all"."""
        return self.call("stop_cp", {"cp": cp})

    def resume_cp(self, cp: str) -> dict[str, Any]:
        return self.call("resume_cp", {"cp": cp})

    def set_limit(self, limit_a: float) -> dict[str, Any]:
        return self.call("set_limit", {"limit_a": limit_a})

    def set_priority(self, cp: str, priority: int) -> dict[str, Any]:
        return self.call("set_priority", {"cp": cp, "priority": priority})

    def add_principal(self, principal: str, role: str, key_b64: str) -> dict[str, Any]:
        return self.call("add_principal", {"id": principal, "role": role, "key": key_b64})

    def remove_principal(self, principal: str) -> dict[str, Any]:
        return self.call("remove_principal", {"id": principal})

    def ack_tickets(self, sessions: list[str]) -> dict[str, Any]:
        return self.call("ack_tickets", {"sessions": list(sessions)})

    # ------------------------------------------------------------------ the published state

    def state(self, timeout: float = 5.0) -> dict[str, Any]:
        """The site's state as its leader last published it (`read_state`)."""
        return read_state(self.mqtt_cfg, self.site, timeout, name=self.kv.id)


def read_state(mqtt_cfg: MqttConfig, site: str, timeout: float = 5.0, name: str = "reader") -> dict[str, Any]:
    """The retained `evnet/{site}/state` (publication.py): `slot` and the summary (docs/site.md); anyone
    may read it (no secrets in it). TimeoutError if none is there (no leader has published yet)."""
    topic = SiteTopics(mqtt_cfg.prefix, site).state
    got: list[dict[str, Any]] = []
    errors: list[str] = []
    done = threading.Event()

    def on_state(_topic: str, payload: bytes) -> None:
        try:
            got.append(decode_payload(payload))
        except PayloadError as exc:
            errors.append(str(exc))
        done.set()

    link = MqttLink(mqtt_cfg, f"state-{site}-{name}")
    try:
        if not link.start(timeout):
            raise ConnectionError(f"no broker at {mqtt_cfg.url} after {timeout} s")
        link.subscribe(topic, on_state, qos=1, wait=timeout)
        if not done.wait(timeout):
            raise TimeoutError(f"nothing retained on {topic} after {timeout} s: no leader has published the "
                               f"site's state (are its charge points running `evnet cp`?)")
    finally:
        link.stop()
    if errors:
        raise ValueError(f"{topic}: {errors[0]}")
    return got[0]
