"""`Mac` is HMAC-SHA256 of domain + body, whatever the key's length."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from firmware.paxos.wire.mac import Mac


@pytest.mark.parametrize("key", [b"", b"k" * 32, b"\xff" * 64, bytes(range(100))])  # short, block-sized, longer
def test_the_same_digest_as_the_standard_library(key: bytes) -> None:
    mac = Mac(key, b"evnet-paxos\0lab\0")
    for body in (b"", b"x", bytes(range(256)) * 9, memoryview(b"a view of a frame")):
        want = hmac.new(key, b"evnet-paxos\0lab\0" + bytes(body), hashlib.sha256).digest()
        assert mac.digest(body) == want
        assert mac.digest(body) == want  # the prepared states are copied, never used up
    assert mac.hexdigest(b"x") == hmac.new(key, b"evnet-paxos\0lab\0x", hashlib.sha256).hexdigest()
    assert Mac(key, b"evnet-client\0lab\0").digest(b"x") != mac.digest(b"x")  # domains keep uses apart
