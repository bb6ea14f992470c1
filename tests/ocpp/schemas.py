"""Check a payload against the `ocpp` package's JSON schema for its message (the schemas a strict CSMS uses)."""

from __future__ import annotations

import json
from functools import cache
from importlib.resources import files
from typing import Any

import jsonschema


@cache
def _validator(version: str, name: str) -> Any:
    """`version` "v16" or "v201"; `name` the schema's file name without `.json` (e.g. "GetVariablesResponse")."""
    schema = json.loads(files("ocpp").joinpath(version, "schemas", f"{name}.json").read_text("utf-8-sig"))
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)


def validate(version: str, name: str, payload: Any) -> None:
    """Raise `jsonschema.ValidationError` unless `payload` is valid for message `name` of `version`."""
    _validator(version, name).validate(payload)
