"""The charging profiles a CSMS installed on this charge point, on disk before they are acted on.

The core asks the store what is in force now (`limits`), when that next changes (`next_change`, so it
sets one timer) and what to report (`composite`); the CSMS's Set/ClearChargingProfile and the end of a
transaction change it. Every change is written whole and atomically (`evnet.durable.replace_file`)
before it takes effect, so a restart, even a kill -9, finds exactly the profiles in force.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import replace
from typing import Any

from evnet.durable import replace_file
from evnet.logs import event_logger
from firmware.ocpp import schedule
from firmware.ocpp.profiles import MAX_TX_ID, ChargingProfile, ProfileError, Purpose, Unit, from_v16, from_v201
from firmware.ocpp.schedule import Composite, Electrical, Limits, TxInfo

FILE_FORMAT = 1
MAX_FILE_BYTES = 4 << 20
LOAD_MAX_PERIODS = 1024  # a profile on disk was accepted once; a smaller max_periods since does not drop it
DECODERS = {"1.6": from_v16, "2.0.1": from_v201}


class ProfileStore:
    """Installed profiles by id, persisted to `path` (None: in memory only, for tests and simulations)."""

    def __init__(self, path: str | None, *, max_current_a: float, max_profiles: int = 20, max_stack_level: int = 10,
                 max_periods: int = 24, voltage_v: float = 230.0, phases: int = 3, cp: str | None = None) -> None:
        if not (math.isfinite(max_current_a) and max_current_a > 0):
            raise ValueError(f"max_current_a must be > 0, got {max_current_a!r}")
        if not (math.isfinite(voltage_v) and voltage_v > 0) or phases not in (1, 2, 3):
            raise ValueError(f"voltage_v must be > 0 and phases 1 to 3, got {voltage_v!r}, {phases!r}")
        if min(max_profiles, max_stack_level, max_periods) < 1:
            raise ValueError("max_profiles, max_stack_level and max_periods must be at least 1")
        self.path = path
        self.max_current_a = float(max_current_a)
        self.max_profiles = max_profiles
        self.max_stack_level = max_stack_level
        self.max_periods = max_periods
        self.electrical = Electrical(float(voltage_v), phases)
        self.log = event_logger("ocpp", cp=cp)
        self._profiles: dict[int, ChargingProfile] = self._load() if path is not None else {}

    def installed(self) -> list[ChargingProfile]:
        return sorted(self._profiles.values(), key=lambda p: p.id)

    def install(self, profile: ChargingProfile, *, tx: TxInfo | None, now: float) -> tuple[bool, str]:
        """Take a decoded profile (SetChargingProfile, or the one a remote start carries): (accepted?, reason)."""
        if profile.stack_level > self.max_stack_level:
            return self._refused(profile, f"stackLevel {profile.stack_level} above {self.max_stack_level}")
        if len(profile.periods) > self.max_periods:
            return self._refused(profile, f"{len(profile.periods)} periods, at most {self.max_periods}")
        if profile.purpose == "tx":
            if tx is None:
                return self._refused(profile, "a TxProfile needs a running transaction")
            if not _is_tx_id(tx.transaction_id):  # it would make the file unreadable at the next start
                return self._refused(profile, f"transaction id {tx.transaction_id!r:.40} is not 1 to {MAX_TX_ID} "
                                              "characters")
            if profile.transaction_id is None:
                profile = replace(profile, transaction_id=tx.transaction_id)
            elif profile.transaction_id != tx.transaction_id:
                return self._refused(profile, f"transaction {profile.transaction_id} is not the running one")
        if profile.kind == "Absolute" and profile.start is None:
            if not math.isfinite(now):
                return self._refused(profile, f"no start for an Absolute schedule at {now!r}")
            profile = replace(profile, start=now)  # 1.6 lets an Absolute schedule start when it arrives
        replaced = sorted(i for i, p in self._profiles.items()
                          if i == profile.id or (p.purpose, p.stack_level) == (profile.purpose, profile.stack_level))
        # Profiles past their validTo leave here, to make room: they can never apply again.
        kept = {i: p for i, p in self._profiles.items()
                if i not in replaced and not (p.valid_to is not None and p.valid_to <= now)}
        if len(kept) >= self.max_profiles:
            return self._refused(profile, f"{len(kept)} profiles installed, at most {self.max_profiles}")
        kept[profile.id] = profile
        try:
            self._save(kept)
        except OSError as e:
            self.log.error("ocpp.profiles.persist_failed", path=self.path, error=str(e))
            return self._refused(profile, "could not store the profile")
        self._profiles = kept
        self.log.info("ocpp.profile.installed", id=profile.id, purpose=profile.purpose,
                      stack_level=profile.stack_level, kind=profile.kind, tx=profile.transaction_id,
                      replaced=",".join(map(str, replaced)) or None)
        return True, "replaced " + ", ".join(map(str, replaced)) if replaced else "installed"

    def clear(self, *, id: int | None = None, purpose: Purpose | None = None,
              stack_level: int | None = None) -> bool:
        """ClearChargingProfile: by id alone when given (1.6 and 2.0.1 ignore the criteria then), else every
        profile matching all criteria given, else all. True if anything was cleared (else "Unknown")."""
        def matches(p: ChargingProfile) -> bool:
            if id is not None:
                return p.id == id
            return (purpose is None or p.purpose == purpose) and (stack_level is None or p.stack_level == stack_level)
        return self._drop(matches, "ocpp.profile.cleared")

    def transaction_ended(self, transaction_id: str) -> bool:
        """A TxProfile lives as long as its transaction."""
        return self._drop(lambda p: p.purpose == "tx" and p.transaction_id == transaction_id,
                          "ocpp.profile.transaction_ended")

    def limits(self, now: float, tx: TxInfo | None) -> Limits:
        return schedule.limits(self._profiles.values(), now, tx, self.electrical)

    def next_change(self, now: float, tx: TxInfo | None) -> float | None:
        return schedule.next_change(self._profiles.values(), now, tx)

    def composite(self, now: float, duration_s: float, unit: Unit, tx: TxInfo | None) -> Composite:
        return schedule.composite(list(self._profiles.values()), now, duration_s, unit, tx, self.electrical,
                                  self.max_current_a)

    def _refused(self, profile: ChargingProfile, reason: str) -> tuple[bool, str]:
        self.log.warning("ocpp.profile.rejected", id=profile.id, purpose=profile.purpose, reason=reason)
        return False, reason

    def _drop(self, doomed: Any, event: str) -> bool:
        gone = sorted(i for i, p in self._profiles.items() if doomed(p))
        if not gone:
            return False
        self._profiles = {i: p for i, p in self._profiles.items() if i not in gone}
        self.log.info(event, ids=",".join(map(str, gone)))
        try:
            self._save(self._profiles)
        except OSError as e:
            # Dropping a limit the CSMS took away cannot wait for the disk; the next write catches up.
            self.log.error("ocpp.profiles.persist_failed", path=self.path, error=str(e))
        return True

    def _save(self, profiles: dict[int, ChargingProfile]) -> None:
        if self.path is None:
            return
        records = [{"version": p.version, "profile": p.raw, "transaction_id": p.transaction_id, "start": p.start}
                   for p in sorted(profiles.values(), key=lambda p: p.id)]
        replace_file(self.path, json.dumps({"format": FILE_FORMAT, "profiles": records}).encode())

    def _load(self) -> dict[int, ChargingProfile]:
        assert self.path is not None
        try:
            with open(self.path, "rb") as f:
                data = f.read(MAX_FILE_BYTES + 1)
        except FileNotFoundError:
            return {}
        except OSError as e:
            self.log.error("ocpp.profiles.unreadable", path=self.path, error=str(e))
            return {}
        try:
            profiles = _decode_file(data)
        except (ProfileError, ValueError, RecursionError) as e:
            self.log.error("ocpp.profiles.corrupt_file", path=self.path, moved_to=self.path + ".bad",
                           error=str(e)[:200])
            try:
                os.replace(self.path, self.path + ".bad")
            except OSError as moved:
                self.log.error("ocpp.profiles.persist_failed", path=self.path, error=str(moved))
            return {}
        self.log.info("ocpp.profiles.loaded", path=self.path, count=len(profiles))
        return profiles


def _decode_file(data: bytes) -> dict[int, ChargingProfile]:
    """The store's file back to profiles; ValueError (ProfileError is one) for anything not as written."""
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"over {MAX_FILE_BYTES} bytes")
    doc = json.loads(data)
    if not isinstance(doc, dict) or doc.get("format") != FILE_FORMAT or not isinstance(doc.get("profiles"), list):
        raise ValueError(f"not a format {FILE_FORMAT} profile file")
    profiles: dict[int, ChargingProfile] = {}
    for record in doc["profiles"]:
        if not isinstance(record, dict) or record.get("version") not in DECODERS:
            raise ValueError("a record without a known OCPP version")
        tx, start = record.get("transaction_id"), record.get("start")
        if tx is not None and not _is_tx_id(tx):
            raise ValueError(f"transaction_id {tx!r:.40}")
        if start is not None and (isinstance(start, bool) or not isinstance(start, int | float)
                                  or not math.isfinite(start)):
            raise ValueError(f"start {start!r:.40}")
        p = DECODERS[record["version"]](record.get("profile"), max_periods=LOAD_MAX_PERIODS)
        p = replace(p, transaction_id=tx, start=None if start is None else float(start))
        if p.id in profiles:
            raise ValueError(f"profile {p.id} twice")
        profiles[p.id] = p
    return profiles


def _is_tx_id(tx: object) -> bool:
    """What a TxProfile may be bound to: the rule of install and of the file alike."""
    return isinstance(tx, str) and 0 < len(tx) <= MAX_TX_ID
