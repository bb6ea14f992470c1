"""A site of charge points in one test process: each a real `ChargePoint` (engine on the mock HAL with its
in-process cable and simulated Modbus meter, replica of the site, bridge) on a real broker.

Shared by the tests of `evnet cp` (tests/chargepoint/), the driver app and Home Assistant discovery
(tests/driver/): `start_site` builds and starts them, `add_people` adds an operator and drivers with
their own Ed25519 keys (open, signed requests, as a driver's phone sends them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import IO

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from evnet.config import load_config
from evnet.config.site_key import site_key
from firmware.chargepoint.process import ChargePoint
from firmware.site import new_private_key, public_key_b64
from firmware.site.client import SiteClient

SITE = "s1"
MEMBERS = ["cp1", "cp2", "cp3"]
CONFIG = """\
[charge_point]
id = "{cp}"
site = "s1"
location = "Bay {cp}"
price_eur_kwh = 0.30
max_current_a = 16
journal_dir = "journal-{cp}"
{cp_extra}
[hal]
pin_factory = "mock"

[hal.pilot]
backend = "simulated"
cable = "inproc"

[meter]
backend = "simulated"
transport = "tcp"
address = "127.0.0.1:0"
poll_interval_s = 0.5

[mqtt]
url = "{url}"

[site]
members = ["cp1", "cp2", "cp3"]
limit_a = 32
fallback_a = 6
lease_s = {lease_s}
key_file = "site.key"
"""
SPEED = 20.0


def write_configs(root: Path, url: str, cp_extra: str = "", lease_s: float = 5) -> dict[str, Path]:
    """Each member's TOML file (and the site key) under `root`; `cp_extra` goes into every [charge_point]."""
    (root / "site.key").write_text(("ab" * 32) + "\n")
    paths = {}
    for cp in MEMBERS:
        paths[cp] = root / f"{cp}.toml"
        paths[cp].write_text(CONFIG.format(cp=cp, url=url, cp_extra=cp_extra, lease_s=lease_s))
    return paths


def start_site(root: Path, url: str, members: Sequence[str] = MEMBERS, cp_extra: str = "",
               console: dict[str, IO[str]] | None = None, lease_s: float = 5) -> dict[str, ChargePoint]:
    """Start `members` (all three by default: fewer have no quorum), `console` the console of some (a pipe as
    the terminal); the caller stops each (`stop_site`)."""
    paths = write_configs(root, url, cp_extra, lease_s)
    cps: dict[str, ChargePoint] = {}
    try:
        for cp in members:
            cps[cp] = ChargePoint(load_config(paths[cp]), str(root / "replica" / cp), speed=SPEED, monitor=False,
                                  console=(console or {}).get(cp))
        for c in cps.values():
            c.start()
    except BaseException:
        stop_site(cps)
        raise
    return cps


def stop_site(cps: dict[str, ChargePoint]) -> None:
    for c in cps.values():
        c.stop()


def add_people(cp: ChargePoint, drivers: Sequence[str]) -> tuple[Ed25519PrivateKey, dict[str, Ed25519PrivateKey]]:
    """An operator `op1` (added under the site key, as on a charge point) who adds `drivers`; their keys."""
    cfg = cp.cfg
    operator = new_private_key()
    keys = {d: new_private_key() for d in drivers}
    with SiteClient(cfg.mqtt, SITE, site_key=site_key(cfg), client_id="tool", timeout=10.0) as tool:
        tool.add_principal("op1", "operator", public_key_b64(operator))
    with SiteClient(cfg.mqtt, SITE, principal="op1", key=operator, timeout=10.0) as op:
        for d in drivers:
            op.add_principal(d, "driver", public_key_b64(keys[d]))
    return operator, keys
