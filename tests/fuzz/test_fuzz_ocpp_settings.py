"""Fuzz the OCPP configuration store's entry points in both versions and its file: whatever a CSMS sends (or
a damaged disk holds) gives a status and a schema-valid payload, never an exception, and no value outside
its key's rules is ever taken."""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from firmware.ocpp.config_keys import KEYS, MEASURANDS
from firmware.ocpp.settings import OcppSettings

from ..ocpp.schemas import validate

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=60),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12)
names_16 = st.sampled_from([k.name for k in KEYS]) | st.text(max_size=60)
texts = (st.sampled_from(["0", "-1", "1", "3600", "86400", "86401", "true", "FALSE", "", " ", "1.5", "1e9", "nan",
                          "inf", ",".join(MEASURANDS), "Voltage,Voltage", "1.RST", "0.RST,1.RST,2.RST", "A,W"])
         | st.text(max_size=80) | st.text(alphabet="0123456789-+., ", max_size=30))
variables = [k.v201 for k in KEYS if k.v201 is not None]


@st.composite
def near_items(draw: st.DrawFn) -> Any:
    """A GetVariableData / SetVariableData that is usually almost right."""
    v = draw(st.sampled_from(variables))
    component: Any = {"name": draw(st.sampled_from([v.component, v.component.upper(), "EVSE", "x" * 51]))}
    if draw(st.booleans()):
        component[draw(st.sampled_from(["evse", "instance", "customData"]))] = draw(json_values)
    variable: Any = {"name": draw(st.sampled_from([v.variable, v.variable.lower(), "Nope"]))}
    if v.instance or draw(st.booleans()):
        variable["instance"] = draw(st.sampled_from([v.instance or "", "Default"]) | st.text(max_size=60))
    item: dict[str, Any] = {"component": draw(st.just(component) | json_values),
                            "variable": draw(st.just(variable) | json_values)}
    if draw(st.booleans()):
        item["attributeType"] = draw(st.sampled_from(["Actual", "Target", "MinSet", "MaxSet"]) | json_values)
    if draw(st.booleans()):
        item["attributeValue"] = draw(texts | json_values)
    return item


def assert_within_rules(s: OcppSettings) -> None:
    """Every value in force and stored is one its key accepts."""
    for key in KEYS:
        key.kind.check(s.value(key.name))
    validate("v16", "GetConfigurationResponse", s.get_configuration(None))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(names_16 | json_values, texts | json_values), max_size=6))
def test_change_configuration_gives_a_status_and_takes_only_valid_values(changes: list[tuple[Any, Any]]) -> None:
    s = OcppSettings(None)
    for key, value in changes:
        assert s.change_configuration(key, value) in ("Accepted", "Rejected", "RebootRequired", "NotSupported")
    assert_within_rules(s)


@settings(max_examples=300, deadline=None)
@given(st.none() | st.lists(names_16 | json_values, max_size=8) | json_values)
def test_get_configuration_always_answers_a_valid_payload(keys: Any) -> None:
    validate("v16", "GetConfigurationResponse", OcppSettings(None).get_configuration(keys))


@settings(max_examples=300, deadline=None)
@given(st.lists(near_items() | json_values, min_size=1, max_size=6))
def test_get_and_set_variables_answer_one_valid_result_per_item(items: list[Any]) -> None:
    s = OcppSettings(None)
    got = s.get_variables(items)
    assert len(got) == len(items)
    validate("v201", "GetVariablesResponse", {"getVariableResult": got})
    done = s.set_variables(items)
    assert len(done) == len(items)
    validate("v201", "SetVariablesResponse", {"setVariableResult": done})
    assert_within_rules(s)


@settings(max_examples=100, deadline=None)
@given(json_values)
def test_anything_not_a_list_of_items_gives_no_results(items: Any) -> None:
    if not isinstance(items, list):
        assert OcppSettings(None).get_variables(items) == [] and OcppSettings(None).set_variables(items) == []


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=300) | json_values.map(lambda v: json.dumps({"version": 1, "values": v})
                                                 .encode()))
def test_any_file_content_loads_to_values_within_the_rules(content: bytes) -> None:
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "ocpp.json")
        with open(path, "wb") as f:
            f.write(content)
        assert_within_rules(OcppSettings(path))
