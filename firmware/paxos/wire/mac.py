"""HMAC-SHA256 under one key and one domain, its padded key hashed once (RFC 2104's own shortcut).

`hmac.new` sets OpenSSL's HMAC up anew for every message: ~1.4 µs here, against ~0.6 µs for two
copies of hash states prepared once, and every message of a round is signed or checked.
"""

from __future__ import annotations

import hashlib

_BLOCK = 64  # SHA-256's block size


class Mac:
    """`Mac(key, domain).digest(body)` == `hmac.new(key, domain + body, hashlib.sha256).digest()`.

    `digest(a, b)` is the MAC of `a + b` without joining them (a 1 MB message is not copied to be checked).
    """

    def __init__(self, key: bytes, domain: bytes = b"") -> None:
        k = (hashlib.sha256(key).digest() if len(key) > _BLOCK else key).ljust(_BLOCK, b"\0")
        self._inner = hashlib.sha256(bytes(b ^ 0x36 for b in k))
        self._inner.update(domain)
        self._outer = hashlib.sha256(bytes(b ^ 0x5C for b in k))

    def digest(self, body: bytes | memoryview, *more: bytes | memoryview) -> bytes:
        inner = self._inner.copy()
        inner.update(body)
        for part in more:
            inner.update(part)
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.digest()

    def hexdigest(self, body: bytes | memoryview, *more: bytes | memoryview) -> str:
        return self.digest(body, *more).hex()
