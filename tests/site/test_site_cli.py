"""`evnet site` end to end against three SiteMachine replicas on a real Mosquitto."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

from evnet.cli import main as evnet_main
from evnet.mqtt import MqttLink
from evnet.topics import SiteTopics
from firmware.site.client import SiteClient
from firmware.site.credentials import load_private_key, public_key_b64
from firmware.site.publication import StatePublisher

from .replicas import Replicas


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = evnet_main(["site", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_keygen_writes_a_private_key_for_its_owner_only_and_its_public_key(tmp_path, capsys):
    code, out, _ = run(capsys, "keygen", str(tmp_path / "d01.pem"))
    assert code == 0
    assert stat.S_IMODE(os.stat(tmp_path / "d01.pem").st_mode) == 0o600
    key = load_private_key((tmp_path / "d01.pem").read_bytes())
    assert (tmp_path / "d01.pem.pub").read_text().strip() == public_key_b64(key) == json.loads(out)["key"]
    code, _, err = run(capsys, "keygen", str(tmp_path / "d01.pem"))  # never overwrites a key
    assert code == 2 and "exists" in err and err.count("\n") == 1


def test_an_operator_adds_a_driver_who_requests_a_charge_and_the_operator_stops_and_resumes(
        replicas: Replicas, tmp_path, capsys):
    cfg = str(tmp_path / "etc" / "cp1.toml")
    for cp in ("cp1", "cp2"):
        assert replicas.submit(cp, 1, "register", cp=cp, price_eur_kwh=0.3, max_current_a=32)["ok"]
        assert replicas.submit(cp, 2, "renew", cp=cp)["ok"]
    for who in ("op1", "d01"):
        assert run(capsys, "keygen", str(tmp_path / f"{who}.pem"))[0] == 0
    op = ["--config", cfg, "--as", "OP1", "--key", str(tmp_path / "op1.pem")]
    driver = ["--config", cfg, "--key", str(tmp_path / "d01.pem")]

    code, out, err = run(capsys, "--config", cfg, "operators", "add", "OP1", "--key", str(tmp_path / "op1.pem.pub"))
    assert (code, json.loads(out)["role"]) == (0, "operator"), err
    code, out, _ = run(capsys, *op, "drivers", "add", "D01", "--key", str(tmp_path / "d01.pem.pub"))
    assert (code, json.loads(out)["id"]) == (0, "D01")
    code, out, _ = run(capsys, *driver, "request", "--driver", "D01", "--at", "cp2")
    assert code == 0 and json.loads(out)["cp"] == "cp2"
    code, out, _ = run(capsys, *driver, "--as", "D01", "whoami")
    assert json.loads(out)["role"] == "driver"

    code, out, err = run(capsys, *driver, "--as", "D01", "stop", "cp2")  # a driver may not
    said = [line for line in err.splitlines() if line.startswith("evnet site:")]  # not the replicas' own logs
    assert code == 1 and out == "" and len(said) == 1 and said[0].startswith("evnet site: refused: wrong_role: ")
    code, out, _ = run(capsys, *op, "stop", "all")
    assert code == 0 and json.loads(out)["cps"] == ["cp1", "cp2", "cp3"]
    leader = replicas.machines[replicas.leader().id]
    assert not leader.state.cps["cp2"].available and not leader.state.cps["cp1"].available
    code, out, _ = run(capsys, *op, "resume", "cp2")
    assert code == 0 and json.loads(out)["cps"] == ["cp2"] and leader.state.cps["cp2"].available
    code, out, _ = run(capsys, *op, "limit", "50")
    assert code == 0 and json.loads(out)["limit_a"] == 50
    code, _, err = run(capsys, *op, "limit", "5")  # out of range: the site says which field
    assert code == 1 and "bad_field" in err
    with SiteClient(replicas.mqtt, "demo", principal="OP1",
                    key=load_private_key((tmp_path / "op1.pem").read_bytes())) as client:
        assert client.whoami()["role"] == "operator"

    # the leader's publication (as `evnet cp` wires it): retained, read by anyone with `status`
    runner = replicas.leader()
    payload = StatePublisher().offer(leader.summary(), runner.replica.learner.applied, now=0.0)
    link = MqttLink(replicas.mqtt, "publisher")
    assert link.start(5)
    try:
        link.publish(SiteTopics(replicas.mqtt.prefix, "demo").state, payload, qos=1, retain=True).wait_for_publish(5)
    finally:
        link.stop()
    code, out, _ = run(capsys, "--config", cfg, "status")
    state = json.loads(out)
    assert code == 0 and state["slot"] == runner.replica.learner.applied and state["v"] == 1
    assert state == json.loads(payload) and "key" not in out


def test_mistakes_are_one_line_with_status_2_and_silence_a_diagnosis_with_status_1(tmp_path, capsys, mosquitto):
    from firmware.paxos.io.process import write_site_configs

    cfg = write_site_configs(str(tmp_path / "etc"), ["cp1"], mosquitto.url, site="nobody")["cp1"]
    code, _, err = run(capsys, "whoami")
    assert code == 2 and "--config" in err
    code, _, err = run(capsys, "--config", cfg, "--as", "D01", "whoami")
    assert code == 2 and "--key" in err and err.count("\n") == 1
    code, _, err = run(capsys, "--config", cfg, "--as", "D01", "--key", str(tmp_path / "none.pem"), "whoami")
    assert code == 2 and "none.pem" in err and err.count("\n") == 1
    assert run(capsys, "keygen", str(tmp_path / "d01.pem"))[0] == 0
    code, _, err = run(capsys, "--config", cfg, "--timeout", "0.5", "--as", "D01", "--key", str(tmp_path / "d01.pem"),
                       "whoami")
    assert code == 1 and "no answer" in err and "may publish on" in err and err.count("\n") == 1
    code, _, err = run(capsys, "--config", cfg, "--timeout", "0.5", "status")
    assert code == 1 and "nothing retained" in err


def test_evnet_site_runs_as_a_command():
    done = subprocess.run([sys.executable, "-m", "evnet.cli", "site", "--help"], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "drivers" in done.stdout
