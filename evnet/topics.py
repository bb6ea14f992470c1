"""The MQTT topics of the status table of docs/architecture.md, built in one place (the public contract).

    t = SiteTopics("evnet", "demo")
    t.cp_status("cp1")   -> "evnet/demo/cp/cp1/status"
    t.paxos("cp2")       -> "evnet/demo/paxos/cp2"
    t.gone("cp2")        -> "evnet/demo/paxos/cp2/gone"
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from evnet.config.schema import Config


@dataclass(frozen=True)
class SiteTopics:
    prefix: str
    site: str

    @classmethod
    def of(cls, cfg: Config) -> SiteTopics:
        return cls(cfg.mqtt.prefix, cfg.site_id)

    def _join(self, *parts: str) -> str:
        return "/".join((self.prefix, self.site, *parts))

    def cp_status(self, cp: str) -> str:
        return self._join("cp", cp, "status")

    def cp_telemetry(self, cp: str) -> str:
        return self._join("cp", cp, "telemetry")

    def cp_monitor(self, cp: str) -> str:
        return self._join("cp", cp, "monitor")

    def cp_all(self, cp: str = "+") -> str:
        """Every topic of charge point `cp` (or of all of them)."""
        return self._join("cp", cp, "#")

    def paxos(self, replica: str) -> str:
        """A replica's inbox (the site's internal Paxos messages)."""
        return self._join("paxos", replica)

    def gone(self, replica: str = "+") -> str:
        """Where the broker publishes a replica's Last Will when its connection dies (a hint, never proof)."""
        return self._join("paxos", replica, "gone")

    @property
    def request(self) -> str:
        return self._join("request")

    def reply(self, client: str) -> str:
        return self._join("reply", client)

    @property
    def state(self) -> str:
        return self._join("state")

    def ha_command(self, cp: str = "+", entity: str = "+") -> str:
        """Where Home Assistant sends a command for a charge point's entity (central_broker/homeassistant/)."""
        return self._join("ha", cp, entity, "set")


def ha_discovery(ha_prefix: str, device: str) -> str:
    """Home Assistant's device-based discovery topic (retained; an empty payload removes the device)."""
    return f"{ha_prefix}/device/{device}/config"


def central_status(prefix: str) -> str:
    return f"{prefix}/central/status"


def cp_identity(cfg: Config) -> dict[str, Any]:
    """The fields every status message of a charge point carries besides `status`."""
    cp = cfg.charge_point
    return {"cp": cp.id, "location": cp.location, "price_eur_kwh": cp.price_eur_kwh,
            "max_current_a": cp.max_current_a}
