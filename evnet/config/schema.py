"""The configuration of one charge point, as typed, frozen dataclasses.

Each field's metadata may carry `check` (a predicate) and `expect` (what a person
should have written); `evnet.config.loader` turns a TOML table into these classes and
names the file, the key, the value given and the value expected for any mistake.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
DRIVER_RE = re.compile(r"^[A-Za-z0-9._@-]{1,64}$")
BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


def spec(default: Any = ..., *, check: Callable[[Any], bool] | None = None, expect: str = "",
         factory: Callable[[], Any] | None = None) -> Any:
    """A dataclass field with a validity check and the words that describe a valid value."""
    meta = {"check": check, "expect": expect}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    if default is ...:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


def _ident() -> Any:
    return spec(check=lambda v: bool(ID_RE.match(v)),
                expect="1-32 characters of a-z, 0-9, '-' or '_', starting with a letter or digit")


def _positive(default: Any = ...) -> Any:
    return spec(default, check=lambda v: v > 0, expect="a number > 0")


@dataclass(frozen=True)
class ChargePointConfig:
    """[charge_point]: who this charge point is."""

    id: str = _ident()
    site: str = _ident()
    price_eur_kwh: float = spec(check=lambda v: 0 <= v <= 10, expect="a price from 0 to 10 €/kWh")
    max_current_a: float = spec(check=lambda v: 6 <= v <= 80, expect="a current from 6 to 80 A")
    location: str = ""
    phases: int = spec(3, check=lambda v: v in (1, 3), expect="1 or 3")
    # Drivers the manual-start button may start a charge for; a plain press charges to the first.
    local_drivers: list[str] = spec(factory=list, check=lambda v: len(set(v)) == len(v) and all(
        DRIVER_RE.match(d) for d in v), expect="a list of distinct driver ids (1-64 of A-Z a-z 0-9 . _ @ -)")
    # An authorization given with no EV plugged in lapses after this long (OCPP's ConnectionTimeOut).
    connection_timeout_s: float = spec(60.0, check=lambda v: 5 <= v <= 3600, expect="5 to 3600 s")
    # Where the engine journals open sessions and unsent tickets ("": $STATE_DIRECTORY or ~/.local/state/evnet/...).
    journal_dir: str = ""


@dataclass(frozen=True)
class PinConfig:
    """One GPIO line: BCM number and polarity."""

    pin: int = spec(check=lambda v: 0 <= v <= 27, expect="a BCM GPIO number from 0 to 27")
    active_high: bool = True


def _pin(number: int, active_high: bool = True) -> Any:
    return spec(factory=lambda: PinConfig(number, active_high))


@dataclass(frozen=True)
class PinsConfig:
    """[hal.pins]: the pin map. Buttons are wired to ground (active low) by default."""

    contactor: PinConfig = _pin(17)
    safety: PinConfig = _pin(27)
    led_red: PinConfig = _pin(22)  # GPIO 4/5 carry the monitor link's UART (docs/wiring.md)
    led_green: PinConfig = _pin(6)
    led_blue: PinConfig = _pin(13)
    button_start: PinConfig = _pin(19, active_high=False)
    button_estop: PinConfig = _pin(26, active_high=False)
    pilot_pwm: PinConfig = _pin(18)


# SPI0 lines used by the MCP3008 that reads the pilot voltage (CE0 / CE1 by spi_device).
SPI0_PINS = {"spi_sclk": 11, "spi_mosi": 10, "spi_miso": 9}
SPI0_CE = {0: 8, 1: 7}


@dataclass(frozen=True)
class PilotConfig:
    """[hal.pilot]: the control pilot. `simulated` talks to an EV emulator over a virtual cable."""

    backend: Literal["simulated", "real"] = "simulated"
    cable: str = spec("inproc", check=lambda v: v == "inproc" or v.startswith("tcp://"),
                      expect="'inproc' or 'tcp://HOST:PORT' (where the EV emulator plugs in)")
    adc_channel: int = spec(0, check=lambda v: 0 <= v <= 7, expect="an MCP3008 channel 0-7")
    spi_device: int = spec(0, check=lambda v: v in (0, 1), expect="0 (CE0) or 1 (CE1)")
    pwm_frequency_hz: int = spec(1000, check=lambda v: v == 1000, expect="1000 (IEC 61851-1)")


@dataclass(frozen=True)
class HalConfig:
    """[hal]: which backends drive the hardware."""

    pin_factory: Literal["mock", "lgpio", "rpigpio", "pigpio"] = "mock"
    pins: PinsConfig = spec(factory=PinsConfig)
    pilot: PilotConfig = spec(factory=PilotConfig)


@dataclass(frozen=True)
class MeterConfig:
    """[meter]: the energy meter. `simulated` starts a Modbus server that follows the load."""

    backend: Literal["simulated", "real"] = "simulated"
    model: Literal["SDM630", "SDM120"] = "SDM630"
    transport: Literal["tcp", "rtu"] = "tcp"
    address: str = spec("127.0.0.1:0", check=lambda v: bool(v.strip()),
                        expect="HOST:PORT for tcp, a serial port or pyserial URL for rtu")
    device_id: int = spec(1, check=lambda v: 1 <= v <= 247, expect="a Modbus device id 1-247")
    baudrate: int = spec(9600, check=lambda v: v in BAUD_RATES,
                         expect="one of " + ", ".join(map(str, BAUD_RATES)))
    parity: Literal["N", "E", "O"] = "N"
    stopbits: int = spec(1, check=lambda v: v in (1, 2), expect="1 or 2")
    poll_interval_s: float = spec(1.0, check=lambda v: 0.01 <= v <= 60, expect="0.01 to 60 s")
    timeout_s: float = spec(0.5, check=lambda v: 0.01 <= v <= 10, expect="0.01 to 10 s")
    retries: int = spec(2, check=lambda v: 0 <= v <= 10, expect="0 to 10")
    # Failed attempts in a row (across reads) that make the meter faulted: the engine then opens the contactor
    # at once. A dead meter is faulted within fail_after x timeout_s plus back-offs (hal/meter/driver.py).
    fail_after: int = spec(3, check=lambda v: 1 <= v <= 100, expect="1 to 100 failed attempts in a row")


@dataclass(frozen=True)
class MqttConfig:
    """[mqtt]: the broker. Paths are relative to the configuration file."""

    url: str = spec("mqtt://127.0.0.1:1883", check=lambda v: bool(re.match(r"^mqtts?://[^/:]+(:\d+)?/?$", v)),
                    expect="mqtt://HOST[:PORT] or mqtts://HOST[:PORT]")
    prefix: str = spec("evnet", check=lambda v: bool(re.match(r"^[A-Za-z0-9_-]+(/[A-Za-z0-9_-]+)*$", v)),
                       expect="a topic prefix without wildcards, e.g. 'evnet'")
    credentials_file: str | None = None
    tls_ca: str | None = None
    tls_cert: str | None = None
    tls_key: str | None = None
    keepalive_s: int = spec(10, check=lambda v: 2 <= v <= 600, expect="2 to 600 s")
    version: Literal["5", "3.1.1"] = "5"  # 3.1.1 for the embedded amqtt broker, which has no MQTT 5


@dataclass(frozen=True)
class SiteConfig:
    """[site]: the charge points that share the grid connection and its limit."""

    members: list[str] = spec(check=lambda v: 1 <= len(v) <= 9 and all(ID_RE.match(m) for m in v),
                              expect="a list of 1 to 9 charge point ids")
    limit_a: float = spec(check=lambda v: 6 <= v <= 2000, expect="a site current limit from 6 to 2000 A")
    key_file: str = spec(check=lambda v: bool(v.strip()), expect="the path of the site's shared key file")
    fallback_a: float = spec(6.0, check=lambda v: v == 0 or 6 <= v <= 80, expect="0 or 6 to 80 A")
    lease_s: float = spec(5.0, check=lambda v: 1 <= v <= 600, expect="1 to 600 s")


@dataclass(frozen=True)
class MonitorConfig:
    """[monitor]: the watchdog link between the engine and cp-monitor."""

    serial_url: str = spec("socket://127.0.0.1:7401", check=lambda v: bool(v.strip()),
                           expect="a serial device (/dev/ttyAMA0) or a pyserial URL (socket://HOST:PORT)")
    # The monitor's own end. A UART link has two devices crossed TX->RX (docs/wiring.md), one per
    # process; "" means the same as serial_url, which is right only for socket:// (the monitor listens).
    monitor_url: str = ""
    heartbeat_s: float = spec(1.0, check=lambda v: 0.05 <= v <= 60, expect="0.05 to 60 s")
    misses: int = spec(2, check=lambda v: 1 <= v <= 20, expect="1 to 20 missed heartbeats")

    @property
    def monitor_end(self) -> str:
        """What the monitor opens (or listens on): its own device, or the engine's socket:// address."""
        return self.monitor_url or self.serial_url


