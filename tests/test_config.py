"""Every kind of configuration mistake gets one clear message naming file, key, given and expected."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from evnet.cli import main
from evnet.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parent.parent
CENTRAL_EXAMPLES = sorted((ROOT / "config" / "central").rglob("*.toml"))  # `evnet central`'s files
EXAMPLES = sorted(set((ROOT / "config").rglob("*.toml")) - set(CENTRAL_EXAMPLES))

GOOD = """\
[charge_point]
id = "cp1"
site = "s1"
price_eur_kwh = 0.3
max_current_a = 32

[site]
members = ["cp1", "cp2", "cp3"]
limit_a = 63
key_file = "site.key"
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "cp.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_example_loads(path: Path) -> None:
    cfg = load_config(path)
    assert cfg.cp_id in cfg.site.members


@pytest.mark.parametrize("path", CENTRAL_EXAMPLES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_shipped_central_example_loads(path: Path) -> None:
    from evnet.config import load_central_config

    assert load_central_config(path).central.web_listen.startswith("127.0.0.1:")  # loopback unless meant


def test_minimal_file_gets_defaults_and_absolute_paths(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD))
    assert cfg.charge_point.max_current_a == 32.0 and isinstance(cfg.charge_point.max_current_a, float)
    assert cfg.hal.pin_factory == "mock"
    assert cfg.site.key_file == str(tmp_path / "site.key")
    assert cfg.meter.model == "SDM630" and cfg.monitor.misses == 2


def test_local_drivers_for_the_manual_start_button(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, GOOD)).charge_point.local_drivers == []
    cfg = load_config(write(tmp_path, GOOD.replace("max_current_a = 32", 'max_current_a = 32\nlocal_drivers = '
                                                   '["owner", "guest@home"]')))
    assert cfg.charge_point.local_drivers == ["owner", "guest@home"]


def test_no_back_office_unless_configured_and_its_paths_resolved(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, GOOD)).ocpp is None
    cfg = load_config(write(tmp_path, GOOD + "[ocpp]\nurl = 'wss://csms.example/ocpp'\nversion = '2.0.1'\n"
                                             "password_file = 'ocpp.pw'\ntls_ca = 'ca.pem'\n"))
    assert cfg.ocpp is not None and cfg.ocpp.version == "2.0.1" and cfg.ocpp.identity == ""
    assert (cfg.ocpp.password_file, cfg.ocpp.tls_ca) == (str(tmp_path / "ocpp.pw"), str(tmp_path / "ca.pem"))


def test_short_pin_form(tmp_path: Path) -> None:
    cfg = load_config(write(tmp_path, GOOD + "[hal.pins]\ncontactor = 4\n"))
    assert cfg.hal.pins.contactor.pin == 4 and cfg.hal.pins.contactor.active_high


