"""The OCPP core under test: `OcppCore` with its real parts on a directory, fed frames as the link feeds it.

Frames from the CSMS are JSON text passed through `rpc.decode(raw, version, core.action_of)`, exactly as
firmware/ocpp/link.py does; what the core sends is parsed back (`Sent`) and checked against the `ocpp`
package's schemas a second time (tests/ocpp/schemas.py). Time is `rig.now`, moved by the test.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evnet.logs import event_logger
from firmware.ocpp import rpc
from firmware.ocpp.core import OcppCore
from firmware.ocpp.events import Event, LinkUp, Output, Propose, Sample, Send, SiteAnswer, TxStarted
from firmware.ocpp.outbox import Outbox
from firmware.ocpp.profile_store import ProfileStore
from firmware.ocpp.settings import OcppSettings
from firmware.ocpp.times import stamp
from firmware.ocpp.transactions import TxFile
from firmware.ocpp.v16 import Dialect16
from firmware.ocpp.v201 import Dialect201

from .schemas import validate

VERSIONS = ("1.6", "2.0.1")
DIALECTS = {"1.6": Dialect16, "2.0.1": Dialect201}
T0 = 1_780_000_000.0          # a Sunday in May 2026, in unix seconds
HEARTBEAT_S = 300             # what the CSMS's BootNotification answer says


@dataclass(frozen=True)
class Sent:
    """A frame the core sent, read back: a call (`action` set) or an answer to the CSMS's `uid`."""

    kind: int                 # 2 call, 3 result, 4 error
    uid: str
    action: str | None
    payload: dict[str, Any]


def sample(at: float, wh: float = 1000.0, a: float = 16.0) -> Sample:
    return Sample(at, wh, a * 230 * 3, a, 230.0)


def ok_answer(version: str, action: str, now: float, tx_id: int = 1) -> dict[str, Any]:
    """A valid CSMS answer to our call `action` (Accepted, where there is a status)."""
    t = stamp(now)
    if version == "1.6":
        return {"BootNotification": {"status": "Accepted", "currentTime": t, "interval": HEARTBEAT_S},
                "Heartbeat": {"currentTime": t},
                "Authorize": {"idTagInfo": {"status": "Accepted"}},
                "StartTransaction": {"transactionId": tx_id, "idTagInfo": {"status": "Accepted"}},
                }.get(action, {})
    return {"BootNotification": {"status": "Accepted", "currentTime": t, "interval": HEARTBEAT_S},
            "Heartbeat": {"currentTime": t},
            "Authorize": {"idTokenInfo": {"status": "Accepted"}},
            }.get(action, {})


