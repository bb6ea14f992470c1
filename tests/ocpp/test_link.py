"""The websocket link to a real CSMS (the Python `ocpp` one of tests/ocpp): security profile 2 (wss:// with a
private CA and Basic authentication) boots; a wrong password or an untrusted certificate is refused, logged,
retried, and never ends the link; a CSMS that drops the link is reconnected to, and booted with again."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from evnet.logs import event_logger
from firmware.ocpp.core import OcppCore
from firmware.ocpp.events import Output
from firmware.ocpp.link import Endpoint, OcppLink
from firmware.ocpp.outbox import Outbox
from firmware.ocpp.profile_store import ProfileStore
from firmware.ocpp.settings import OcppSettings
from firmware.ocpp.transactions import TxFile
from firmware.ocpp.v16 import Dialect16
from firmware.ocpp.v201 import Dialect201

from .csms import Csms

PASSWORD = "s3cret-s3cret"


def core_on(folder: Path, version: str) -> OcppCore:
    log = event_logger("ocpp", cp="cp1")
    dialect = (Dialect16 if version == "1.6" else Dialect201)("evnet", "test", "cp1", "0")
    return OcppCore(dialect, "cp1", settings=OcppSettings(str(folder / "settings.json"), log=log),
                    profiles=ProfileStore(str(folder / "profiles.json"), max_current_a=32),
                    outbox=Outbox(str(folder / "outbox.log"), log=log), txfile=TxFile(str(folder / "tx.json"), log),
                    log=log)


@pytest.fixture
def links() -> Iterator[list[OcppLink]]:
    made: list[OcppLink] = []
    yield made
    for link in made:
        link.stop()


def start_link(links: list[OcppLink], folder: Path, csms: Csms, password: str | None,
               ca: Path | None) -> tuple[OcppLink, list[Output]]:
    outputs: list[Output] = []
    folder.mkdir()
    link = OcppLink(core_on(folder, csms.version), Endpoint(csms.url, "cp1", csms.version, password,
                                                            None if ca is None else str(ca)),
                    outputs.append, event_logger("ocpp", cp="cp1"))
    links.append(link.start())
    return link, outputs


@pytest.mark.parametrize("version", ["1.6", "2.0.1"])
def test_security_profile_2_boots_over_tls_with_basic_authentication(tmp_path: Path, csms_factory: Any,
                                                                     links: list[OcppLink], version: str) -> None:
    csms = csms_factory("py", version, password=PASSWORD, tls=True)
    assert csms.url.startswith("wss://")
    link, _ = start_link(links, tmp_path / "cp", csms, PASSWORD, csms.ca_file)
    assert csms.wait_connected("cp1", timeout=15)["protocol"] == f"ocpp{version}"
    csms.wait_call("BootNotification", "cp1", timeout=15)
    csms.wait_call("StatusNotification", "cp1", timeout=15)
    assert link.alive and link.failures == 0


def test_a_wrong_password_or_an_untrusted_certificate_is_refused_and_retried(
        tmp_path: Path, csms_factory: Any, links: list[OcppLink], caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="evnet")
    csms = csms_factory("py", "1.6", password=PASSWORD, tls=True)
    wrong, _ = start_link(links, tmp_path / "wrong", csms, "not-the-password", csms.ca_file)
    untrusted, _ = start_link(links, tmp_path / "untrusted", csms, PASSWORD, None)  # the system's CAs only
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and sum("ocpp.connect_failed" in r.getMessage() for r in caplog.records) < 2:
        time.sleep(0.05)  # log lines from the links' threads: nothing else to await
    failed = [r.getMessage() for r in caplog.records if "ocpp.connect_failed" in r.getMessage()]
    assert any("401" in m for m in failed), failed
    assert any("CERTIFICATE" in m.upper() or "SSL" in m.upper() for m in failed), failed
    assert csms.connections("cp1") == 0 and not csms.calls()
    assert wrong.alive and untrusted.alive and not wrong.core.accepted


def test_a_dropped_link_is_reconnected_and_boots_again(tmp_path: Path, csms_factory: Any,
                                                       links: list[OcppLink]) -> None:
    csms = csms_factory("py", "2.0.1")
    start_link(links, tmp_path / "cp", csms, None, None)
    csms.wait_call("BootNotification", "cp1", timeout=15)
    csms.drop("cp1", force=True)
    csms.wait_connected("cp1", count=2, timeout=15)
    csms.wait_call("BootNotification", "cp1", where=lambda c: len(csms.calls("cp1", "BootNotification")) >= 2,
                   timeout=15)
