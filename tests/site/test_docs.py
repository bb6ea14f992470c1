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