class Rig:
    def __init__(self, version: str, path: Path, *, max_current_a: float = 32.0) -> None:
        self.version = version
        self.path = path
        self.log = event_logger("ocpp", cp="cp1")
        self.settings = OcppSettings(str(path / "settings.json"), log=self.log)
        self.profiles = ProfileStore(str(path / "profiles.json"), max_current_a=max_current_a, cp="cp1")
        self.outbox = Outbox(str(path / "outbox.log"), log=self.log)
        self.txfile = TxFile(str(path / "transaction.json"), self.log)
        self.core = OcppCore(DIALECTS[version]("evnet", "EVN-1", "serial-1", "evnet-0.1"), "cp1",
                             settings=self.settings, profiles=self.profiles, outbox=self.outbox,
                             txfile=self.txfile, log=self.log)
        self.now = T0
        self._uids = itertools.count(1)
        self.started = self.core.start(self.now)   # as the link starts it: the limits on disk proposed
        for proposal in proposals(self.started):
            self.site(proposal, {"ok": True})

    def restart(self) -> Rig:
        """A new core on the same files (the process started again), at the same time."""
        self.outbox.close()
        rig = Rig(self.version, self.path, max_current_a=self.profiles.max_current_a)
        rig.now = self.now
        return rig

    # -- inputs ------------------------------------------------------------------------------------------

    def handle(self, event: Event) -> list[Output]:
        return self.core.handle(event, self.now)

    def tick(self, dt: float = 0.0) -> list[Output]:
        self.now += dt
        return self.core.tick(self.now)

    def frame(self, raw: str | bytes) -> list[Output]:
        """A frame from the CSMS, as the link takes it."""
        incoming = rpc.decode(raw, self.version, self.core.action_of)
        if isinstance(incoming, rpc.BadFrame):
            return self.core.bad_frame(incoming)
        return self.core.handle(incoming, self.now)

    def answer(self, call: Sent, payload: dict[str, Any] | None = None) -> list[Output]:
        """The CSMS answers our call (by default a valid Accepted answer)."""
        if payload is None:
            payload = ok_answer(self.version, call.action or "", self.now)
        return self.frame(json.dumps([3, call.uid, payload]))

    def error(self, call: Sent, code: str = "InternalError") -> list[Output]:
        return self.frame(json.dumps([4, call.uid, code, "the CSMS refused", {}]))

    def request(self, action: str, payload: dict[str, Any], uid: str | None = None) -> list[Output]:
        """A request of the CSMS."""
        return self.frame(json.dumps([2, uid or f"csms-{next(self._uids)}", action, payload]))

    def site(self, proposal: Propose, result: dict[str, Any] | None) -> list[Output]:
        return self.handle(SiteAnswer(proposal.ref, result))

    # -- the conversation ----------------------------------------------------------------------------

    def up(self) -> Sent:
        """The link comes up: the core's one output is its BootNotification."""
        out = self.handle(LinkUp())
        assert len(out) == 1, out
        boot = call_of(out)
        assert boot.action == "BootNotification"
        return boot

    def boot(self) -> list[Output]:
        """Up, booted, its status answered: the outputs after that (the queue's head or nothing)."""
        status = call_of(self.answer(self.up()))
        assert status.action == "StatusNotification"
        return self.answer(status)

    def drain(self, out: list[Output], *, tx_id: int = 1) -> list[Sent]:
        """Answer every call the core makes, from `out` on, until it has nothing more to send: the calls."""
        calls: list[Sent] = []
        while (sent := calls_in(out)):
            assert len(sent) == 1, f"more than one call in flight: {sent}"
            calls.append(sent[0])
            out = self.frame(json.dumps([3, sent[0].uid, ok_answer(self.version, sent[0].action or "", self.now,
                                                                    tx_id)]))
        return calls


# -- reading what the core returned ----------------------------------------------------------------------

def read(frame: str) -> Sent:
    msg = json.loads(frame)
    if msg[0] == 2:
        return Sent(2, msg[1], msg[2], msg[3])
    if msg[0] == 3:
        return Sent(3, msg[1], None, msg[2])
    return Sent(4, msg[1], msg[2], {"description": msg[3], "details": msg[4]})


def sends(out: list[Output]) -> list[Sent]:
    return [read(o.frame) for o in out if isinstance(o, Send)]


def calls_in(out: list[Output]) -> list[Sent]:
    return [s for s in sends(out) if s.kind == 2]


def call_of(out: list[Output]) -> Sent:
    """The one call in `out`."""
    calls = calls_in(out)
    assert len(calls) == 1, f"expected one call, got {out}"
    return calls[0]


def reply_of(out: list[Output], uid: str, version: str, action: str) -> dict[str, Any]:
    """The core's answer to the CSMS's request `uid`, checked against its schema once more."""
    answers = [s for s in sends(out) if s.uid == uid]
    assert len(answers) == 1, f"expected one answer to {uid}, got {out}"
    assert answers[0].kind == 3, f"expected a result, got {answers[0]}"
    validate("v16" if version == "1.6" else "v201", f"{action}Response", answers[0].payload)
    return answers[0].payload


def proposals(out: list[Output], op: str | None = None) -> list[Propose]:
    return [o for o in out if isinstance(o, Propose) and (op is None or o.op == op)]


# -- a booted core's requests and sessions ----------------------------------------------------------------


def ask(rig: Rig, request: tuple[str, dict[str, Any]], uid: str = "q1") -> tuple[list[Any], dict[str, Any] | None]:
    """Send a request: (the outputs, the answer's payload or None when it waits for the site)."""
    out = rig.request(request[0], request[1], uid)
    answered = [s for s in (read(o.frame) for o in out if isinstance(o, Send)) if s.uid == uid]
    return out, reply_of(out, uid, rig.version, request[0]) if answered else None


def start_session(rig: Rig, token: str = "card-1", session: str = "s1") -> str:
    """A session running, its start answered (1.6: id 4711): the transaction id as the CSMS knows it."""
    out = rig.handle(TxStarted(session, token, sample(rig.now)))
    for p in proposals(out, "charging_limits"):
        rig.site(p, {"ok": True})
    rig.drain(out, tx_id=4711)
    assert rig.outbox.head() is None
    return "4711" if rig.version == "1.6" else session
