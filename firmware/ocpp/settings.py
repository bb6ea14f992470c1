"""The charge point's OCPP configuration: read and set by a CSMS in either version, kept on disk, read by the core.

`OcppSettings` holds one value per key of `config_keys.KEYS`. A CSMS changes a value with 1.6
ChangeConfiguration or 2.0.1 SetVariables; the new value is on disk (`evnet.durable.replace_file`)
before "Accepted" is returned, so a restart never forgets what a CSMS was told it had set. The core reads
`value("HeartbeatInterval")` and asks `changed()` after each CSMS request which keys to act on (re-time
heartbeats, re-arm sample timers). A key marked `reboot` is stored and reported at once but only read
by `value` after the next start (`pending_reboot()` lists those).

Everything a CSMS sends is untrusted: a bad key, value or item gets its refusal status, logged (folded),
never an exception. Every payload returned is valid against the `ocpp` package's JSON schema for it.
"""

from __future__ import annotations

import json
import os
from typing import Any

from evnet.durable import replace_file
from evnet.logs import EventLogger, FoldedLog, event_logger
from firmware.ocpp.config_keys import BY_NAME, BY_VARIABLE, COMPONENTS, KEYS, Key, SettingError

FILE_VERSION = 1
MAX_FILE = 256 * 1024
MAX_NAME = 50  # CiString50: 1.6 keys, 2.0.1 component, variable and instance names
ATTRIBUTES = ("Actual", "Target", "MinSet", "MaxSet")