@dataclass(frozen=True)
class SafetyConfig:
    """[safety]: when the engine cuts off an EV that draws more than it is offered (docs/engine-checks.md).

    It trips when a phase draws more than (offer + overcurrent_noise_a) x (1 + overcurrent_tolerance_pct
    / 100) for overcurrent_delay_s: 36 A on a 32 A offer trips after 7 s, 35 A does not. The defaults are
    EVerest's (EvseManager: soft_over_current_measurement_noise_A 0.5, soft_over_current_tolerance_percent
    10, soft_over_current_timeout_ms 7000, at least 6000); the delay must exceed the 5 s IEC 61851-1 gives
    an EV to follow a lower offer. (OpenEVSE trips at offer + 5 A for 5 s: looser at 32 A.)
    """

    overcurrent_tolerance_pct: float = spec(10.0, check=lambda v: 0 <= v <= 50, expect="0 to 50 %")
    overcurrent_noise_a: float = spec(0.5, check=lambda v: 0 <= v <= 5, expect="0 to 5 A")
    overcurrent_delay_s: float = spec(7.0, check=lambda v: 6 <= v <= 60,
                                      expect="6 to 60 s (IEC 61851-1 gives an EV 5 s to follow a lower offer)")


@dataclass(frozen=True)
class OcppConfig:
    """[ocpp]: this charge point's back office (a CSMS), spoken to in OCPP 1.6J or 2.0.1 (docs/ocpp.md). Paths
    are relative to the configuration file. No [ocpp] section: no CSMS, nothing changes."""

    url: str = spec(check=lambda v: bool(re.match(r"^wss?://[^/\s]+(/[^\s]*)?$", v)),
                    expect="ws://HOST[:PORT]/PATH or wss://HOST[:PORT]/PATH (the identity is appended)")
    version: Literal["1.6", "2.0.1"] = "1.6"
    identity: str = spec("", check=lambda v: v == "" or bool(re.match(r"^[A-Za-z0-9._-]{1,48}$", v)),
                         expect="1-48 of A-Z a-z 0-9 . _ - (default: the charge point's id)")
    password_file: str | None = None   # Basic authentication (security profiles 1 and 2): the password alone
    tls_ca: str | None = None          # the CA that signed the CSMS's certificate (wss://); default: the system's
    vendor: str = spec("evnet", check=lambda v: 1 <= len(v) <= 20, expect="1-20 characters")
    model: str = spec("evnet-cp", check=lambda v: 1 <= len(v) <= 20, expect="1-20 characters")


