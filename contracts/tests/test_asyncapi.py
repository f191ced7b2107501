"""The AsyncAPI document is valid AsyncAPI 3.0.0, summarises every event in words of its own, and
gives every date-time, date and id its format.

`asyncapi-3.0.0.schema.json` beside this file is the specification's own JSON Schema, copied
unchanged from `schemas/3.0.0.json` of the `@asyncapi/specs` package (version 6.11.1, from the
npm registry). Licence: Apache License 2.0, Copyright 2016-2025 AsyncAPI Initiative (the
package's LICENSE and NOTICE).
"""

from __future__ import annotations

import copy
import inspect
import json
from pathlib import Path
from typing import Any

import jsonschema
import msgspec.inspect as mi
import pytest

from stafett_contracts.asyncapi import document
from stafett_contracts.catalogue import EVENTS
from stafett_contracts.envelope import Event, type_name
from stafett_contracts.export import schema_of

ASYNCAPI_SCHEMA = Path(__file__).with_name("asyncapi-3.0.0.schema.json")


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    schema = json.loads(ASYNCAPI_SCHEMA.read_text())
    return jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )


def test_the_document_is_valid_asyncapi_3(validator: jsonschema.Draft7Validator) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(document())]

    assert errors == []


def test_the_validator_refuses_a_document_that_breaks_the_specification(
    validator: jsonschema.Draft7Validator,
) -> None:
    broken = copy.deepcopy(document())
    first = next(iter(broken["channels"].values()))
    first["address"] = 42  # an address is a string or null

    assert not validator.is_valid(broken)


@pytest.mark.parametrize("cls", EVENTS.values(), ids=EVENTS.keys())
def test_every_event_is_summarised_by_its_own_docstring(cls: type[Event]) -> None:
    own = cls.__dict__.get("__doc__")
    assert own, f"{type_name(cls)} has no docstring of its own"
    messages = document()["components"]["messages"].values()
    summaries = {m["summary"] for m in messages if m["name"] == type_name(cls)}  # one per stream

    assert summaries == {inspect.cleandoc(own).split("\n\n")[0].replace("\n", " ")}


def formats(t: mi.Type) -> str | None:
    """The JSON Schema format a field of type `t` must have, if any."""
    while isinstance(t, mi.Metadata):
        t = t.type
    if isinstance(t, mi.UnionType):
        members = [m for m in t.types if not isinstance(m, mi.NoneType)]
        return formats(members[0]) if len(members) == 1 else None
    return {mi.DateTimeType: "date-time", mi.DateType: "date", mi.UUIDType: "uuid"}.get(type(t))


def schema_node(schema: dict[str, Any]) -> dict[str, Any]:
    """The string schema of a field, inside `anyOf` beside null if it is optional."""
    options = [o for o in schema.get("anyOf", [schema]) if o.get("type") != "null"]
    return options[0] if len(options) == 1 else schema


@pytest.mark.parametrize("cls", EVENTS.values(), ids=EVENTS.keys())
def test_every_date_time_date_and_id_field_has_its_format(cls: type[Event]) -> None:
    components = document()["components"]["schemas"]
    published = json.loads(schema_of(cls))["$defs"]
    for schemas in (components, published):
        properties = schemas[cls.__name__]["properties"]
        info = mi.type_info(cls)
        assert isinstance(info, mi.StructType)
        for field in info.fields:
            wanted = formats(field.type)
            if wanted is not None:
                found = schema_node(properties[field.encode_name]).get("format")
                assert found == wanted, f"{cls.__name__}.{field.name}: {found} is not {wanted}"
