"""The case API over HTTP, against a real nats-server: answers, and what reaches the stream."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import msgspec
import nats
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from stafett_case.api import create_app
from stafett_case.application import Cases
from stafett_case.keys import KeyStore
from stafett_contracts.identity import Actor, Role
from stafett_runtime.auth import DevelopmentKey, TokenVerifier
from stafett_runtime.settings import Settings
from stafett_runtime.testing import NatsTestServer

UNIT = "barnehage-solsikke"
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service=UNIT)
LEADER = Actor(person="styrer-1", role=Role.UNIT_LEADER, service=UNIT)
PPT_WORKER = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")
CHILD_NAME = "Kari Nordmann"


class Http:
    """The test client, and a bearer token for each actor."""

    def __init__(self, client: TestClient[Litestar], key: DevelopmentKey) -> None:
        self.client = client
        self._key = key

    def post(self, actor: Actor, path: str, body: dict[str, Any]) -> Any:
        return self.client.post(path, json=body, headers=self._auth(actor))

    def get(self, actor: Actor, path: str) -> Any:
        return self.client.get(path, headers=self._auth(actor))

    def _auth(self, actor: Actor) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key.mint(actor)}"}

    def raise_concern(self, **extra: Any) -> UUID:
        body = {"child_id": str(uuid4()), "concern": "Trekker seg unna i lek.", **extra}
        answer = self.post(TEACHER, "/cases", body)
        assert answer.status_code == 201, answer.text
        return UUID(answer.json()["id"])


@pytest.fixture
def cases(nats_server: NatsTestServer) -> Iterator[Cases]:
    app = Cases({"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": nats_server.url})
    yield app
    app.close()


@pytest.fixture
def http(nats_server: NatsTestServer, cases: Cases, tmp_path: Path) -> Iterator[Http]:
    key = DevelopmentKey.load_or_create(tmp_path / "key.pem")
    key_store = KeyStore(Settings(service="case", nats_url=nats_server.url), environ={})
    app = create_app(cases, TokenVerifier(key.public_key), key_store)
    with TestClient(app) as client:
        yield Http(client, key)


def stream_messages(url: str) -> list[bytes]:
    async def read() -> list[bytes]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            last = (await js.stream_info("CASE")).state.last_seq
            return [(await js.get_msg("CASE", seq)).data or b"" for seq in range(1, last + 1)]
        finally:
            await nc.close()

    return asyncio.run(read())


def test_a_concern_with_personal_data_reaches_the_stream_only_sealed(
    http: Http, nats_server: NatsTestServer
) -> None:
    # When a teacher raises a concern with the child's name
    person = {"name": CHILD_NAME, "birth_date": "2019-04-01", "national_id": "01041912345"}
    case_id = http.raise_concern(personal_data=person)
    # Then the stream holds a ConcernRaised with the data sealed, and never the name
    (raised,) = [msgspec.json.decode(m) for m in stream_messages(nats_server.url)]
    assert raised["type"] == "ConcernRaised"
    assert raised["personal_data"]["algorithm"] == "AES-256-GCM"
    assert all(CHILD_NAME.encode() not in m for m in stream_messages(nats_server.url))
    # And the unit reads the case with the data opened; a service not on the case may not read it
    case = http.get(TEACHER, f"/cases/{case_id}").json()
    assert case["personal_data"]["name"] == CHILD_NAME
    assert case["case"]["level"] == 0
    assert case["case"]["personal_data"] is None
    assert http.get(PPT_WORKER, f"/cases/{case_id}").status_code == 403


def test_a_refused_command_leaves_no_event_behind(http: Http, nats_server: NatsTestServer) -> None:
    case_id = http.raise_concern()
    answer = http.post(LEADER, f"/cases/{case_id}/escalate", {"to_level": 1, "reason": "Uro"})
    assert answer.status_code == 409
    assert answer.json()["extra"] == {"rule": "level-1-needs-consent"}
    assert len(stream_messages(nats_server.url)) == 1


def test_a_stale_expected_version_is_409(http: Http) -> None:
    case_id = http.raise_concern()
    note = {"note": "Lekte med to andre i dag.", "expected_version": 1}
    assert http.post(TEACHER, f"/cases/{case_id}/note-bright-spot", note).json()["version"] == 2
    stale = http.post(TEACHER, f"/cases/{case_id}/note-bright-spot", note)
    assert stale.status_code == 409
    assert "expected version 1" in stale.json()["detail"]


def test_an_invalid_body_is_422_naming_the_field(http: Http) -> None:
    case_id = http.raise_concern()
    answer = http.post(LEADER, f"/cases/{case_id}/escalate", {"to_level": 7, "reason": "Uro"})
    assert answer.status_code == 422
    assert answer.json()["extra"][0]["key"] == "to_level"
    next_week = (datetime.now(UTC) + timedelta(days=7)).date().isoformat()
    measure = {"measure_id": str(uuid4()), "description": "d", "service": UNIT}
    missing = http.post(
        LEADER, f"/cases/{case_id}/plan-measure", {**measure, "evaluation_date": next_week}
    )
    assert missing.status_code == 422
    assert "responsible" in str(missing.json())


def test_an_unknown_case_is_404(http: Http) -> None:
    answer = http.post(TEACHER, f"/cases/{uuid4()}/note-bright-spot", {"note": "Glad"})
    assert answer.status_code == 404
    assert http.get(TEACHER, f"/cases/{uuid4()}").status_code == 404


def test_an_employee_of_a_service_not_on_the_case_is_403(http: Http) -> None:
    case_id = http.raise_concern()
    answer = http.post(PPT_WORKER, f"/cases/{case_id}/note-bright-spot", {"note": "Glad"})
    assert answer.status_code == 403


def test_the_openapi_document_shows_each_commands_body(http: Http) -> None:
    schema = http.client.get("/schema/openapi.json").json()
    plan = schema["paths"]["/cases/{case_id}/plan-measure"]["post"]
    body = plan["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("PlanMeasure")
    assert "/cases/{case_id}/accept-baton" in schema["paths"]
