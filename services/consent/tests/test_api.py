"""The consent API over HTTP, against a real nats-server: one happy path per endpoint, and each
way a command is refused, leaving nothing behind."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from stafett_consent.api import create_app
from stafett_consent.application import Consents
from stafett_contracts.identity import Actor, Role
from stafett_runtime.auth import DevelopmentKey, TokenVerifier
from stafett_runtime.service import call
from stafett_runtime.settings import Settings
from stafett_runtime.testing import NatsTestServer

Client = AsyncTestClient[Litestar]
EMPLOYEE = Actor(person="teacher-1", role=Role.EMPLOYEE, service="skole-lia")
MOTHER = Actor(person="guardian-mother", role=Role.GUARDIAN)
AUDITOR = Actor(person="tilsyn-1", role=Role.AUDITOR)


class Api:
    """The client, a token per actor, and the application behind it (to look at the stream)."""

    def __init__(self, http: Client, key: DevelopmentKey, consents: Consents) -> None:
        self.http = http
        self.key = key
        self.consents = consents

    def auth(self, actor: Actor) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key.mint(actor)}"}

    async def post(self, path: str, body: dict[str, Any], actor: Actor = EMPLOYEE) -> Any:
        return await self.http.post(path, json=body, headers=self.auth(actor))

    async def get(self, path: str, actor: Actor = EMPLOYEE, **params: str) -> Any:
        return await self.http.get(path, params=params, headers=self.auth(actor))

    async def events_stored(self) -> int:
        return await call(self.consents.recorder.max_notification_id) or 0


@pytest.fixture
async def api(nats_server: NatsTestServer, tmp_path: Path) -> AsyncIterator[Api]:
    env = Settings(service="consent", nats_url=nats_server.url).eventsourcing_env()
    consents = await call(Consents, env)
    key = DevelopmentKey.load_or_create(tmp_path / "signing-key.pem")
    app = create_app(consents, TokenVerifier(key.public_key))
    try:
        async with AsyncTestClient(app) as http:
            yield Api(http, key, consents)
    finally:
        await call(consents.close)


NOW = datetime.now(UTC)
VALID_FROM = NOW - timedelta(days=30)


def mothers_consent(case_id: str, **changes: Any) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "child_id": str(uuid4()),
        "given_by": {"kind": "guardian", "person": MOTHER.person},
        "services": ["ppt", "helsestasjon"],
        "purposes": ["cooperation"],
        "valid_from": VALID_FROM.isoformat(),
        "valid_until": (NOW + timedelta(days=90)).isoformat(),
        "evidence": {"form": "written", "document_ref": "doc-17", "document_sha256": "ab" * 32},
        **changes,
    }


async def give(api: Api, case_id: str, actor: Actor = EMPLOYEE) -> str:
    answer = await api.post("/consents", mothers_consent(case_id), actor)
    assert answer.status_code == 201, answer.text
    consent_id: str = answer.json()["id"]
    return consent_id


async def test_giving_consent_answers_id_and_version_and_the_consent_reads_back(api: Api) -> None:
    case_id = str(uuid4())
    answer = await api.post("/consents", mothers_consent(case_id), MOTHER)
    assert answer.status_code == 201
    assert answer.json()["version"] == 1
    consent = (await api.get(f"/consents/{answer.json()['id']}")).json()
    assert consent["case_id"] == case_id
    assert consent["given_by"]["person"] == MOTHER.person
    assert consent["scopes"][0]["services"] == ["ppt", "helsestasjon"]


async def test_scope_changes_and_withdrawals_answer_the_new_version(api: Api) -> None:
    consent_id = await give(api, str(uuid4()))
    changed = await api.post(
        f"/consents/{consent_id}/scope",
        {"services": ["ppt", "bup"], "purposes": ["cooperation", "tvist"], "expected_version": 1},
    )
    assert (changed.status_code, changed.json()) == (201, {"id": consent_id, "version": 2})
    withdrawn = await api.post(f"/consents/{consent_id}/withdraw", {"services": ["bup"]}, MOTHER)
    assert withdrawn.json() == {"id": consent_id, "version": 3}
    again = await api.post(f"/consents/{consent_id}/withdraw", {"services": ["bup"]}, MOTHER)
    assert again.json() == {"id": consent_id, "version": 3}  # already in effect: nothing new


async def test_a_case_lists_its_consents_and_answers_who_may_see_it(api: Api) -> None:
    case_id = str(uuid4())
    consent_id = await give(api, case_id)
    await give(api, str(uuid4()))  # another case's
    listed = (await api.get(f"/cases/{case_id}/consents")).json()
    assert [c["id"] for c in listed["consents"]] == [consent_id]
    now = await api.get(f"/cases/{case_id}/access", service="ppt", purpose="cooperation")
    assert now.json()["allowed"] is True
    assert now.json()["basis"]["id"] == consent_id
    assert now.json()["until"] is not None
    before = await api.get(
        f"/cases/{case_id}/access",
        service="ppt",
        purpose="cooperation",
        at=(VALID_FROM - timedelta(days=1)).isoformat(),
    )
    assert before.json()["allowed"] is False


async def test_sharing_under_a_legal_basis_gives_access_without_consent(api: Api) -> None:
    case_id = str(uuid4())
    recorded = await api.post(
        "/legal-bases",
        {
            "case_id": case_id,
            "child_id": str(uuid4()),
            "service": "barnevern",
            "legal_basis": "barnevernsloven § 13-2",
            "justification": "reason to believe the child is subject to violence",
        },
    )
    assert recorded.status_code == 201
    answer = await api.get(f"/cases/{case_id}/access", service="barnevern", purpose="referral")
    assert answer.json()["allowed"] is True
    assert answer.json()["basis"]["kind"] == "legal_basis"
    listed = (await api.get(f"/cases/{case_id}/consents")).json()
    assert listed["legal_bases"][0]["shared_by"] == EMPLOYEE.person


async def test_a_broken_rule_is_409_naming_the_rule_and_leaves_no_event(api: Api) -> None:
    unsigned = {"form": "written", "document_ref": "doc-17"}
    answer = await api.post("/consents", mothers_consent(str(uuid4()), evidence=unsigned))
    assert answer.status_code == 409
    assert answer.json()["extra"] == {"rule": "written-consent-needs-document-and-hash"}
    assert await api.events_stored() == 0


async def test_an_auditor_is_403_and_leaves_no_event(api: Api) -> None:
    answer = await api.post("/consents", mothers_consent(str(uuid4())), AUDITOR)
    assert answer.status_code == 403
    assert await api.events_stored() == 0


async def test_a_guardian_may_not_give_consent_for_another_party(api: Api) -> None:
    father = Actor(person="guardian-father", role=Role.GUARDIAN)
    answer = await api.post("/consents", mothers_consent(str(uuid4())), father)
    assert answer.status_code == 403


async def test_a_stale_expected_version_is_409_and_leaves_no_event(api: Api) -> None:
    consent_id = await give(api, str(uuid4()))
    stored = await api.events_stored()
    answer = await api.post(f"/consents/{consent_id}/withdraw", {"expected_version": 0})
    assert answer.status_code == 409
    assert "expected version 0" in answer.json()["detail"]
    assert await api.events_stored() == stored


async def test_invalid_input_is_422_naming_the_field(api: Api) -> None:
    no_case = mothers_consent(str(uuid4()))
    del no_case["case_id"]
    missing = await api.post("/consents", no_case)
    unknown = await api.post("/consents", mothers_consent(str(uuid4()), colour="red"))
    no_services = await api.post("/consents", mothers_consent(str(uuid4()), services=[]))
    naive = await api.get(
        f"/cases/{uuid4()}/access", service="ppt", purpose="cooperation", at="2026-01-01T00:00"
    )
    for answer, field in [
        (missing, "case_id"),
        (unknown, "colour"),
        (no_services, "services"),
        (naive, "at"),
    ]:
        assert answer.status_code == 422, answer.text
        assert field in answer.text
    assert await api.events_stored() == 0


async def test_an_unknown_consent_is_404(api: Api) -> None:
    unknown = uuid4()
    assert (await api.get(f"/consents/{unknown}")).status_code == 404
    withdrawn = await api.post(f"/consents/{unknown}/withdraw", {})
    assert withdrawn.status_code == 404
    assert await api.events_stored() == 0


async def test_the_service_is_ready_when_its_stream_answers(api: Api) -> None:
    answer = await api.http.get("/health/ready")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ready"