class OcppSettings:
    """The configuration store: `value`, `changed`; 1.6 `get_configuration`/`change_configuration`;
    2.0.1 `get_variables`/`set_variables`/`report`.

    `path` None keeps values in memory only (tests, a charge point without a state directory).
    `defaults` replaces a key's built-in default, by name, with a typed value or its text (e.g.
    `{"SecurityCtrlr.Identity": "cp1", "ChargeProfileMaxStackLevel": 10}`): how the charge point's own
    configuration sets the read-only keys. A default that breaks its key's rules raises `ValueError`.
    """

    def __init__(self, path: str | None, *, defaults: dict[str, Any] | None = None,
                 log: EventLogger | None = None) -> None:
        self.path = path
        self.log = log or event_logger("ocpp")
        self._folded = FoldedLog(self.log)
        base = {k.name: k.default for k in KEYS}
        for name, value in (defaults or {}).items():
            key = BY_NAME.get(name.lower())
            if key is None:
                raise ValueError(f"OCPP settings: no key {name!r}")
            try:
                base[key.name] = key.kind.parse(value) if isinstance(value, str) else key.kind.check(value)
            except SettingError as exc:
                raise ValueError(f"OCPP settings: {key.name}: {exc}") from None
        self._set_by_csms: set[str] = set()  # the names a CSMS set: what the file holds
        self._stored = base | self._load()
        self._active = dict(self._stored)
        self._changed: set[str] = set()

    # --- what the core reads -------------------------------------------------------------------------

    def value(self, name: str) -> Any:
        """The value in force of key `name` (a 1.6 name, or `Component.Variable[Instance]`); KeyError if none.

        int, bool, float, str, or a tuple of names for a list."""
        return self._active[BY_NAME[name.lower()].name]

    def changed(self) -> set[str]:
        """The keys whose value in force changed since the last call (a CSMS set them)."""
        out, self._changed = self._changed, set()
        return out

    def pending_reboot(self) -> set[str]:
        """Keys set to a new value that takes effect at the next start."""
        return {n for n, v in self._stored.items() if v != self._active[n]}

    # --- OCPP 1.6 --------------------------------------------------------------------------------------

    def get_configuration(self, keys: list[str] | None) -> dict[str, Any]:
        """The GetConfiguration.conf payload for `keys` (None or empty: every key).

        At most GetConfigurationMaxKeys requested keys are answered; the rest are dropped and logged,
        as are names longer than 50 characters (they cannot be echoed in `unknownKey`)."""
        if not keys:
            known, unknown = [k for k in KEYS if k.v16], []
        else:
            known, unknown = [], []
            wanted = keys if isinstance(keys, list) else []
            limit = self.value("GetConfigurationMaxKeys")
            if len(wanted) > limit:
                self._folded.warning("ocpp.settings_too_many_keys", asked=len(wanted), answered=limit)
            for raw in wanted[:limit]:
                if not isinstance(raw, str) or len(raw) > MAX_NAME:
                    self._folded.warning("ocpp.settings_bad_key", key=str(raw)[:60])
                    continue
                key = BY_NAME.get(raw.lower())
                if key is not None and key.v16:
                    if key not in known:
                        known.append(key)
                elif raw not in unknown:
                    unknown.append(raw)
        payload: dict[str, Any] = {"configurationKey": [
            {"key": k.name, "readonly": k.readonly, "value": k.kind.render(self._stored[k.name])} for k in known]}
        if unknown:
            payload["unknownKey"] = unknown
        return payload

    def change_configuration(self, key: str, value: str) -> str:
        """ChangeConfiguration.conf's status: Accepted, RebootRequired, Rejected or NotSupported."""
        if not isinstance(key, str) or len(key) > MAX_NAME or not isinstance(value, str):
            self._folded.warning("ocpp.settings_rejected", key=str(key)[:60], reason="malformed")
            return "Rejected"
        found = BY_NAME.get(key.lower())
        if found is None or not found.v16:
            self._folded.warning("ocpp.settings_unknown_key", key=key)
            return "NotSupported"
        reason, parsed = self._check(found, value)
        if reason is not None or not self._store([(found, parsed)]):
            return "Rejected"
        return "RebootRequired" if found.reboot else "Accepted"

    # --- OCPP 2.0.1 ------------------------------------------------------------------------------------

    def get_variables(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """GetVariablesResponse.getVariableResult for `items` (GetVariablesRequest.getVariableData).

        Only attributeType Actual has a value (others: NotSupportedAttributeType). Items beyond
        ItemsPerMessage[GetVariables] are Rejected (reasonCode TooManyElements). Not a list: []."""
        limit = self.value("GetConfigurationMaxKeys")
        results = []
        for n, item in enumerate(items if isinstance(items, list) else []):
            result, key, status, reason = self._lookup(item, n >= limit)
            if key is not None:
                result["attributeValue"] = key.kind.render(self._stored[key.name])
            result["attributeStatus"] = status
            if reason:
                result["attributeStatusInfo"] = {"reasonCode": reason}
            results.append(result)
        return results

    def set_variables(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """SetVariablesResponse.setVariableResult for `items` (SetVariablesRequest.setVariableData).

        Accepted values are all on disk before this returns; if they cannot be written, none is
        taken and each is Rejected (reasonCode WriteFailed)."""
        limit = self.value("DeviceDataCtrlr.ItemsPerMessage[SetVariables]")
        results: list[dict[str, Any]] = []
        taken: list[tuple[dict[str, Any], Key, Any]] = []
        for n, item in enumerate(items if isinstance(items, list) else []):
            result, key, status, reason = self._lookup(item, n >= limit)
            if key is not None:
                reason, parsed = self._check(key, item.get("attributeValue"))
                status = "Rejected" if reason else "RebootRequired" if key.reboot else "Accepted"
                if not reason:
                    taken.append((result, key, parsed))
            result["attributeStatus"] = status
            if reason:
                result["attributeStatusInfo"] = {"reasonCode": reason}
            results.append(result)
        if taken and not self._store([(key, parsed) for _, key, parsed in taken]):
            for result, _, _ in taken:
                result.update(attributeStatus="Rejected", attributeStatusInfo={"reasonCode": "WriteFailed"})
        return results

    def report(self, base: str = "FullInventory") -> list[dict[str, Any]]:
        """NotifyReportRequest.reportData for a GetBaseReport of `base` (FullInventory: every variable;
        ConfigurationInventory: those a CSMS may set); another base: [] (the adapter answers NotSupported)."""
        if base not in ("FullInventory", "ConfigurationInventory"):
            return []
        out = []
        for key in KEYS:
            if key.v201 is None or (base == "ConfigurationInventory" and key.readonly):
                continue
            variable = {"name": key.v201.variable} | ({"instance": key.v201.instance} if key.v201.instance else {})
            characteristics = {"dataType": key.kind.data_type, "supportsMonitoring": False, **key.kind.limits()}
            if key.unit:
                characteristics["unit"] = key.unit
            out.append({"component": {"name": key.v201.component}, "variable": variable,
                        "variableAttribute": [{"type": "Actual", "value": key.kind.render(self._stored[key.name]),
                                               "mutability": "ReadOnly" if key.readonly else "ReadWrite",
                                               "persistent": True, "constant": key.readonly}],
                        "variableCharacteristics": characteristics})
        return out

    # --- inside --------------------------------------------------------------------------------------

    def _check(self, key: Key, text: object) -> tuple[str | None, Any]:
        """(None, the parsed value) if a CSMS may set `key` to `text`, else (a 2.0.1 reasonCode, None)."""
        if key.readonly:
            reason = "ReadOnly"
        elif not isinstance(text, str):
            reason = "InvalidValue"
        else:
            try:
                return None, key.kind.parse(text)
            except SettingError as exc:
                reason = exc.reason
        self._folded.warning("ocpp.settings_rejected", key=key.name, reason=reason, value=str(text)[:60])
        return reason, None

    def _lookup(self, item: object, over_limit: bool) -> tuple[dict[str, Any], Key | None, str, str | None]:
        """A 2.0.1 item's echo (component, variable, attributeType) and its key, or why there is none."""
        raw = item if isinstance(item, dict) else {}
        component, variable = _echo(raw.get("component"), evse=True), _echo(raw.get("variable"))
        result: dict[str, Any] = {"component": component, "variable": variable}
        attribute = raw.get("attributeType", "Actual")
        if attribute in ATTRIBUTES:
            result["attributeType"] = attribute
        if over_limit:
            return result, None, "Rejected", "TooManyElements"
        if component is None or variable is None or attribute not in ATTRIBUTES:
            result |= {"component": component or {"name": ""}, "variable": variable or {"name": ""}}
            self._folded.warning("ocpp.settings_bad_item", item=str(item)[:120])
            return result, None, "Rejected", "InvalidValue"
        if "evse" in component or "instance" in component or component["name"].lower() not in COMPONENTS:
            return result, None, "UnknownComponent", None
        key = BY_VARIABLE.get((component["name"].lower(), variable["name"].lower(),
                               variable.get("instance", "").lower()))
        if key is None:
            return result, None, "UnknownVariable", None
        if attribute != "Actual":
            return result, None, "NotSupportedAttributeType", None
        return result, key, "Accepted", None

    def _store(self, changes: list[tuple[Key, Any]]) -> bool:
        """Make checked values durable, then (but for `reboot` keys) in force; False, and nothing changed,
        if the file could not be written."""
        before = dict(self._stored), set(self._set_by_csms)
        for key, value in changes:
            self._stored[key.name] = value
            self._set_by_csms.add(key.name)
        if self.path is not None:
            body = {"version": FILE_VERSION, "values": {
                n: BY_NAME[n.lower()].kind.render(self._stored[n]) for n in sorted(self._set_by_csms)}}
            try:
                os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
                replace_file(self.path, json.dumps(body, indent=1, sort_keys=True).encode())
            except OSError as exc:
                self._stored, self._set_by_csms = before
                self.log.error("ocpp.settings_not_saved", file=self.path, keys=",".join(k.name for k, _ in changes),
                               error=str(exc)[:120])
                return False
        for key, value in changes:
            self.log.info("ocpp.setting_changed", key=key.name, value=key.kind.render(value)[:60],
                          reboot=key.reboot or None)
            if not key.reboot and self._active[key.name] != value:
                self._active[key.name] = value
                self._changed.add(key.name)
        return True

    def _load(self) -> dict[str, Any]:
        """The values a CSMS set, from the file; a damaged file is set aside and logged, and reads as none."""
        if self.path is None:
            return {}
        try:
            with open(self.path, "rb") as f:
                data = f.read(MAX_FILE + 1)
        except FileNotFoundError:
            return {}
        except OSError as exc:
            self.log.error("ocpp.settings_unreadable", file=self.path, error=str(exc)[:120])
            return {}
        try:
            if len(data) > MAX_FILE:
                raise ValueError(f"larger than {MAX_FILE} bytes")
            body = json.loads(data)
            if not isinstance(body, dict) or body.get("version") != FILE_VERSION or not isinstance(
                    body.get("values"), dict):
                raise ValueError(f"not a version {FILE_VERSION} settings file")
        except (ValueError, RecursionError) as exc:
            aside = self.path + ".corrupt"
            try:
                os.replace(self.path, aside)
            except OSError:
                aside = "(could not move it)"
            self.log.error("ocpp.settings_corrupt", file=self.path, kept_as=aside, error=str(exc)[:120])
            return {}
        values = {}
        for name, text in body["values"].items():
            key = BY_NAME.get(name.lower())
            try:
                if key is None or key.readonly or not isinstance(text, str):
                    raise SettingError("InvalidValue", "not a key a CSMS sets")
                values[key.name] = key.kind.parse(text)
                self._set_by_csms.add(key.name)
            except SettingError as exc:
                self.log.warning("ocpp.settings_value_dropped", file=self.path, key=str(name)[:60],
                                 error=str(exc)[:120])
        return values


def _echo(raw: object, *, evse: bool = False) -> dict[str, Any] | None:
    """A component or variable reference as the response may repeat it; None if it is not a valid one."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or len(raw["name"]) > MAX_NAME:
        return None
    out: dict[str, Any] = {"name": raw["name"]}
    if "instance" in raw:
        if not isinstance(raw["instance"], str) or len(raw["instance"]) > MAX_NAME:
            return None
        out["instance"] = raw["instance"]
    if evse and "evse" in raw:
        e = raw["evse"]
        ints = isinstance(e, dict) and all(isinstance(e.get(f, 0), int) and not isinstance(e.get(f), bool)
                                           for f in ("id", "connectorId"))
        if not ints or "id" not in e:
            return None
        out["evse"] = {f: e[f] for f in ("id", "connectorId") if f in e}
    return out
