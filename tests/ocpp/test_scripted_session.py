"""Each OCPP version's scripted session, against each independent CSMS (ocpp-rpc in strict mode, and the Python
`ocpp` package), with a real site of three `evnet cp` processes on a real Mosquitto, each charge point with its
monitor, its meter box and an emulated EV on the cable (hil_tests/site_rig.py).

Boot and status; configuration a CSMS sets and reads back; a token presented at a point, authorized by the
CSMS; a remote start; meter values; a charging profile lowering the current, which the EV follows within 5 s
while the site's sum stays under its limit; the composite schedule; the CSMS going away mid-session, a kill -9
of a charge point while it is away, and every queued message arriving once, in order, when it comes back; a
remote stop; a reservation; a reset. The CSMS checks every message against the OCPP schemas both ways (the
fixture fails the test on any violation).
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from firmware.ocpp.profiles import parse_time
from hil_tests.site_rig import LIMIT_A, MEMBERS, SiteRig, wait_for

from .csms import Csms
from .session_script import Script

PASSWORD = "correct horse battery staple"
TOLERANCE_A = 0.5   # the meter box's rounding and the EV's ramp
SAMPLE_S = 2        # MeterValueSampleInterval the CSMS sets


def ocpp_site(tmp_path: Path, broker_url: str, csms: Csms) -> SiteRig:
    """A site of three whose charge points each connect to `csms` with Basic authentication."""
    password = tmp_path / "ocpp.password"
    password.write_text(PASSWORD + "\n")
    root = tmp_path / "site"
    root.mkdir()
    extra = f'\n[ocpp]\nurl = "{csms.url}"\nversion = "{csms.version}"\npassword_file = "{password}"\n'
    return SiteRig(root, broker_url, speed=1.0, extra_config=extra, consoles=True, supervised=True)


def ask(csms: Csms, script: Script, cp: str, request: tuple[str, dict[str, Any]]) -> dict[str, Any]:
    action, payload = request
    return csms.call(cp, action, payload)


@pytest.mark.slow
@pytest.mark.parametrize(("kind", "version"), [("rpc", "1.6"), ("py", "1.6"), ("rpc", "2.0.1"), ("py", "2.0.1")])
def test_the_scripted_session(tmp_path: Path, mosquitto: Any, csms_factory: Any, kind: str, version: str) -> None:
    csms: Csms = csms_factory(kind, version, password=PASSWORD, accept_tags=["TAG1", "TAG2", "TAG3"])
    s = Script(version)
    rig = ocpp_site(tmp_path, mosquitto.url, csms)
    try:
        rig.start()
        # boot and status, every point
        for cp in MEMBERS:
            csms.wait_call("BootNotification", cp, timeout=30)
            csms.wait_call("StatusNotification", cp, where=lambda c: s.status_of(c) == "Available", timeout=30)
        rig.add_people(drivers=0)

        # configuration: real and read back
        for cp in ("cp1", "cp2"):
            assert s.config_accepted(ask(csms, s, cp, s.sample_interval(SAMPLE_S)))
        assert s.config_value(ask(csms, s, "cp2", s.get_sample_interval())) == str(SAMPLE_S)

        # a token presented at cp1, authorized by the CSMS, then its EV
        rig.press("cp1", "TAG1")
        csms.wait_call("Authorize", "cp1", timeout=15)
        wait_for(lambda: _waiting(rig, "cp1") == "TAG1", 15, "TAG1 waiting at cp1 (the site's state)")
        rig.plug_ev("cp1")
        start1 = csms.wait_call(s.tx_action("start"), "cp1", where=s.is_start, timeout=30)
        assert s.token_of(start1) == "TAG1"

        # a remote start at cp2, then its EV
        assert ask(csms, s, "cp2", s.remote_start("TAG2"))["status"] == "Accepted"
        rig.plug_ev("cp2")
        start2 = csms.wait_call(s.tx_action("start"), "cp2", where=s.is_start, timeout=30)
        assert s.token_of(start2) == "TAG2"
        if version != "1.6":
            assert start2["payload"]["transactionInfo"].get("remoteStartId") == 7
        tx1, tx2 = s.tx_id_of(start1), s.tx_id_of(start2)

        # meter values of the running transaction
        update = csms.wait_call(s.tx_action("update"), "cp2", where=s.is_update, timeout=15)
        assert s.tx_id_of(update) == tx2

        # a charging profile lowers cp2's current: the EV follows within 5 s; the site's sum stays under its limit
        assert rig.sampler is not None
        rig.sampler.wait(lambda x: (x.amps.get("cp2") or 0) > 15, 30, "cp2 charging above 15 A")
        asked = time.monotonic()
        assert ask(csms, s, "cp2", s.tx_profile(tx2, 10.0))["status"] == "Accepted"
        followed = rig.sampler.wait(lambda x: (x.amps.get("cp2") or 99) <= 10 + TOLERANCE_A, 15,
                                    "cp2's EV at 10 A", since=asked)
        assert followed.t - asked <= 5.0 + 1.0, f"the EV followed after {followed.t - asked:.1f} s"
        composite = ask(csms, s, "cp2", s.composite(600))
        assert composite["status"] == "Accepted" and min(s.composite_limits(composite)) == 10.0

        # the CSMS goes away mid-session: both sessions go on, their messages queue on disk; cp2 is killed
        # (kill -9) with its queue not empty, started again by its supervisor, and ends its session with a ticket
        before, away = len(csms.calls()), time.time()
        csms.stop()
        t0 = time.monotonic()
        wait_for(lambda: min(_telemetry(rig, cp, t0) for cp in ("cp1", "cp2")) >= 2 * SAMPLE_S + 1, 30,
                 "both charging on while the CSMS is away (each queues a meter value every 2 s)")
        rig.signal("cp2", signal.SIGKILL)
        killed = time.time()
        wait_for(lambda: rig.points["cp2"].starts >= 2, 30, "cp2 started again by its supervisor")
        wait_for(lambda: any(t.get("cp") == "cp2" for t in rig.watch.tickets()), 60, "cp2's ticket")
        csms.restart()
        for cp in MEMBERS:
            csms.wait_connected(cp, count=2, timeout=60)
        end2 = csms.wait_call(s.tx_action("end"), "cp2", where=s.is_end, timeout=60, since=before)
        assert s.tx_id_of(end2) == tx2
        queued2 = [c for c in csms.calls("cp2") if (s.is_update(c) or s.is_end(c)) and _at(s, c) >= away]
        assert any(s.is_update(c) and _at(s, c) < killed for c in queued2), "nothing queued before the kill -9"
        csms.wait_call(s.tx_action("update"), "cp1", where=lambda c: s.is_update(c) and _at(s, c) >= away,
                       timeout=30, since=before)
        for cp, tx in (("cp1", tx1), ("cp2", tx2)):
            sent = [c for c in csms.calls(cp) if s.is_update(c) or s.is_end(c)]
            stamps = [_at(s, c) for c in sent]
            assert stamps == sorted(stamps), f"{cp}'s messages arrived out of order"
            twice = [k for k, n in Counter(repr(c["payload"]) for c in sent).items() if n > 1]
            assert not twice, f"{cp} sent twice: {twice[:1]}"
            assert all(s.tx_id_of(c) == tx for c in sent), f"{cp}: a message with another transaction id"
        assert sum(1 for c in queued2 if s.is_end(c)) == 1

        # a remote stop of cp1's transaction
        assert ask(csms, s, "cp1", s.remote_stop(tx1))["status"] == "Accepted"
        end1 = csms.wait_call(s.tx_action("end"), "cp1", where=s.is_end, timeout=30)
        assert s.stop_reason(end1) == "Remote" and s.tx_id_of(end1) == tx1

        # a reservation at cp3, seen as Reserved, then cancelled
        assert ask(csms, s, "cp3", s.reserve("TAG3", 42, 600))["status"] == "Accepted"
        csms.wait_call("StatusNotification", "cp3", where=lambda c: s.status_of(c) == "Reserved", timeout=15)
        mark = len(csms.calls())
        assert ask(csms, s, "cp3", s.cancel_reservation(42))["status"] == "Accepted"
        csms.wait_call("StatusNotification", "cp3", where=lambda c: s.status_of(c) == "Available", timeout=15,
                       since=mark)

        # a reset: cp3 ends, its service manager starts it again, it boots again
        boots = len(csms.calls("cp3", "BootNotification"))
        assert ask(csms, s, "cp3", s.reset())["status"] == "Accepted"
        wait_for(lambda: len(csms.calls("cp3", "BootNotification")) > boots, 60, "cp3 booted again after its Reset")
        assert rig.points["cp3"].starts >= 2

        highest = max(x.total() for x in rig.sampler.since(0))
        assert highest <= LIMIT_A + TOLERANCE_A, f"the site drew {highest:.1f} A, above its {LIMIT_A} A"
    finally:
        rig.close()


def _telemetry(rig: SiteRig, cp: str, since: float) -> int:
    """How many telemetry messages `cp` published since `since` (about one a second while it charges)."""
    return sum(1 for h in rig.watch.of("/telemetry", since) if h.cp == cp) if rig.watch is not None else 0


def _at(s: Script, call: dict[str, Any]) -> float:
    return parse_time(s.stamp(call))


def _waiting(rig: SiteRig, cp: str) -> str | None:
    """The driver (token) whose request waits at `cp`, in the site's published state."""
    state = rig.watch.state() if rig.watch is not None else None
    return next((a.get("driver") for a in (state or {}).get("waiting", []) if a.get("cp") == cp), None)
