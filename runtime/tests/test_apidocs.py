"""Every service's OpenAPI document is valid, lists the refusals each operation really gives, and
its page at /schema loads nothing from anywhere but the service."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Litestar, get, post
from litestar.params import FromPath, JSONBody, Parameter
from litestar.testing import TestClient
from openapi_spec_validator import validate

from stafett_runtime.apidocs import CONTENT_SECURITY_POLICY
from stafett_runtime.auth import DevelopmentKey, TokenVerifier
from stafett_runtime.health import Readiness
from stafett_runtime.service import http_app, refusals


class PlanMeasure(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    """A measure with its evaluation date (rule 6)."""

    description: Annotated[str, msgspec.Meta(min_length=1, description="what will be done")]


@post("/cases/{case_id:uuid}/plan-measure", summary="Plan a measure")
async def plan_measure(case_id: FromPath[UUID], data: JSONBody[PlanMeasure]) -> dict[str, int]:
    return {"version": 1}


@get("/cases/{case_id:uuid}", summary="The case, as the caller may see it")
async def read_case(case_id: FromPath[UUID]) -> dict[str, str]:
    return {}


@get("/worklist", summary="What is mine to do", responses=refusals(403))
async def worklist(
    unit: Annotated[str | None, Parameter(description="only this unit")] = None,
) -> list[str]:
    return []


@get("/lag", summary="How far behind")
async def lag() -> dict[str, int]:
    return {}


def app(tmp_path: Path) -> Litestar:
    key = DevelopmentKey.load_or_create(tmp_path / "key.pem")
    return http_app(
        service="test",
        route_handlers=[plan_measure, read_case, worklist, lag],
        readiness=Readiness(),
        verifier=TokenVerifier(key.public_key),
    )


def document(tmp_path: Path) -> dict[str, Any]:
    schema: dict[str, Any] = app(tmp_path).openapi_schema.to_schema()
    return schema


def test_the_document_is_valid_openapi(tmp_path: Path) -> None:
    validate(document(tmp_path))  # raises, naming what is wrong, if it is not


def statuses(doc: dict[str, Any], method: str, path: str) -> set[int]:
    return {int(status) for status in doc["paths"][path][method]["responses"]}


def test_each_operation_lists_the_refusals_its_shape_and_its_declaration_say(
    tmp_path: Path,
) -> None:
    doc = document(tmp_path)

    # A command with a body: every refusal a command can meet
    assert statuses(doc, "post", "/cases/{case_id}/plan-measure") == {
        201,
        400,
        401,
        403,
        404,
        409,
        413,
        422,
        503,
    }
    # A read by path: no body to be unreadable, nothing to conflict with
    assert statuses(doc, "get", "/cases/{case_id}") == {200, 401, 404, 422, 503}
    # A read by query that declares the access rule's 403
    assert statuses(doc, "get", "/worklist") == {200, 401, 403, 422, 503}
    # A read with no input at all
    assert statuses(doc, "get", "/lag") == {200, 401, 503}


def test_every_refusal_has_the_one_body_with_an_example_of_its_own_status(
    tmp_path: Path,
) -> None:
    doc = document(tmp_path)
    refusal = doc["components"]["schemas"]["Refusal"]
    assert refusal["required"] == ["status_code", "detail"]
    assert all(p.get("description") for p in refusal["properties"].values())
    for item in doc["paths"].values():
        for operation in item.values():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                content = response["content"]["application/json"]
                assert content["schema"] == {"$ref": "#/components/schemas/Refusal"}
                [example] = content["examples"].values()
                assert example["value"]["status_code"] == int(status)
                assert response["description"]


def test_the_schema_page_loads_only_what_the_service_serves_itself(tmp_path: Path) -> None:
    with TestClient(app(tmp_path)) as http:
        page = http.get("/schema")
        linked = re.findall(r"(?:src|href)='([^']+)'", page.text)
        assets = {url: http.get(url) for url in linked}
        document_answer = http.get("/schema/openapi.json")

    assert page.status_code == 200
    assert page.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    assert "<script>" not in page.text  # no inline script: the policy would refuse it
    assert linked
    assert all(url.startswith("/schema/assets/") for url in linked)
    assert {url: answer.status_code for url, answer in assets.items()} == dict.fromkeys(linked, 200)
    assert document_answer.status_code == 200
    assert document_answer.json()["openapi"].startswith("3.1")


class Escalate(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    expected_version: int | None = None
    to_level: int = 1


@post("/cases/{case_id:uuid}/escalate", summary="Move the case up the staircase")
async def escalate(case_id: FromPath[UUID], data: JSONBody[Escalate]) -> dict[str, int]:
    return {"version": 1}


def test_a_field_of_a_plain_type_is_described_by_the_one_meaning_of_its_name(
    tmp_path: Path,
) -> None:
    key = DevelopmentKey.load_or_create(tmp_path / "key.pem")
    served = http_app(
        service="test",
        route_handlers=[escalate],
        readiness=Readiness(),
        verifier=TokenVerifier(key.public_key),
    )

    fields = served.openapi_schema.to_schema()["components"]["schemas"]["Escalate"]["properties"]

    assert "expected-version" in fields["expected_version"]["description"]
    assert "description" not in fields["to_level"]  # no meaning is made up for a name
