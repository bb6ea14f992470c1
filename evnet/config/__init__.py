"""Configuration: one TOML file per charge point, checked before anything starts."""

from evnet.config.loader import ConfigError, load_config, parse_config
from evnet.config.schema import (
    ChargePointConfig,
    Config,
    HalConfig,
    MeterConfig,
    MonitorConfig,
    MqttConfig,
    PilotConfig,
    PinConfig,
    PinsConfig,
    SiteConfig,
)

__all__ = [
    "ChargePointConfig", "Config", "ConfigError", "HalConfig", "MeterConfig", "MonitorConfig",
    "MqttConfig", "PilotConfig", "PinConfig", "PinsConfig", "SiteConfig", "load_config", "parse_config",
]