# (what is added or changed, key named, words of the message)
MISTAKES = [
    ("missing key", GOOD.replace('price_eur_kwh = 0.3\n', ''), "charge_point.price_eur_kwh",
     "missing; expected a price from 0 to 10"),
    ("missing section", GOOD.split("[site]")[0], "site", "missing; expected a table"),
    ("wrong type", GOOD.replace("max_current_a = 32", 'max_current_a = "32"'), "charge_point.max_current_a",
     "got '32', expected a number"),
    ("bool for a number", GOOD.replace("max_current_a = 32", "max_current_a = true"),
     "charge_point.max_current_a", "got true, expected a number"),
    ("unknown key", GOOD + "[meter]\nbaud = 9600\n", "meter.baud", "unknown key; expected one of: backend"),
    ("unknown section", GOOD + "[metre]\nmodel = 'SDM630'\n", "metre", "unknown key"),
    ("impossible value", GOOD.replace("max_current_a = 32", "max_current_a = 500"), "charge_point.max_current_a",
     "got 500.0, expected a current from 6 to 80 A"),
    ("not in a choice", GOOD + "[meter]\nmodel = 'SDM72'\n", "meter.model",
     "got 'SDM72', expected one of 'SDM630', 'SDM120'"),
    ("bad baud rate", GOOD + "[meter]\nbaudrate = 9601\n", "meter.baudrate", "got 9601, expected one of 1200"),
    ("pin used twice", GOOD + "[hal.pins]\nsafety = 17\n", "hal.pins.safety",
     "got GPIO17, already used by hal.pins.contactor"),
    ("pin clashes with SPI of the real pilot", GOOD + "[hal.pilot]\nbackend = 'real'\n[hal.pins]\nled_red = 10\n",
     "hal.pilot (SPI0 spi_mosi)", "got GPIO10, already used by hal.pins.led_red"),
    ("pin out of range", GOOD + "[hal.pins]\ncontactor = 40\n", "hal.pins.contactor.pin",
     "got 40, expected a BCM GPIO number from 0 to 27"),
    ("member list without me", GOOD.replace('["cp1", "cp2", "cp3"]', '["cp2", "cp3"]'), "site.members",
     "expected a list that includes this charge point 'cp1'"),
    ("member twice", GOOD.replace('["cp1", "cp2", "cp3"]', '["cp1", "cp2", "cp2"]'), "site.members",
     "got 'cp2' twice"),
    ("bad id", GOOD.replace('id = "cp1"', 'id = "CP 1"'), "charge_point.id", "got 'CP 1', expected 1-32 characters"),
    ("list of wrong items", GOOD.replace('["cp1", "cp2", "cp3"]', '["cp1", 2]'), "site.members[1]",
     "got 2, expected a string"),
    ("fallback above max", GOOD.replace("key_file", "fallback_a = 40\nkey_file").replace(
        "max_current_a = 32", "max_current_a = 16"), "site.fallback_a", "expected at most charge_point.max_current_a"),
    ("fallbacks above the limit", GOOD.replace("key_file", "fallback_a = 22\nkey_file"), "site.fallback_a",
     "66 A in all; expected at most the site limit 63 A"),
    ("tcp meter without port", GOOD + "[meter]\ntransport = 'tcp'\naddress = 'meter.local'\n", "meter.address",
     "expected HOST:PORT"),
    ("bad broker url", GOOD + "[mqtt]\nurl = 'http://x'\n", "mqtt.url", "expected mqtt://HOST[:PORT]"),
    ("bad heartbeat", GOOD + "[monitor]\nheartbeat_s = 0\n", "monitor.heartbeat_s", "got 0.0, expected 0.05 to 60 s"),
    ("local driver twice", GOOD.replace("max_current_a = 32", 'max_current_a = 32\nlocal_drivers = ["a", "a"]'),
     "charge_point.local_drivers", "expected a list of distinct driver ids"),
    ("no connection timeout", GOOD.replace("max_current_a = 32", "max_current_a = 32\nconnection_timeout_s = 0"),
     "charge_point.connection_timeout_s", "got 0.0, expected 5 to 3600 s"),
    ("table where a value goes", GOOD + "[charge_point.phases]\nx = 1\n", "charge_point.phases",
     "got a table, expected an integer"),
    ("back office over http", GOOD + "[ocpp]\nurl = 'http://csms/ocpp'\n", "ocpp.url", "expected ws://HOST"),
    ("back office without a url", GOOD + "[ocpp]\nversion = '1.6'\n", "ocpp.url", "missing"),
    ("an OCPP version we do not speak", GOOD + "[ocpp]\nurl = 'ws://csms/'\nversion = '2.1'\n", "ocpp.version",
     "got '2.1'"),
]


