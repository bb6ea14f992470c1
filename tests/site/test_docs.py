"""docs/site.md documents every op, error and limit reason the machine has (it feeds docs/mqtt-api.md)."""

from __future__ import annotations

from pathlib import Path

from firmware.site import ERRORS, REASONS
from firmware.site.decode import OPS

DOC = (Path(__file__).resolve().parents[2] / "docs" / "site.md").read_text()


def test_every_op_error_and_reason_is_in_the_doc() -> None:
    missing = [f"op {op}" for op in OPS if f"| `{op}` |" not in DOC]
    missing += [f"error {code}" for code in ERRORS if f"| `{code}` |" not in DOC]
    missing += [f"reason {reason}" for reason in REASONS if f"| `{reason}` |" not in DOC]
    assert not missing, missing


API = (Path(__file__).resolve().parents[2] / "docs" / "mqtt-api.md").read_text()


def test_the_mqtt_api_doc_has_every_error_with_its_meaning_and_every_op() -> None:
    missing = [f"error {code}" for code, meaning in ERRORS.items() if f"| `{code}` | {meaning} |" not in API]
    missing += [f"op {op}" for op in OPS if f"`{op}`" not in API]
    assert not missing, f"docs/mqtt-api.md: regenerate the error table from ERRORS; missing {missing}"


def test_the_mqtt_api_doc_has_every_site_topic() -> None:
    from evnet.topics import SiteTopics

    t = SiteTopics("evnet", "{site}")
    for topic in (t.cp_status("{cp}"), t.cp_telemetry("{cp}"), t.cp_monitor("{cp}"), t.paxos("{replica}"),
                  t.gone("{replica}"), t.request, t.reply("{client}"), t.state):
        assert f"| `{topic}` |" in API, topic
