"""Action guides in the case service, against a real nats-server: publishing (an administrator's
command, recorded as `GuidePublished`), the versions cases follow, the step a case shows, and
the child's view recorded beside a decision.

Each test names the rule it checks (stafett_case.domain.guides, stafett_contracts.guides).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from importlib import resources
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import nats
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from nats.js.errors import NotFoundError

from stafett_case.api import create_app
from stafett_case.application import Cases
from stafett_contracts.identity import Actor, Role
from stafett_runtime.auth import DevelopmentKey
from stafett_runtime.register import FileRegister
from stafett_runtime.testing import NatsTestServer, a_child, kernel_for_tests

UNIT = "barnehage-solsikke"  # a kindergarten in the test directory, led by styrer-1
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service=UNIT)
LEADER = Actor(person="styrer-1", role=Role.UNIT_LEADER, service=UNIT)
ADMINISTRATOR = Actor(person="admin-1", role=Role.ADMINISTRATOR)
SHIPPED = (
    resources.files("stafett_contracts")
    .joinpath("guide_data/kindergarten.toml")
    .read_text(encoding="utf-8")
)
# The municipality's own kindergarten guide: the shipped one, its first step said its own way.
OWN = SHIPPED.replace("En ansatt får en uro eller undring", "Du blir bekymret", 1)


class Http:
    def __init__(self, client: TestClient[Litestar], key: DevelopmentKey, url: str) -> None:
        self.client = client
        self.key = key
        self.url = url
        self.register = FileRegister(Path())  # replaced by the fixture

    def auth(self, actor: Actor) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key.mint(actor)}"}

    def publish(self, actor: Actor, text: str, content_type: str = "application/toml") -> Any:
        headers = {**self.auth(actor), "Content-Type": content_type}
        return self.client.post("/guides", content=text.encode(), headers=headers)

    def post(self, actor: Actor, path: str, body: dict[str, Any]) -> Any:
        return self.client.post(path, json=body, headers=self.auth(actor))

    def get(self, actor: Actor, path: str) -> Any:
        return self.client.get(path, headers=self.auth(actor))

    def raise_concern(self) -> UUID:
        child = a_child("mor-1")
        self.register.add(child)
        body = {"child_id": str(child.child_id), "concern": "Trekker seg unna i lek."}
        answer = self.post(TEACHER, "/cases", body)
        assert answer.status_code == 201, answer.text
        return UUID(answer.json()["id"])

    def guide_of(self, case_id: UUID) -> dict[str, Any]:
        answer = self.get(LEADER, f"/cases/{case_id}")
        assert answer.status_code == 200, answer.text
        guide: dict[str, Any] = answer.json()["guide"]
        return guide

    def published(self) -> list[dict[str, Any]]:
        return [e for e in case_stream(self.url) if e["type"] == "GuidePublished"]


def case_stream(url: str) -> list[dict[str, Any]]:
    async def read() -> list[bytes]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            try:
                last = (await js.stream_info("CASE")).state.last_seq
            except NotFoundError:
                return []
            return [(await js.get_msg("CASE", seq)).data or b"" for seq in range(1, last + 1)]
        finally:
            await nc.close()

    return [msgspec.json.decode(m) for m in asyncio.run(read()) if m.startswith(b"{")]


@pytest.fixture
def http(nats_server: NatsTestServer, tmp_path: Path) -> Iterator[Http]:
    cases = Cases({"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": nats_server.url})
    key = DevelopmentKey.load_or_create(tmp_path / "key.pem")
    register = FileRegister(tmp_path / "register.json")
    kernel = kernel_for_tests(
        "case", nats_server.url, key=key, register=register, child_keys="seal"
    )
    try:
        with TestClient(create_app(cases, kernel)) as client:
            http = Http(client, key, nats_server.url)
            http.register = register
            yield http
    finally:
        cases.close()


# Versions: a case follows the guide in force when it was opened.


def test_without_a_published_guide_every_service_follows_the_shipped_version_1(
    http: Http,
) -> None:
    answer = http.get(TEACHER, "/guides")
    assert answer.status_code == 200
    assert answer.json()["versions"] == {"kindergarten": 1, "school": 1, "health_clinic": 1}
    guide = http.get(TEACHER, "/guides/kindergarten/1").json()
    assert guide["levels"][0]["steps"][1]["id"] == "share"


def test_a_published_guide_is_the_next_version_and_only_new_cases_follow_it(http: Http) -> None:
    # Given a case opened under the shipped guide
    before = http.raise_concern()
    # When an administrator publishes the municipality's own guide
    answer = http.publish(ADMINISTRATOR, OWN)
    # Then it is version 2, recorded as GuidePublished, and in force for new cases
    assert answer.status_code == 201, answer.text
    assert answer.json() == {"service": "kindergarten", "version": 2, "recorded": True}
    (published,) = http.published()
    assert (published["service"], published["version"]) == ("kindergarten", 2)
    assert published["actor"]["person"] == ADMINISTRATOR.person
    after = http.raise_concern()
    assert http.guide_of(after)["version"] == 2
    first_step = http.get(TEACHER, "/guides/kindergarten/2").json()["levels"][0]["steps"][0]
    assert first_step["what"]["nb"].startswith("Du blir bekymret")
    # And publishing does not change the case opened under the older version
    assert http.guide_of(before)["version"] == 1
    assert http.get(TEACHER, "/guides").json()["versions"]["kindergarten"] == 2


def test_publishing_the_guide_in_force_again_records_nothing(http: Http) -> None:
    http.publish(ADMINISTRATOR, OWN)
    again = http.publish(ADMINISTRATOR, OWN)
    assert again.status_code == 201
    assert again.json() == {"service": "kindergarten", "version": 2, "recorded": False}
    assert len(http.published()) == 1


def test_a_guide_as_json_is_published_like_one_as_toml(http: Http) -> None:
    guide = http.get(TEACHER, "/guides/school/1").json()
    guide["title"]["en"] = "Our school's guide"
    answer = http.publish(ADMINISTRATOR, msgspec.json.encode(guide).decode(), "application/json")
    assert answer.status_code == 201, answer.text
    assert answer.json()["version"] == 2
    assert http.get(TEACHER, "/guides/school/2").json()["title"]["en"] == "Our school's guide"


# Rule administrator-publishes-guides: refused first, nothing stored.


@pytest.mark.parametrize("actor", [TEACHER, LEADER, Actor(person="mor-1", role=Role.GUARDIAN)])
def test_only_an_administrator_publishes_a_guide(http: Http, actor: Actor) -> None:
    answer = http.publish(actor, "this is not even a guide")
    assert answer.status_code == 403
    assert answer.json()["extra"]["rule"] == "administrator-publishes-guides"
    assert http.published() == []


# Rule guide-is-valid: refused with the line and the reason, nothing stored.


def test_a_guide_naming_an_unknown_form_is_refused_with_its_line_and_nothing_is_stored(
    http: Http,
) -> None:
    wrong = OWN.replace('tools = ["wondering-note"]', 'tools = ["crystal-ball"]')
    line = next(i for i, text in enumerate(wrong.splitlines(), 1) if "crystal-ball" in text)
    answer = http.publish(ADMINISTRATOR, wrong)
    assert answer.status_code == 422
    (problem,) = answer.json()["extra"]
    assert problem["key"] == "guide"
    assert problem["line"] == line
    assert "crystal-ball" in problem["message"]
    assert http.published() == []


def test_a_guide_that_does_not_parse_is_refused_with_its_line(http: Http) -> None:
    answer = http.publish(ADMINISTRATOR, 'service = "kindergarten"\ntitle = {\n')
    assert answer.status_code == 422
    assert answer.json()["extra"][0]["line"] == 2
    assert http.published() == []


def test_a_guide_that_is_not_utf8_is_a_bad_request(http: Http) -> None:
    answer = http.client.post(
        "/guides",
        content=b"\xff\xfe",
        headers={**http.auth(ADMINISTRATOR), "Content-Type": "application/toml"},
    )
    assert answer.status_code == 400


# The case shows the step it is at, what comes next and who does it.


def test_a_new_case_is_at_sharing_the_worry_and_then_at_the_conversation(http: Http) -> None:
    case_id = http.raise_concern()
    guide = http.guide_of(case_id)
    assert (guide["service"], guide["version"], guide["level"]) == ("kindergarten", 1, 0)
    assert guide["current"]["id"] == "share"
    assert guide["current"]["who_is"]["en"] == "every employee"
    assert guide["current"]["tools"] == ["wondering-note"]
    assert [step["id"] for step in guide["next"]] == ["conversation", "decision"]
    shared = http.post(TEACHER, f"/cases/{case_id}/share-concern", {"shared_with": "styrer-1"})
    assert shared.status_code == 201, shared.text
    assert http.guide_of(case_id)["current"]["id"] == "conversation"


# The child's view is recorded beside a decision, sealed.


def test_the_childs_view_is_recorded_beside_the_decision_and_never_in_clear(http: Http) -> None:
    case_id = http.raise_concern()
    view = "Jeg liker best å leke med Ola."
    body = {"reason": "Ingen grunn til videre bekymring", "child_view": view}
    answer = http.post(LEADER, f"/cases/{case_id}/close-case", body)
    assert answer.status_code == 201, answer.text
    (closed,) = [e for e in case_stream(http.url) if e["type"] == "CaseClosed"]
    assert set(closed["child_view"]) >= {"ciphertext", "nonce", "child_id"}
    assert all(view.encode() not in msgspec.json.encode(e) for e in case_stream(http.url))
