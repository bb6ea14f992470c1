"""`evnet hal-check`: the checks a person runs on a freshly wired Pi, on the mock HAL."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from central_broker.brokers import free_port
from evnet.config import load_config
from hal.check import HalCheck, main

BASE = """\
[charge_point]
id = "bay9"
site = "s1"
price_eur_kwh = 0.3
max_current_a = 32

[site]
members = ["bay9"]
limit_a = 32
key_file = "k"

[hal]
pin_factory = "mock"
"""


def test_mock_run_passes_every_check(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--mock", "--pause", "0"]) == 0
    out = capsys.readouterr().out
    assert "5 passed, 0 failed, 0 skipped" in out
    meter_rows = [line for line in out.splitlines() if line.strip().startswith("#")]
    assert len(meter_rows) == 10 and all("kWh" in row for row in meter_rows)
    assert "10.0/10.0/10.0 A" in meter_rows[0]  # the simulated test load reached the meter over Modbus
    for status in ("AVAILABLE", "RESERVED", "CHARGING", "OUT_OF_ORDER", "FAULTED", "DISCONNECTED"):
        assert status in out
    assert "state A" in out


def test_mock_run_over_rtu_on_a_pty(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "cp.toml"
    cfg.write_text(BASE + '[meter]\ntransport = "rtu"\naddress = "/dev/null"\nbaudrate = 115200\n')
    assert main(["--config", str(cfg), "--mock", "--pause", "0"]) == 0
    assert "over Modbus RTU" in capsys.readouterr().out


def test_a_meter_that_does_not_answer_fails_the_check(tmp_path: Path) -> None:
    port = free_port()  # nobody listens there
    cfg = tmp_path / "cp.toml"
    cfg.write_text(BASE + f'[meter]\nbackend = "real"\naddress = "127.0.0.1:{port}"\ntimeout_s = 0.05\n'
                   'retries = 0\npoll_interval_s = 0.01\n')
    out = io.StringIO()
    check = HalCheck(load_config(cfg), mock=False, ask=lambda q: True, out=out, pause_s=0)
    assert check.run() == 1
    meter = next(o for o in check.outcomes if o.name == "meter")
    assert meter.result == "FAIL" and "0 of 10 reads good" in meter.detail
    assert f"127.0.0.1:{port}" in meter.detail  # the error says where
    assert "1 failed" in out.getvalue()


def test_relays_are_not_clicked_without_confirmation(tmp_path: Path) -> None:
    cfg = tmp_path / "cp.toml"
    cfg.write_text(BASE + "[meter]\npoll_interval_s = 0.01\n")
    questions: list[str] = []

    def ask(question: str) -> bool:
        questions.append(question)
        return "LED" in question  # the person saw the LED, but does not allow the clicks

    check = HalCheck(load_config(cfg), mock=False, ask=ask, out=io.StringIO(), pause_s=0)
    assert check.run() == 0
    results = {o.name: o.result for o in check.outcomes}
    assert results["contactor relay (GPIO17)"] == "skipped"
    assert results["safety relay (GPIO27)"] == "skipped"
    assert sum("relay" in q for q in questions) == 2


def test_an_led_nobody_saw_fails(tmp_path: Path) -> None:
    cfg = tmp_path / "cp.toml"
    cfg.write_text(BASE + "[meter]\npoll_interval_s = 0.01\n")
    check = HalCheck(load_config(cfg), mock=False, ask=lambda q: "LED" not in q, out=io.StringIO(), pause_s=0)
    assert check.run() == 1
    assert {o.name: o.result for o in check.outcomes}["LED"] == "FAIL"


def test_without_config_or_mock_it_says_what_to_give(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    assert "give --config FILE" in capsys.readouterr().err


def test_without_gpio_hal_check_says_what_failed_and_what_to_do_in_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The real lgpio factory on a machine that is no Pi (as after `./bootstrap --pi` on a laptop)."""
    cfg = tmp_path / "cp.toml"
    cfg.write_text(BASE.replace('pin_factory = "mock"', 'pin_factory = "lgpio"'))
    assert main(["--config", str(cfg), "--pause", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert "not a Raspberry Pi" in err and "--mock" in err
    assert "install" not in err  # lgpio is installed: telling the user to install it again would be wrong


def test_each_cause_of_a_gpio_failure_has_its_own_remedy(monkeypatch: pytest.MonkeyPatch) -> None:
    from gpiozero.exc import PinUnknownPi

    from hal.gpio import factory

    monkeypatch.setattr(factory.glob, "glob", lambda pattern: [])  # a laptop: no GPIO chip at all
    assert "not a Raspberry Pi" in factory.diagnose(ModuleNotFoundError("No module named 'lgpio'"), "x")
    monkeypatch.setattr(factory.glob, "glob", lambda pattern: ["/dev/gpiochip0"])  # a Pi
    assert "./bootstrap --pi" in factory.diagnose(ModuleNotFoundError("No module named 'lgpio'"),
                                                  "run ./bootstrap --pi")
    assert "gpio group" in factory.diagnose(PermissionError("[Errno 13] /dev/gpiochip0"), "x")
    assert "not a Raspberry Pi" in factory.diagnose(PinUnknownPi("unable to locate Pi revision"), "x")


def test_unconfirmed_led_is_not_a_failure_when_nobody_could_be_asked(tmp_path: Path) -> None:
    cfg = tmp_path / "cp.toml"
    cfg.write_text(BASE)
    out = io.StringIO()
    check = HalCheck(load_config(cfg), mock=False, ask=lambda q: None, out=out, pause_s=0)
    check.run()
    led = next(o for o in check.outcomes if o.name == "LED")
    assert led.result == "skipped" and "not confirmed" in led.detail
    said_no = HalCheck(load_config(cfg), mock=False, ask=lambda q: False, out=io.StringIO(), pause_s=0)
    said_no.run()
    assert next(o for o in said_no.outcomes if o.name == "LED").result == "FAIL"
