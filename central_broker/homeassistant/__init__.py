"""Home Assistant MQTT discovery for evnet's charge points (docs/homeassistant.md): the pure part
(`discovery.py`: what to publish, what a command means) and the adapter Central runs (`adapter.py`)."""

from central_broker.homeassistant.adapter import HomeAssistant
from central_broker.homeassistant.discovery import Action, Refused, charge_point_device, command, site_device

__all__ = ["Action", "HomeAssistant", "Refused", "charge_point_device", "command", "site_device"]