@pytest.mark.parametrize("text, key, words", [m[1:] for m in MISTAKES], ids=[m[0] for m in MISTAKES])
def test_mistake_is_named(tmp_path: Path, text: str, key: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert err.value.file == str(path)
    assert err.value.key == key
    assert words in err.value.problem
    assert str(err.value).startswith(f"{path}: {key}: ")


def test_not_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[charge_point\nid = 1\n")
    with pytest.raises(ConfigError, match=r"not valid TOML: .*line 1"):
        load_config(path)


def test_no_such_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.toml")


def test_command_line_gives_one_line_and_status_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, GOOD + "[meter]\nbaudrate = 9601\n")
    status = main(["hal-check", "--config", str(path)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"{path}: meter.baudrate: got 9601" in err


def test_installed_command_exits_2_without_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("limit_a = 63", "limit_a = -1"))
    proc = subprocess.run([sys.executable, "-m", "evnet.cli", "hal-check", "--config", str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "site.limit_a: got -1.0, expected a site current limit from 6 to 2000 A" in proc.stderr
    assert proc.stderr.strip().count("\n") == 0


@pytest.mark.parametrize("content, words", [
    (None, "no such file; expected a file of 32 random bytes in hex"),
    ("00ff", "a site key needs at least 16 bytes (32 hex digits), found 2"),
])
def test_a_bad_site_key_names_site_key_file(tmp_path: Path, content: str | None, words: str) -> None:
    from evnet.config.site_key import site_key

    if content is not None:
        (tmp_path / "site.key").write_text(content)
    cfg = load_config(write(tmp_path, GOOD))
    with pytest.raises(ConfigError) as err:
        site_key(cfg)
    assert err.value.key == "site.key_file" and words in err.value.problem


def test_replica_without_its_key_file_says_so_in_one_line(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)  # site.key does not exist
    proc = subprocess.run([sys.executable, "-m", "evnet.cli", "replica", "--config", str(path),
                           "--data-dir", str(tmp_path / "data")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert f"{path}: site.key_file: {tmp_path / 'site.key'}: no such file" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_uart_monitor_link_needs_the_monitors_own_device(tmp_path: Path) -> None:
    """Both processes opening one UART would each read the other's frames and their own: no link at all."""
    cfg = tmp_path / "cp.toml"
    cfg.write_text(GOOD + '[monitor]\nserial_url = "/dev/ttyAMA0"\n')
    with pytest.raises(ConfigError, match="monitor.monitor_url.*the monitor's own device"):
        load_config(cfg)
    cfg.write_text(GOOD + '[monitor]\nserial_url = "/dev/ttyAMA0"\nmonitor_url = "/dev/ttyAMA2"\n')
    assert load_config(cfg).monitor.monitor_end == "/dev/ttyAMA2"
    cfg.write_text(GOOD + '[monitor]\nserial_url = "socket://127.0.0.1:7401"\n')  # the monitor listens there
    assert load_config(cfg).monitor.monitor_end == "socket://127.0.0.1:7401"


def test_a_simulated_meter_needs_the_simulated_pilot(tmp_path: Path) -> None:
    cfg = tmp_path / "cp.toml"
    cfg.write_text(GOOD + '[hal.pilot]\nbackend = "real"\n[meter]\nbackend = "simulated"\n')
    with pytest.raises(ConfigError, match="meter.backend.*only the simulated pilot"):
        load_config(cfg)


def test_central_config_reads_its_sections_and_resolves_paths(tmp_path) -> None:
    from evnet.config import load_central_config

    path = tmp_path / "central.toml"
    path.write_text('[mqtt]\nurl = "mqtt://127.0.0.1:1884"\n[central]\nbroker = "auto"\nsites = ["demo"]\n'
                    'operator_key = "keys/central.pem"\nweb_listen = "127.0.0.1:0"\n')
    cfg = load_central_config(path)
    assert (cfg.central.broker, cfg.central.sites, cfg.mqtt.url) == ("auto", ["demo"], "mqtt://127.0.0.1:1884")
    assert cfg.central.operator_key == str(tmp_path / "keys" / "central.pem")
    assert cfg.central.registry == str(tmp_path / "central.db")


def test_central_config_names_a_bad_key(tmp_path) -> None:
    import pytest

    from evnet.config import ConfigError, load_central_config

    path = tmp_path / "central.toml"
    path.write_text('[central]\nsites = ["Bad Site"]\n')
    with pytest.raises(ConfigError, match="central.sites"):
        load_central_config(path)
