"""Read a charge point's TOML file into `Config`, or say exactly what is wrong with it."""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from typing import Any, Literal

from evnet.config.schema import SPI0_CE, SPI0_PINS, CentralFile, Config, PinConfig

INTERNAL_FIELDS = {"path"}
PATH_FIELDS = {("site", "key_file"), ("mqtt", "credentials_file"), ("mqtt", "tls_ca"),
               ("mqtt", "tls_cert"), ("mqtt", "tls_key"), ("charge_point", "journal_dir"),
               ("central", "operator_key"), ("central", "registry"), ("ocpp", "password_file"), ("ocpp", "tls_ca")}


class ConfigError(Exception):
    """A configuration mistake: which file, which key, what was given, what is expected."""

    def __init__(self, file: str, key: str, problem: str) -> None:
        self.file, self.key, self.problem = file, key, problem
        where = f"{file}: {key}: " if key else f"{file}: "
        super().__init__(where + problem)


def _type_words(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(tp))
    if origin in (types.UnionType, typing.Union):
        return " or ".join(_type_words(a) for a in typing.get_args(tp) if a is not type(None))
    if origin is list:
        return f"a list of {_type_words(typing.get_args(tp)[0])}"
    if dataclasses.is_dataclass(tp):
        return "a table"
    return {str: "a string", int: "an integer", float: "a number", bool: "true or false"}.get(tp, str(tp))


def _given(value: Any) -> str:
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


class _Builder:
    def __init__(self, file: str) -> None:
        self.file = file

    def fail(self, key: str, problem: str) -> ConfigError:
        return ConfigError(self.file, key, problem)

    def value(self, tp: Any, value: Any, key: str) -> Any:
        origin = typing.get_origin(tp)
        if origin in (types.UnionType, typing.Union):
            options = [a for a in typing.get_args(tp) if a is not type(None)]
            return self.value(options[0], value, key)
        if origin is Literal:
            if value not in typing.get_args(tp):
                raise self.fail(key, f"got {_given(value)}, expected {_type_words(tp)}")
            return value
        if origin is list:
            if not isinstance(value, list):
                raise self.fail(key, f"got {_given(value)}, expected {_type_words(tp)}")
            (item_tp,) = typing.get_args(tp)
            return [self.value(item_tp, item, f"{key}[{i}]") for i, item in enumerate(value)]
        if dataclasses.is_dataclass(tp):
            if isinstance(tp, type) and tp is PinConfig and isinstance(value, int) and not isinstance(value, bool):
                value = {"pin": value}  # `contactor = 17` is short for `contactor = { pin = 17 }`
            if not isinstance(value, dict):
                raise self.fail(key, f"got {_given(value)}, expected a table")
            return self.table(tp, value, key)
        if tp is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        if not isinstance(value, tp) or (tp is not bool and isinstance(value, bool)):
            raise self.fail(key, f"got {_given(value)}, expected {_type_words(tp)}")
        return value

    def table(self, cls: Any, table: dict[str, Any], prefix: str) -> Any:
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls) if f.name not in INTERNAL_FIELDS}
        for name in table:
            if name not in fields:
                known = ", ".join(fields)
                raise self.fail(_join(prefix, name), f"unknown key; expected one of: {known}")
        kwargs = {}
        for name, f in fields.items():
            key = _join(prefix, name)
            if name not in table:
                if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                    raise self.fail(key, f"missing; expected {f.metadata.get('expect') or _type_words(hints[name])}")
                continue
            value = self.value(hints[name], table[name], key)
            check = f.metadata.get("check")
            if check is not None and value is not None and not check(value):
                raise self.fail(key, f"got {_given(value)}, expected {f.metadata['expect']}")
            kwargs[name] = value
        return cls(**kwargs)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _check_whole(cfg: Config, b: _Builder) -> Config:
    cp, site, hal = cfg.charge_point, cfg.site, cfg.hal
    if cp.id not in site.members:
        raise b.fail("site.members", f"got {site.members!r}, expected a list that includes this charge point {cp.id!r}")
    dupes = sorted({m for m in site.members if site.members.count(m) > 1})
    if dupes:
        raise b.fail("site.members", f"got {dupes[0]!r} twice, expected each charge point once")
    if site.fallback_a > cp.max_current_a:
        raise b.fail("site.fallback_a", f"got {site.fallback_a!r}, expected at most charge_point.max_current_a "
                                        f"({cp.max_current_a!r})")
    if site.fallback_a * len(site.members) > site.limit_a:
        raise b.fail("site.fallback_a", f"got {site.fallback_a!r} A for each of {len(site.members)} members, "
                                        f"{site.fallback_a * len(site.members):g} A in all; expected at most the "
                                        f"site limit {site.limit_a:g} A: charge points that lost the site fall back "
                                        "to it all at once")
    used: dict[int, str] = {}
    lines = {f"hal.pins.{name}": getattr(hal.pins, name).pin for name in (f.name for f in dataclasses.fields(hal.pins))}
    if hal.pilot.backend == "real":
        lines.update({f"hal.pilot (SPI0 {n})": p for n, p in SPI0_PINS.items()})
        lines["hal.pilot.spi_device"] = SPI0_CE[hal.pilot.spi_device]
    for key, pin in lines.items():
        if pin in used:
            raise b.fail(key, f"got GPIO{pin}, already used by {used[pin]}; expected a pin of its own")
        used[pin] = key
    if cfg.meter.backend == "simulated" and hal.pilot.backend != "simulated":
        raise b.fail("meter.backend", "got 'simulated' with a real pilot, expected 'real': the simulated meter "
                                      "measures the simulated EV, which only the simulated pilot has")
    mon = cfg.monitor
    if not mon.serial_url.startswith("socket://") and mon.monitor_end == mon.serial_url:
        raise b.fail("monitor.monitor_url", f"got {mon.monitor_url!r}, expected the monitor's own device, crossed "
                                            f"TX->RX with the engine's {mon.serial_url!r} (docs/wiring.md)")
    if cfg.meter.transport == "tcp":
        host, _, port = cfg.meter.address.rpartition(":")
        if not host or not port.isdigit() or int(port) > 65535:
            raise b.fail("meter.address", f"got {cfg.meter.address!r}, expected HOST:PORT for transport 'tcp'")
    return cfg