@dataclass(frozen=True)
class Config:
    """One charge point's whole configuration, as read from `path`."""

    charge_point: ChargePointConfig
    site: SiteConfig
    hal: HalConfig = spec(factory=HalConfig)
    meter: MeterConfig = spec(factory=MeterConfig)
    mqtt: MqttConfig = spec(factory=MqttConfig)
    monitor: MonitorConfig = spec(factory=MonitorConfig)
    safety: SafetyConfig = spec(factory=SafetyConfig)
    ocpp: OcppConfig | None = None
    path: str = ""

    @property
    def cp_id(self) -> str:
        return self.charge_point.id

    @property
    def site_id(self) -> str:
        return self.charge_point.site


@dataclass(frozen=True)
class CentralConfig:
    """[central]: the Central host (`evnet central`): its broker, the sites it watches, its operator key, its web
    dashboard, its registry. Paths are relative to the configuration file."""

    # "external": use the broker at mqtt.url; "mosquitto": start Mosquitto as a child on mqtt.url's host and port;
    # "embedded": start amqtt there (MQTT 3.1.1 only); "auto": Mosquitto where installed, else amqtt.
    broker: Literal["external", "mosquitto", "embedded", "auto"] = "external"
    sites: list[str] = spec(factory=list, check=lambda v: len(set(v)) == len(v) and all(ID_RE.match(s) for s in v),
                            expect="a list of distinct site ids ([] watches every site on the broker)")
    operator_id: str = spec("central", check=lambda v: bool(DRIVER_RE.match(v)),
                            expect="an operator id (1-64 of A-Z a-z 0-9 . _ @ -) the sites know Central's key by")
    operator_key: str = ""  # its Ed25519 private key (`evnet site keygen`); "" = a dashboard without controls
    web_listen: str = spec("127.0.0.1:8080", check=lambda v: bool(re.match(r"^[^\s:]+:\d{1,5}$", v)),
                           expect="HOST:PORT for the web dashboard (loopback unless you mean to expose it)")
    registry: str = spec("central.db", check=lambda v: bool(v.strip()), expect="the path of the SQLite registry")
    # Home Assistant discovery and commands (docs/homeassistant.md). Off by default: on, anyone who may publish on
    # evnet/+/ha/+/+/set acts with Central's operator key, so it is turned on together with that ACL.
    homeassistant: bool = False


@dataclass(frozen=True)
class CentralFile:
    """The whole configuration of `evnet central`, as read from `path`."""

    central: CentralConfig = spec(factory=CentralConfig)
    mqtt: MqttConfig = spec(factory=MqttConfig)
    path: str = ""
