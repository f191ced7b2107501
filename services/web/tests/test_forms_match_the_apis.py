"""Every form is the command its service publishes (docs/openapi/*.json): each field is a field of
the command's body, every field the body requires is on the form (or filled in by the page),
and every command of the case and meeting services has its form."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stafett_web import forms

OPENAPI = Path(__file__).parents[3] / "docs" / "openapi"
FILLED_BY_THE_PAGE = {
    "case_id",  # the case the page is about
    "valid_from",  # a consent begins when it is confirmed
    "given_by",  # a guardian or child consenting in person is the signed-in person
    "evidence",  # ... and their evidence is the text they confirmed
}
NOT_A_FIELD = {
    "whole",  # the page's own choice: the whole consent, or some services
    "child_id",  # the child to erase: in the address
}


def _document(service: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((OPENAPI / f"{service}.json").read_text())
    return loaded


def _body(document: dict[str, Any], path: str) -> dict[str, Any]:
    schema = document["paths"][path]["post"]["requestBody"]["content"]["application/json"]["schema"]
    return _resolve(document, schema)


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


def _fields(document: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> dict[str, bool]:
    """Every field of a body, nested ones dotted: whether it is required."""
    found: dict[str, bool] = {}
    required = set(schema.get("required", ()))
    for name, sub in schema.get("properties", {}).items():
        found[f"{prefix}{name}"] = name in required
        nested = _resolve(document, sub) if "$ref" in sub else sub
        if nested.get("type") == "object" and "properties" in nested:
            found |= _fields(document, nested, f"{prefix}{name}.")
    return found


CASES = [
    *[("case", f"/cases/{{case_id}}/{name}", form) for name, form in forms.CASE_FORMS.items()],
    ("case", "/cases", forms.RAISE_CONCERN),
    *[
        ("meeting", f"/meetings/{{meeting_id}}/{name}", form)
        for name, form in forms.MEETING_FORMS.items()
    ],
    ("meeting", "/meetings", forms.SCHEDULE_MEETING),
    ("consent", "/consents", forms.GIVE_CONSENT),
    ("consent", "/consents", forms.RECORD_CONSENT),
    ("consent", "/consents/{consent_id}/scope", forms.CHANGE_SCOPE),
    ("consent", "/consents/{consent_id}/withdraw", forms.WITHDRAW_CONSENT),
    ("case", "/children/{child_id}/erase", forms.ERASE_CHILD),
]


@pytest.mark.parametrize(("service", "path", "form"), CASES, ids=[f"{c[0]}{c[1]}" for c in CASES])
def test_a_form_is_its_command(service: str, path: str, form: forms.Form) -> None:
    document = _document(service)
    body = _fields(document, _body(document, path))
    on_the_form = {f.name for f in form.fields} - NOT_A_FIELD
    assert on_the_form <= set(body), f"not in {path}: {on_the_form - set(body)}"
    required = {name for name, needed in body.items() if needed and "." not in name}
    covered = on_the_form | {name.split(".")[0] for name in on_the_form} | FILLED_BY_THE_PAGE
    assert required <= covered, f"required by {path}, not on the form: {required - covered}"


@pytest.mark.parametrize(
    ("service", "prefix", "known"),
    [
        ("case", "/cases/{case_id}/", forms.CASE_FORMS),
        ("meeting", "/meetings/{meeting_id}/", forms.MEETING_FORMS),
    ],
)
def test_every_command_of_the_service_has_its_form(
    service: str, prefix: str, known: dict[str, forms.Form]
) -> None:
    commands = {
        path.removeprefix(prefix)
        for path, methods in _document(service)["paths"].items()
        if path.startswith(prefix) and "post" in methods
    }
    assert commands - set(known) == set()
