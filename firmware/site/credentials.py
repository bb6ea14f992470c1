"""Ed25519 credentials of drivers and operators, and the site command envelope: one module for both sides.

Clients build requests with `signed_request` (drivers, operators) or `member_command` (a charge
point's own process, whose messages the Paxos layer signs with the site key); the site checks a
signature with `signature_valid`. A signature covers the canonical JSON (firmware.paxos.core.canonical)
of every field of the request but `sig`, the site id included, so a request cannot be replayed at
another site, and `seq` (strictly increasing per principal) so it cannot be replayed here. Clients
use their wall clock in ms as `seq` (`next_seq`): a principal removed and added again then
still cannot have its old requests replayed (the site keeps the highest seq of removed ones).
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from firmware.paxos.core.canonical import dumps

KEY_BYTES = 32


def new_private_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


def public_key_b64(key: Ed25519PrivateKey | Ed25519PublicKey) -> str:
    """The form the site stores and `add_principal` takes: base64 of the 32 raw bytes."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode()


def private_key_pem(key: Ed25519PrivateKey) -> bytes:
    """A key file's contents (PKCS#8 PEM); keep it readable by its owner only."""
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def load_private_key(pem: bytes) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError("the key file does not hold an Ed25519 private key")
    return key


def read_public_key(data: bytes) -> str:
    """A public key file (PEM, or the base64 of the raw key) or a private key file, as base64."""
    text = data.strip()
    if text.startswith(b"-----BEGIN PRIVATE KEY"):
        return public_key_b64(load_private_key(text))
    if text.startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(text)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the key file does not hold an Ed25519 public key")
        return public_key_b64(key)
    return public_key_b64(public_key(text.decode("ascii", "replace")))


def public_key(b64: str) -> Ed25519PublicKey:
    """The key of its base64 form; ValueError if it is not 32 bytes of base64."""
    try:
        raw = base64.b64decode(b64, validate=True)
    except binascii.Error as exc:
        raise ValueError(f"not base64: {exc}") from None
    if len(raw) != KEY_BYTES:
        raise ValueError(f"an Ed25519 public key has {KEY_BYTES} bytes, this one {len(raw)}")
    return Ed25519PublicKey.from_public_bytes(raw)


def next_seq(last: int = 0) -> int:
    """A request number above `last` and above every earlier one of this clock: the wall clock in ms."""
    return max(last + 1, time.time_ns() // 1_000_000)


def member_command(op: str, args: dict[str, Any] | None = None) -> bytes:
    return dumps({"op": op, "args": args or {}})


def signed_request(key: Ed25519PrivateKey, *, site: str, by: str, seq: int, op: str,
                   args: dict[str, Any] | None = None) -> bytes:
    body = {"op": op, "args": args or {}, "by": by, "seq": seq, "site": site}
    sig = base64.b64encode(key.sign(dumps(body))).decode()
    return dumps({**body, "sig": sig})


def signature_valid(public_b64: str, body: dict[str, Any], sig_b64: str) -> bool:
    """True if `sig_b64` is the key's signature of the canonical JSON of `body` (the request less `sig`)."""
    try:
        sig = base64.b64decode(sig_b64, validate=True)
        public_key(public_b64).verify(sig, dumps(body))
    except (ValueError, binascii.Error, InvalidSignature):
        return False
    return True
