"""A case handed over from kindergarten to school, as the case service shows it, against a real
nats-server: the receiving school knows the case as it stands (`access.case_shown`, the rule the
projection's state follows too), and the case follows the guide of the unit that owns it
(`CaseFile.owning_unit`), not of a helper service holding the baton.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from stafett_case.api import create_app
from stafett_case.application import Cases
from stafett_case.domain.commands import NoteConsent
from stafett_contracts.identity import Actor, Role
from stafett_runtime.auth import DevelopmentKey
from stafett_runtime.domain import Context
from stafett_runtime.register import FileRegister
from stafett_runtime.testing import TEST_DIRECTORY, NatsTestServer, a_child, kernel_for_tests

KINDERGARTEN = "barnehage-solsikke"
SCHOOL = "skole-lia"
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service=KINDERGARTEN)
HEAD = Actor(person="styrer-1", role=Role.UNIT_LEADER, service=KINDERGARTEN)
SCHOOL_TEACHER = Actor(person="laerer-1", role=Role.EMPLOYEE, service=SCHOOL)
PPT_WORKER = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")
CONSENT_POLICY = Actor(person="consent-policy", role=Role.SYSTEM, service="case")
CONCERN = "Trekker seg unna i lek."


class Story:
    """One case, told through the case service's API; consents as the consent policy notes them."""

    def __init__(self, client: TestClient[Litestar], key: DevelopmentKey, cases: Cases) -> None:
        self.client, self.key, self.cases = client, key, cases
        self.case_id = UUID(int=0)

    def post(self, actor: Actor, command: str, body: dict[str, Any]) -> None:
        answer = self.client.post(
            f"/cases/{self.case_id}/{command}", json=body, headers=self.auth(actor)
        )
        assert answer.status_code == 201, answer.text

    def read(self, actor: Actor, **params: str) -> dict[str, Any]:
        answer = self.client.get(f"/cases/{self.case_id}", params=params, headers=self.auth(actor))
        assert answer.status_code == 200, answer.text
        read: dict[str, Any] = answer.json()
        return read

    def auth(self, actor: Actor) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key.mint(actor)}"}

    def consent(self, services: tuple[str, ...], purposes: tuple[str, ...]) -> None:
        now = datetime.now(UTC)
        noted = NoteConsent(
            consent_id=uuid4(),
            services=services,
            purposes=purposes,
            valid_from=now,
            valid_until=now + timedelta(days=365),
        )
        context = Context(
            actor=CONSENT_POLICY, now=now, correlation_id="consent", directory=TEST_DIRECTORY
        )
        self.cases.commands.handle(self.case_id, noted, context)

    def hand_baton(self, holder: Actor, to: Actor) -> None:
        assert to.service is not None
        self.post(holder, "join-agency", {"service": to.service})
        self.post(holder, "offer-baton", {"to_person": to.person, "to_service": to.service})
        self.post(to, "accept-baton", {})


@pytest.fixture
def story(nats_server: NatsTestServer, tmp_path: Path) -> Iterator[Story]:
    """A kindergarten case at level 1 with a measure tried and evaluated, before the school's
    consent to the handover."""
    cases = Cases({"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": nats_server.url})
    key = DevelopmentKey.load_or_create(tmp_path / "key.pem")
    register = FileRegister(tmp_path / "register.json")
    kernel = kernel_for_tests(
        "case", nats_server.url, key=key, register=register, child_keys="seal"
    )
    try:
        with TestClient(create_app(cases, kernel)) as client:
            told = Story(client, key, cases)
            child = a_child("mor-1")
            register.add(child)
            raised = client.post(
                "/cases",
                json={"child_id": str(child.child_id), "concern": CONCERN},
                headers=told.auth(TEACHER),
            )
            assert raised.status_code == 201, raised.text
            told.case_id = UUID(raised.json()["id"])
            told.consent((KINDERGARTEN,), ("cooperation",))
            told.post(
                HEAD, "appoint-baton-holder", {"holder": TEACHER.person, "service": KINDERGARTEN}
            )
            told.post(HEAD, "escalate", {"to_level": 1, "reason": "Reell bekymring"})
            measure_id = str(uuid4())
            told.post(
                TEACHER,
                "plan-measure",
                {
                    "measure_id": measure_id,
                    "description": "Fast voksen i lek",
                    "responsible": TEACHER.person,
                    "service": KINDERGARTEN,
                    "evaluation_date": (date.today() + timedelta(days=14)).isoformat(),
                },
            )
            told.post(
                TEACHER,
                "evaluate-measure",
                {"measure_id": measure_id, "outcome": "worked", "notes": "Leker mer."},
            )
            yield told
    finally:
        cases.close()


def test_the_receiving_school_knows_the_case_as_it_stands_at_a_handover(story: Story) -> None:
    # Given the guardians' consent to the school for the handover, and the baton handed to it
    story.consent((SCHOOL,), ("cooperation", "handover"))
    story.hand_baton(TEACHER, SCHOOL_TEACHER)
    # When the school reads the case for the handover
    read = story.read(SCHOOL_TEACHER, purpose="handover")
    # Then it knows the level, the unit, the baton holder and the measure tried before it came
    # in, as the projection's state says (the one rule: access.case_shown)
    case = read["case"]
    assert (case["level"], case["unit"]) == (1, KINDERGARTEN)
    assert case["holder"] == {"person": SCHOOL_TEACHER.person, "service": SCHOOL}
    assert [m["description"] for m in case["measures"].values()] == ["Fast voksen i lek"]
    # And nothing else from before its consent: not the concern, nor the kindergarten's consent
    assert case["concern"] == ""
    assert CONCERN not in str(read)
    assert [c["services"] for c in case["consents"].values()] == [[SCHOOL]]
    # And it sees where the case stands in the school's guide, at level 1
    assert (read["guide"]["service"], read["guide"]["level"]) == ("school", 1)


def test_a_case_follows_the_guide_of_its_owning_unit_while_a_helper_service_holds_the_baton(
    story: Story,
) -> None:
    # Given a case handed over from kindergarten to school (the school owns it now)
    story.consent((SCHOOL, "ppt"), ("cooperation", "handover"))
    story.hand_baton(TEACHER, SCHOOL_TEACHER)
    # When the school hands the baton on to PPT, a helper service
    story.hand_baton(SCHOOL_TEACHER, PPT_WORKER)
    # Then the case still follows the school's guide, not the kindergarten's where the worry arose
    for reader, purpose in ((HEAD, "cooperation"), (SCHOOL_TEACHER, "handover")):
        guide = story.read(reader, purpose=purpose)["guide"]
        assert (guide["service"], guide["level"]) == ("school", 1), reader
    assert story.read(PPT_WORKER, purpose="cooperation")["case"]["holder"]["service"] == "ppt"
