"""Fixtures for OCPP tests: the two test CSMSs (ocpp-rpc strict under Node, the Python `ocpp` package)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .csms import KINDS, VERSIONS, Csms, free_of_violations, node_missing

# Every (kind, version) pair, for @pytest.mark.parametrize("csms", CSMS_MATRIX, indirect=True) or by hand.
CSMS_MATRIX = [pytest.param((kind, version), id=f"{kind}-{version}") for kind in KINDS for version in VERSIONS]


def skip_without_node(kind: str) -> None:
    """Skip (one line saying why) when the ocpp-rpc CSMS cannot run here; CI installs Node and it never skips."""
    if kind == "rpc" and (why := node_missing()) is not None:
        pytest.skip(f"the ocpp-rpc CSMS cannot run: {why}")


@pytest.fixture
def csms_factory(tmp_path: Path) -> Iterator[Callable[..., Csms]]:
    """`csms_factory(kind, version, **options) -> Csms`, started; stopped after the test, which fails
    if a CSMS saw a schema violation or protocol error the test did not take (`take_violations`)."""
    made: list[Csms] = []

    def make(kind: str, version: str, **options: Any) -> Csms:
        skip_without_node(kind)
        made.append(Csms(kind, version, tmp_path, **options))
        return made[-1]

    yield make
    for csms in made:
        csms.stop()
    failures = [f for csms in made if (f := free_of_violations(csms)) is not None]
    if failures:
        pytest.fail("\n".join(failures))


@pytest.fixture
def csms(request: pytest.FixtureRequest, csms_factory: Callable[..., Csms]) -> Csms:
    """A started CSMS: parametrize indirectly with (kind, version) or (kind, version, options)."""
    kind, version, *rest = request.param
    return csms_factory(kind, version, **(rest[0] if rest else {}))
