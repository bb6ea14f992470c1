"""`evnet cp`'s back office: the OCPP client (firmware/ocpp) fed from the engine, the bridge and the site.

The charge point's threads hand this adapter what happened (the engine's actions and readings, the bridge's
decisions, the replica's view and results); it turns them into the OCPP core's events, which the link's own
thread takes in order. The core's proposals come back here and go to the site as this member's commands; its
answers come back as `SiteAnswer`. A session becomes an OCPP transaction when the site confirmed its start
(`ConfirmStart`), whoever asked for it, and ends with its ticket. Nothing here is in the energy path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

from evnet.config import Config
from evnet.logs import EventLogger
from firmware.chargepoint.outputs import ConfirmStart, Grant, Output, RefuseStart
from firmware.chargepoint.sessions import site_reason
from firmware.engine.actions import PlugChanged, SessionOpened, SessionVoided, StatusChanged, TicketClosed
from firmware.engine.evse import SiteEvent
from firmware.ocpp.core import OcppCore
from firmware.ocpp.events import (
    Connector,
    LocalStart,
    Propose,
    Restart,
    Sample,
    SiteAnswer,
    TokenPresented,
    TxEnded,
    TxStarted,
)
from firmware.ocpp.events import Output as OcppOutput
from firmware.ocpp.link import Endpoint, OcppLink
from firmware.ocpp.outbox import Outbox
from firmware.ocpp.profile_store import ProfileStore
from firmware.ocpp.settings import OcppSettings
from firmware.ocpp.transactions import TxFile
from firmware.ocpp.v16 import Dialect16
from firmware.ocpp.v201 import Dialect201
from firmware.site import CpView
from firmware.site.credentials import member_command
from hal.meter import MeterReading

FIRMWARE = "evnet-0.1"
DRAWING_A = 1.0   # a session drawing less than this is suspended (by the EV, or by the site: grant < 6 A)


@dataclass(frozen=True)
class OcppRef:
    """Names a proposal of the OCPP core: its result goes back to the core."""

    ref: int


@dataclass
class _Point:
    """What the connector's status is made of, as last heard."""

    engine: str = "AVAILABLE"
    fault: str | None = None
    plugged: bool = False
    in_tx: bool = False
    drawn_a: float = 0.0
    offered_a: float = 0.0
    available: bool = True
    reserved: bool = False


def connector_status(p: _Point) -> str:
    """OCPP 1.6's status words (2.0.1's are derived from them in v201.py)."""
    if p.engine == "FAULTED" or p.fault:
        return "Faulted"
    if p.engine == "OUT_OF_ORDER" or not p.available:
        return "Unavailable"
    if p.in_tx:
        if p.drawn_a >= DRAWING_A:
            return "Charging"
        return "SuspendedEVSE" if p.offered_a < 6 else "SuspendedEV"
    if p.plugged:
        return "Preparing"
    return "Reserved" if p.reserved else "Available"


def data_dir_of(replica_dir: str) -> str:
    """Where the back office keeps its files: in the charge point's data directory, which is its own
    (`--data-dir`, default SITE/CP/replica), beside the replica's files (REPLICA/ocpp)."""
    return os.path.join(replica_dir, "ocpp")


