"""The site key: the shared secret every Paxos message and client request is signed with."""

from __future__ import annotations

from evnet.config.loader import ConfigError
from evnet.config.schema import Config

MIN_KEY_BYTES = 16


def read_site_key(path: str) -> bytes:
    """A file holding hex (as `config/demo/site.key`) or, failing that, raw bytes."""
    with open(path, "rb") as f:
        raw = f.read()
    text = raw.strip()
    try:
        key = bytes.fromhex(text.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        key = raw
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"{path}: a site key needs at least {MIN_KEY_BYTES} bytes (32 hex digits), found {len(key)}")
    return key


def site_key(cfg: Config) -> bytes:
    """The key of `cfg`'s site; a missing, unreadable or short file is a `ConfigError` on `site.key_file`."""
    path = cfg.site.key_file
    try:
        return read_site_key(path)
    except FileNotFoundError:
        problem = f"{path}: no such file; expected a file of 32 random bytes in hex"
    except OSError as exc:
        problem = f"{path}: cannot be read ({exc.strerror})"
    except ValueError as exc:
        problem = str(exc)
    raise ConfigError(cfg.path, "site.key_file", problem)
