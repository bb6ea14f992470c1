"""Configuration: one TOML file per charge point, checked before anything starts."""

from evnet.config.loader import ConfigError, load_central_config, load_config, parse_config
from evnet.config.schema import (
    CentralConfig,
    CentralFile,
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
    "CentralConfig", "CentralFile", "ChargePointConfig", "Config", "ConfigError", "HalConfig", "MeterConfig",
    "MonitorConfig", "MqttConfig", "PilotConfig", "PinConfig", "PinsConfig", "SiteConfig", "load_central_config",
    "load_config", "parse_config",
]