class BackOffice:
    def __init__(self, cfg: Config, data_dir: str, *, propose: Callable[[bytes, OcppRef], None],
                 local_start: Callable[[str], None], log: EventLogger) -> None:
        assert cfg.ocpp is not None
        o = cfg.ocpp
        os.makedirs(data_dir, mode=0o700, exist_ok=True)
        self.cfg = cfg
        self.log = log
        self._propose = propose
        self._local_start = local_start
        self.restart: str | None = None   # a Reset asked for a new start (the process ends; systemd starts it)
        identity = o.identity or cfg.cp_id
        dialect = (Dialect16 if o.version == "1.6" else Dialect201)(o.vendor, o.model, cfg.cp_id, FIRMWARE)
        self.settings = OcppSettings(os.path.join(data_dir, "settings.json"), log=log, defaults={
            "SecurityCtrlr.Identity": identity,
            "SecurityCtrlr.SecurityProfile": 2 if o.url.startswith("wss://") else 1 if o.password_file else 0})
        self.profiles = ProfileStore(os.path.join(data_dir, "profiles.json"),
                                     max_current_a=cfg.charge_point.max_current_a,
                                     max_profiles=self.settings.value("MaxChargingProfilesInstalled"),
                                     max_stack_level=self.settings.value("ChargeProfileMaxStackLevel"),
                                     max_periods=self.settings.value("ChargingScheduleMaxPeriods"), cp=cfg.cp_id)
        self.outbox = Outbox(os.path.join(data_dir, "outbox.log"), log=log)
        self.core = OcppCore(dialect, cfg.cp_id, settings=self.settings, profiles=self.profiles, outbox=self.outbox,
                             txfile=TxFile(os.path.join(data_dir, "transaction.json"), log), log=log)
        password = None
        if o.password_file is not None:
            with open(o.password_file, encoding="utf-8") as f:
                password = f.read().strip()
        self.link = OcppLink(self.core, Endpoint(o.url, identity, o.version, password, o.tls_ca), self._output, log)
        self._point = _Point()
        self._status: str | None = None
        self._opened: dict[str, tuple[str, Sample]] = {}  # session -> (token, first reading), until confirmed
        self._last: Sample | None = None

    def start(self) -> None:
        self.link.start()

    def stop(self) -> None:
        self.link.stop()

    @property
    def alive(self) -> bool:
        return self.link.alive

    # -- from the charge point's threads -----------------------------------------------------------------

    def engine(self, event: SiteEvent) -> None:
        """What the engine did (evse.py's `site_observer`)."""
        match event:
            case MeterReading():
                self._last = sample = Sample(event.taken_at, event.import_kwh * 1000, event.power_w,
                                             max(event.current_a), max(event.voltage_v))
                self._point.drawn_a = sample.current_a
                self.link.put(sample)
            case SessionOpened(session_id, driver, start):
                self._opened[session_id] = (driver, Sample(start.taken_at, start.import_kwh * 1000, 0.0, 0.0, 0.0))
            case SessionVoided(session_id):
                self._opened.pop(session_id, None)
            case TicketClosed(ticket):
                self._point.in_tx = False
                end = Sample(ticket.end_ts, ticket.end_kwh * 1000, 0.0, 0.0, 0.0)
                self.link.put(TxEnded(ticket.session_id, end, site_reason(ticket.reason)))
            case PlugChanged(present):
                self._point.plugged = present
            case StatusChanged(status, fault):
                self._point.engine, self._point.fault = status, fault
        self._connector()

    def bridge(self, out: Output) -> None:
        """What the bridge decided, as it is carried out."""
        match out:
            case ConfirmStart(session_id):
                opened = self._opened.pop(session_id, None)
                if opened is not None:
                    self._point.in_tx = True
                    self.link.put(TxStarted(session_id, opened[0], opened[1]))
            case RefuseStart(session_id):
                self._opened.pop(session_id, None)
            case Grant(amps):
                self._point.offered_a = amps
        self._connector()

    def view(self, view: CpView) -> None:
        self._point.available, self._point.reserved = view.available, view.reservation is not None
        self._connector()

    def site_result(self, ref: OcppRef, result: object) -> None:
        self.link.put(SiteAnswer(ref.ref, result if isinstance(result, dict) else None))

    def token(self, token: str) -> None:
        """An id token presented at the point: the CSMS authorizes it (or, unreachable, the site and local list)."""
        self.link.put(TokenPresented(token))

    def _connector(self) -> None:
        status = connector_status(self._point)
        if status != self._status:
            self._status = status
            self.link.put(Connector(status, self._point.fault))

    # -- from the core (the link's thread) ------------------------------------------------------------------

    def _output(self, out: OcppOutput) -> None:
        match out:
            case Propose(ref, op, args):
                self._propose(member_command(op, args), OcppRef(ref))
            case LocalStart(token):
                self._local_start(token)
            case Restart(reason):
                self.log.warning("cp.ocpp_reset", reason=reason)
                self.restart = reason
