"""Every service answers refused commands the same way: which status, and a reason."""

from __future__ import annotations

from pathlib import Path
from uuid import uuid4

import msgspec
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from litestar import Litestar, post
from litestar.params import JSONBody
from litestar.testing import TestClient

from stafett_contracts.identity import Actor, Role
from stafett_runtime.auth import DevelopmentKey, TokenVerifier
from stafett_runtime.domain import NotAllowed, RuleViolation, StaleVersion
from stafett_runtime.health import Readiness
from stafett_runtime.service import http_app


class Command(msgspec.Struct, forbid_unknown_fields=True):
    outcome: str
    level: int = 0


@post("/commands")
async def command(data: JSONBody[Command]) -> dict[str, int]:
    match data.outcome:
        case "rule":
            raise RuleViolation("level-3-needs-coordinator", "level 3 needs a coordinator")
        case "forbidden":
            raise NotAllowed("only the baton holder may plan a measure")
        case "missing":
            raise AggregateNotFoundError(uuid4())
        case "stale":
            raise StaleVersion(expected=3, actual=4)
        case "concurrent":
            raise IntegrityError("wrong last sequence")
    return {"version": 1}


def client(tmp_path: Path) -> tuple[TestClient[Litestar], dict[str, str]]:
    key = DevelopmentKey.load_or_create(tmp_path / "key.pem")
    app = http_app(
        service="test",
        route_handlers=[command],
        readiness=Readiness(),
        verifier=TokenVerifier(key.public_key),
    )
    token = key.mint(Actor(person="p-1", role=Role.EMPLOYEE, service="ppt"))
    return TestClient(app), {"Authorization": f"Bearer {token}"}


def test_refused_commands_get_the_status_that_says_why(tmp_path: Path) -> None:
    test_client, auth = client(tmp_path)
    with test_client as http:
        answers = {
            outcome: http.post("/commands", json={"outcome": outcome}, headers=auth)
            for outcome in ["ok", "rule", "forbidden", "missing", "stale", "concurrent"]
        }
    assert {k: r.status_code for k, r in answers.items()} == {
        "ok": 201,
        "rule": 409,
        "forbidden": 403,
        "missing": 404,
        "stale": 409,
        "concurrent": 409,
    }
    assert answers["rule"].json()["extra"] == {"rule": "level-3-needs-coordinator"}
    assert "expected version 3" in answers["stale"].json()["detail"]


def test_invalid_input_is_422_naming_the_field_and_why(tmp_path: Path) -> None:
    test_client, auth = client(tmp_path)
    with test_client as http:
        wrong_type = http.post("/commands", json={"outcome": "ok", "level": "x"}, headers=auth)
        unknown = http.post("/commands", json={"outcome": "ok", "colour": 1}, headers=auth)
    assert wrong_type.status_code == 422
    assert wrong_type.json()["extra"][0]["key"] == "level"
    assert "Expected `int`" in wrong_type.json()["extra"][0]["message"]
    assert unknown.status_code == 422
    assert "colour" in str(unknown.json())


def test_the_openapi_document_names_the_bearer_scheme(tmp_path: Path) -> None:
    test_client, _ = client(tmp_path)
    with test_client as http:
        schema = http.get("/schema/openapi.json").json()
    assert "BearerToken" in schema["components"]["securitySchemes"]
    assert "/commands" in schema["paths"]