def _resolve_paths(raw: dict[str, Any], base: str) -> None:
    for section, key in PATH_FIELDS:
        value = raw.get(section, {}).get(key) if isinstance(raw.get(section), dict) else None
        if isinstance(value, str) and value and not os.path.isabs(value):
            raw[section][key] = os.path.normpath(os.path.join(base, value))


def parse_config(raw: dict[str, Any], file: str = "<config>") -> Config:
    """Build a `Config` from an already parsed TOML document."""
    b = _Builder(file)
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in raw.items()}
    _resolve_paths(raw, os.path.dirname(os.path.abspath(file)) if file != "<config>" else os.getcwd())
    cfg = b.table(Config, raw, "")
    return _check_whole(dataclasses.replace(cfg, path=file), b)


def _read_toml(file: str) -> dict[str, Any]:
    try:
        with open(file, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(file, "", "no such file") from None
    except IsADirectoryError:
        raise ConfigError(file, "", "is a directory, expected a TOML file") from None
    except PermissionError:
        raise ConfigError(file, "", "cannot be read (permission denied)") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(file, "", f"not valid TOML: {exc}") from None


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and check the TOML file at `path`; raise `ConfigError` naming what is wrong."""
    file = os.fspath(path)
    return parse_config(_read_toml(file), file)


def load_central_config(path: str | os.PathLike[str]) -> CentralFile:
    """Read and check `evnet central`'s TOML file ([central], [mqtt]); raise `ConfigError` naming what is wrong."""
    file = os.fspath(path)
    b = _Builder(file)
    raw = {k: (dict(v) if isinstance(v, dict) else v) for k, v in _read_toml(file).items()}
    if isinstance(raw.setdefault("central", {}), dict):
        raw["central"].setdefault("registry", "central.db")  # beside the file, not wherever Central starts
    _resolve_paths(raw, os.path.dirname(os.path.abspath(file)))
    return dataclasses.replace(b.table(CentralFile, raw, ""), path=file)
