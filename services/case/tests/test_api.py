"""The case API over HTTP, against a real nats-server: answers, and what reaches the streams.

The facts about people come from where they come in production: the child from a register file
of the test's own (`FileRegister`), the units and their leaders from the runtime's test directory
(barnehage-solsikke led by styrer-1, PPT, barnevern ...), who asks from a verified token.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import msgspec
import nats
import pytest
from litestar import Litestar
from litestar.testing import TestClient
from nats.js.errors import NotFoundError

from stafett_case.api import create_app
from stafett_case.application import Cases
from stafett_case.domain.commands import NoteConsent
from stafett_contracts.audit import CaseAccessed
from stafett_contracts.identity import Actor, Role
from stafett_contracts.people import RegisteredChild
from stafett_runtime.auth import DevelopmentKey
from stafett_runtime.domain import Context
from stafett_runtime.keystore import DEFAULT_BUCKET, ChildKeys
from stafett_runtime.register import FileRegister
from stafett_runtime.testing import TEST_DIRECTORY, NatsTestServer, a_child, kernel_for_tests

UNIT = "barnehage-solsikke"
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service=UNIT)
LEADER = Actor(person="styrer-1", role=Role.UNIT_LEADER, service=UNIT)  # as the directory says
PPT_WORKER = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")
MOTHER = Actor(person="mor-1", role=Role.GUARDIAN)
AUDITOR = Actor(person="tilsyn-1", role=Role.AUDITOR)
CONSENT_POLICY = Actor(person="consent-policy", role=Role.SYSTEM, service="case")
CHILD_NAME = "Kari Nordmann"
CONCERN = "Trekker seg unna i lek."


class Http:
    """The test client, a bearer token for each actor, and the register the service asks."""

    def __init__(
        self, client: TestClient[Litestar], key: DevelopmentKey, register: FileRegister
    ) -> None:
        self.client = client
        self.register = register
        self._key = key

    def post(self, actor: Actor, path: str, body: dict[str, Any]) -> Any:
        return self.client.post(path, json=body, headers=self._auth(actor))

    def get(self, actor: Actor, path: str, **params: str) -> Any:
        return self.client.get(path, params=params, headers=self._auth(actor))

    def _auth(self, actor: Actor) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key.mint(actor)}"}

    def registered(self, *guardians: str) -> RegisteredChild:
        child = a_child(*guardians, name=CHILD_NAME)
        self.register.add(child)
        return child

    def raise_concern(self, child: RegisteredChild | None = None) -> UUID:
        child = child or self.registered(MOTHER.person)
        body = {"child_id": str(child.child_id), "concern": CONCERN}
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
    register = FileRegister(tmp_path / "register.json")
    kernel = kernel_for_tests(
        "case", nats_server.url, key=key, register=register, child_keys="seal"
    )
    with TestClient(create_app(cases, kernel)) as client:
        yield Http(client, key, register)


def stream_messages(url: str, stream: str = "CASE") -> list[bytes]:
    """Every message of `stream`, by direct get; none if the stream was never made."""

    async def read() -> list[bytes]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            try:
                last = (await js.stream_info(stream)).state.last_seq
            except NotFoundError:
                return []
            return [(await js.get_msg(stream, seq)).data or b"" for seq in range(1, last + 1)]
        finally:
            await nc.close()

    return asyncio.run(read())


def case_events(url: str) -> list[dict[str, Any]]:
    return [msgspec.json.decode(m) for m in stream_messages(url, "CASE")]


def access_log(url: str) -> list[CaseAccessed]:
    """The CaseAccessed records on the AUDIT stream (subjects audit.events.>)."""
    return [msgspec.json.decode(m, type=CaseAccessed) for m in stream_messages(url, "AUDIT")]


def child_keys_made(url: str) -> int:
    return len(stream_messages(url, f"KV_{DEFAULT_BUCKET}"))


def erase_child(url: str, child: RegisteredChild) -> None:
    async def erase() -> None:
        nc = await nats.connect(url)
        try:
            keys = await ChildKeys.bind(nc, environ={})
            await keys.erase(str(child.child_id), "retention ended")
        finally:
            await nc.close()

    asyncio.run(erase())


def no_concern_stored(url: str) -> bool:
    return case_events(url) == [] and child_keys_made(url) == 0


def plan_measure(http: Http, case_id: UUID) -> UUID:
    measure_id = uuid4()
    measure = {
        "measure_id": str(measure_id),
        "description": "Fast voksen i lek",
        "responsible": TEACHER.person,
        "service": UNIT,
        "evaluation_date": (datetime.now(UTC) + timedelta(days=30)).date().isoformat(),
    }
    answer = http.post(LEADER, f"/cases/{case_id}/plan-measure", measure)
    assert answer.status_code == 201, answer.text
    return measure_id


# Raising a concern: the child as the register knows them, for a unit the directory lists.


def test_a_concern_seals_the_registers_record_of_the_child_into_the_stream(
    http: Http, nats_server: NatsTestServer
) -> None:
    # Given a child the register knows
    child = http.registered(MOTHER.person)
    # When a teacher raises a concern naming the child by national id
    body = {"national_id": child.national_id, "concern": CONCERN}
    answer = http.post(TEACHER, "/cases", body)
    assert answer.status_code == 201, answer.text
    case_id = UUID(answer.json()["id"])
    # Then the stream holds a ConcernRaised about the register's child id, its identity sealed
    (raised,) = case_events(nats_server.url)
    assert raised["type"] == "ConcernRaised"
    assert UUID(raised["child_id"]) == child.child_id
    assert raised["personal_data"]["algorithm"] == "AES-256-GCM"
    assert all(CHILD_NAME.encode() not in m for m in stream_messages(nats_server.url))
    assert child_keys_made(nats_server.url) == 1
    # And the unit reads the case with the register's record opened, never the sealed data
    read = http.get(TEACHER, f"/cases/{case_id}").json()
    assert read["personal_data"] == {
        "name": child.name,
        "birth_date": child.birth_date.isoformat(),
        "national_id": child.national_id,
    }
    assert read["case"]["personal_data"] is None
    assert read["case"]["level"] == 0


def test_the_personal_data_sealed_is_the_registers_so_a_request_carrying_it_is_refused(
    http: Http, nats_server: NatsTestServer
) -> None:
    # Given a child the register knows
    child = http.registered(MOTHER.person)
    # When a concern arrives with personal data of the request's own
    body = {
        "child_id": str(child.child_id),
        "concern": CONCERN,
        "personal_data": {"name": "Someone Else", "birth_date": "2019-04-01"},
    }
    answer = http.post(TEACHER, "/cases", body)
    # Then it is refused naming the field, and nothing is stored: no event, no child key
    assert answer.status_code == 422
    assert "personal_data" in answer.text
    assert no_concern_stored(nats_server.url)


@pytest.mark.parametrize("named_by", [(), ("child_id", "national_id")])
def test_a_concern_names_the_child_by_exactly_one_of_child_id_and_national_id(
    http: Http, nats_server: NatsTestServer, named_by: tuple[str, ...]
) -> None:
    child = http.registered(MOTHER.person)
    ids = {"child_id": str(child.child_id), "national_id": child.national_id}
    body = {"concern": CONCERN, **{field: ids[field] for field in named_by}}
    answer = http.post(TEACHER, "/cases", body)
    assert answer.status_code == 422
    assert {e["key"] for e in answer.json()["extra"]} == {"child_id", "national_id"}
    assert no_concern_stored(nats_server.url)


def test_unit_in_directory_a_concern_from_a_unit_that_exists_nowhere_is_403_and_stores_nothing(
    http: Http, nats_server: NatsTestServer
) -> None:
    # Given an employee whose token names a unit no directory lists
    outsider = Actor(person="laerer-x", role=Role.EMPLOYEE, service="skole-finnes-ikke")
    child = http.registered(MOTHER.person)
    # When they raise a concern, about a registered child or one the register does not know
    for child_id in (child.child_id, uuid4()):
        answer = http.post(outsider, "/cases", {"child_id": str(child_id), "concern": CONCERN})
        # Then both are refused alike, before the register is asked, and nothing is stored
        assert answer.status_code == 403
        assert answer.json()["extra"] == {"rule": "unit-in-directory"}
    assert no_concern_stored(nats_server.url)


@pytest.mark.parametrize("field", ["child_id", "national_id"])
def test_a_concern_about_a_child_the_register_does_not_know_is_422_and_stores_nothing(
    http: Http, nats_server: NatsTestServer, field: str
) -> None:
    # Given a child the register does not know
    unknown = a_child(MOTHER.person)
    ids = {"child_id": str(unknown.child_id), "national_id": unknown.national_id}
    # When a teacher raises a concern about them
    answer = http.post(TEACHER, "/cases", {field: ids[field], "concern": CONCERN})
    # Then it is refused naming the field, and no event and no child key are made
    assert answer.status_code == 422
    (named,) = answer.json()["extra"]
    assert named["key"] == field
    assert named["message"] == "the population register knows no such child"
    assert no_concern_stored(nats_server.url)


# Commands on a case.


def test_a_refused_command_leaves_no_event_behind(http: Http, nats_server: NatsTestServer) -> None:
    case_id = http.raise_concern()
    answer = http.post(LEADER, f"/cases/{case_id}/escalate", {"to_level": 1, "reason": "Uro"})
    assert answer.status_code == 409
    assert answer.json()["extra"] == {"rule": "level-1-needs-consent"}
    assert len(case_events(nats_server.url)) == 1


def test_refuse_first_a_stranger_asking_to_escalate_a_closed_case_is_403_not_closed(
    http: Http, nats_server: NatsTestServer
) -> None:
    # Given a case its unit leader closed
    case_id = http.raise_concern()
    closed = http.post(LEADER, f"/cases/{case_id}/close-case", {"reason": "Ingen uro"})
    assert closed.status_code == 201, closed.text
    # When someone of a service not on the case asks to escalate it, even naming a version
    escalate = {"to_level": 1, "reason": "Uro"}
    answers = [
        http.post(PPT_WORKER, f"/cases/{case_id}/escalate", escalate),
        http.post(PPT_WORKER, f"/cases/{case_id}/escalate", {**escalate, "expected_version": 1}),
    ]
    # Then they are not allowed, and told neither that it is closed nor its version
    for answer in answers:
        assert answer.status_code == 403
        assert "closed" not in answer.text
        assert "version" not in answer.text
    # And the leader is told it is closed
    told = http.post(LEADER, f"/cases/{case_id}/escalate", escalate)
    assert told.json()["extra"] == {"rule": "closed-case-accepts-only-reopen"}
    assert len(case_events(nats_server.url)) == 2


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


# Reading a case: through the one access rule, every read and refusal recorded.


@pytest.mark.parametrize(
    ("stranger", "rule"),
    [
        (Actor(person="far-2", role=Role.GUARDIAN), "guardian-of-the-child"),
        (PPT_WORKER, "covered-now"),
        (Actor(person="laerer-x", role=Role.EMPLOYEE, service="skole-x"), "unit-in-directory"),
        (Actor(person="admin-1", role=Role.ADMINISTRATOR), "role-reads-no-cases"),
    ],
    ids=["guardian-of-another-child", "uncovered-unit", "unit-not-in-directory", "administrator"],
)
def test_a_stranger_reading_a_case_is_403_and_the_refusal_is_recorded(
    http: Http, nats_server: NatsTestServer, stranger: Actor, rule: str
) -> None:
    # Given a case about a child whose guardian is mor-1; far-2 is guardian of another child
    http.registered("far-2")
    case_id = http.raise_concern()
    # When a stranger to it asks to read it
    answer = http.get(stranger, f"/cases/{case_id}")
    # Then they are refused by the rule, told nothing of the case
    assert answer.status_code == 403
    assert answer.json()["extra"] == {"rule": rule}
    assert CONCERN not in answer.text
    # And the refusal is on the access log
    (record,) = access_log(nats_server.url)
    assert (record.case_id, record.actor, record.outcome) == (case_id, stranger, "refused")
    assert (record.what, record.rule, record.served_by) == ("case", rule, "case")


def test_guardian_of_the_child_reads_the_whole_case_and_who_the_child_is(
    http: Http, nats_server: NatsTestServer
) -> None:
    # Given a case about mor-1's child, with a measure planned
    case_id = http.raise_concern()
    measure_id = plan_measure(http, case_id)
    # When mor-1 reads it
    answer = http.get(MOTHER, f"/cases/{case_id}")
    # Then she sees every entry, and her child's name
    assert answer.status_code == 200, answer.text
    read = answer.json()
    assert read["case"]["concern"] == CONCERN
    assert set(read["case"]["measures"]) == {str(measure_id)}
    assert read["personal_data"]["name"] == CHILD_NAME
    # And her read is on the access log
    (record,) = access_log(nats_server.url)
    assert (record.actor, record.outcome, record.rule) == (
        MOTHER,
        "granted",
        "guardian-of-the-child",
    )


@pytest.mark.parametrize(("age", "status"), [(16, 200), (10, 403)])
def test_child_reads_from_age_their_own_case(http: Http, age: int, status: int) -> None:
    # Given a case about a child who signs in as barn-1, of an age by the register's birth date
    born = date(datetime.now(UTC).year - age, 1, 1)
    child = a_child(MOTHER.person, born=born, person="barn-1", name=CHILD_NAME)
    http.register.add(child)
    case_id = http.raise_concern(child)
    # When the child reads it
    answer = http.get(Actor(person="barn-1", role=Role.CHILD), f"/cases/{case_id}")
    # Then from the reading age (15) they do, and before it they are refused by that rule
    assert answer.status_code == status
    if status == 403:
        assert answer.json()["extra"] == {"rule": "child-reads-from-age"}
    else:
        assert answer.json()["case"]["concern"] == CONCERN


def test_covered_now_a_service_sees_only_what_came_in_its_consent_period(
    http: Http, cases: Cases, nats_server: NatsTestServer
) -> None:
    # Given a case with a measure planned before any consent
    case_id = http.raise_concern()
    before = plan_measure(http, case_id)
    # And then the guardians' consent to PPT cooperating, as the consent policy notes it
    consent_id, now = uuid4(), datetime.now(UTC)
    consent = NoteConsent(
        consent_id=consent_id,
        services=("ppt",),
        purposes=("cooperation",),
        valid_from=now,
        valid_until=now + timedelta(days=365),
    )
    context = Context(
        actor=CONSENT_POLICY, now=now, correlation_id="consent", directory=TEST_DIRECTORY
    )
    cases.commands.handle(case_id, consent, context)
    # And a measure planned since
    since = plan_measure(http, case_id)
    # When PPT reads the case
    answer = http.get(PPT_WORKER, f"/cases/{case_id}", purpose="cooperation")
    # Then it sees the measure planned in its consent period, not the one before, nor the concern
    assert answer.status_code == 200, answer.text
    read = answer.json()
    assert set(read["case"]["measures"]) == {str(since)}
    assert str(before) not in answer.text
    assert read["case"]["concern"] == ""
    # And who the child is, as a consent for cooperation allows
    assert read["personal_data"]["name"] == CHILD_NAME
    # And the read is recorded with its basis
    (record,) = access_log(nats_server.url)
    assert (record.rule, record.basis, record.purpose) == (
        "covered-now",
        f"consent {consent_id}",
        "cooperation",
    )


def test_auditor_states_purpose_or_is_422_naming_it(
    http: Http, nats_server: NatsTestServer
) -> None:
    case_id = http.raise_concern()
    # When an auditor reads without a purpose
    without = http.get(AUDITOR, f"/cases/{case_id}")
    # Then it is 422 naming `purpose`, and the refusal is recorded
    assert without.status_code == 422
    assert without.json()["extra"][0]["key"] == "purpose"
    # And with a purpose the auditor reads the whole case, the purpose on the access log
    purpose = "Tilsyn med kommunens oppfølging"
    stated = http.get(AUDITOR, f"/cases/{case_id}", purpose=purpose)
    assert stated.status_code == 200
    assert stated.json()["case"]["concern"] == CONCERN
    refused, granted = access_log(nats_server.url)
    assert (refused.outcome, refused.rule) == ("refused", "auditor-states-purpose")
    assert (granted.outcome, granted.purpose) == ("granted", purpose)


def test_an_erased_child_reads_as_erased(http: Http, nats_server: NatsTestServer) -> None:
    # Given a case whose child's key was erased when retention ended
    child = http.registered(MOTHER.person)
    case_id = http.raise_concern(child)
    erase_child(nats_server.url, child)
    # When the guardian reads it
    read = http.get(MOTHER, f"/cases/{case_id}").json()
    # Then the case is there, the child's identity and the concern's text erased
    assert read["case"]["concern"]["erased"] is True
    assert read["case"]["level"] == 0
    assert read["personal_data"] is None
    assert read["erased"]["erased"] is True


def test_the_openapi_document_shows_each_commands_body(http: Http) -> None:
    schema = http.client.get("/schema/openapi.json").json()
    plan = schema["paths"]["/cases/{case_id}/plan-measure"]["post"]
    body = plan["requestBody"]["content"]["application/json"]["schema"]
    assert body["$ref"].endswith("PlanMeasure")
    assert "/cases/{case_id}/accept-baton" in schema["paths"]


# Bounded input (stafett_contracts.inputs): a body that breaks a limit is 422 naming the field,
# a date outside the case's window is 409 naming `date-within-window`; nothing is stored.


def test_date_within_window_an_evaluation_date_in_year_9999_is_409_and_stores_nothing(
    http: Http, nats_server: NatsTestServer
) -> None:
    # Given a case at level 0
    case_id = http.raise_concern()
    # When its leader plans a measure to be evaluated on the last day of the calendar
    measure = {
        "measure_id": str(uuid4()),
        "description": "Fast voksen i lek",
        "responsible": TEACHER.person,
        "service": UNIT,
        "evaluation_date": "9999-12-31",
    }
    answer = http.post(LEADER, f"/cases/{case_id}/plan-measure", measure)
    # Then it is refused naming the rule and the window, and the case has only its concern
    assert answer.status_code == 409, answer.text
    assert answer.json()["extra"] == {"rule": "date-within-window"}
    assert "evaluation_date 9999-12-31" in answer.json()["detail"]
    assert "5 years ahead" in answer.json()["detail"]
    assert len(case_events(nats_server.url)) == 1


@pytest.mark.parametrize(
    ("character", "what"),
    [("\x00", "NUL"), ("\u200b", "zero-width space"), ("\u202e", "right-to-left override")],
)
def test_person_id_with_a_control_or_invisible_character_is_422_naming_the_field(
    http: Http, nats_server: NatsTestServer, character: str, what: str
) -> None:
    # Given a case
    case_id = http.raise_concern()
    # When the concern is shared with a person id holding a NUL, zero-width or RTL character
    shared = {"shared_with": f"styrer{character}-1", "note": "Delt med styrer."}
    answer = http.post(TEACHER, f"/cases/{case_id}/share-concern", shared)
    # Then it is refused as invalid input naming the field, and nothing is stored
    assert answer.status_code == 422, what
    assert answer.json()["extra"][0]["key"] == "shared_with"
    assert len(case_events(nats_server.url)) == 1


def test_a_note_of_only_whitespace_is_422_naming_the_field(
    http: Http, nats_server: NatsTestServer
) -> None:
    case_id = http.raise_concern()
    answer = http.post(TEACHER, f"/cases/{case_id}/note-bright-spot", {"note": " \n\t\u00a0 "})
    assert answer.status_code == 422
    assert answer.json()["extra"][0]["key"] == "note"
    assert len(case_events(nats_server.url)) == 1


def test_an_oversize_concern_is_422_and_leaves_no_event_and_no_child_key(
    http: Http, nats_server: NatsTestServer
) -> None:
    # Given a child the register knows
    child = http.registered(MOTHER.person)
    # When a concern of 10 001 characters is raised about them
    body = {"child_id": str(child.child_id), "concern": "x" * 10_001}
    answer = http.post(TEACHER, "/cases", body)
    # Then it is refused naming the field and its limit, before a child's key is made
    assert answer.status_code == 422
    (named,) = answer.json()["extra"]
    assert named["key"] == "concern"
    assert "10000" in named["message"]
    assert no_concern_stored(nats_server.url)


def test_the_openapi_document_shows_the_limits_of_each_field(http: Http) -> None:
    schemas = http.client.get("/schema/openapi.json").json()["components"]["schemas"]
    share = schemas["ShareConcern"]["properties"]
    assert share["shared_with"]["maxLength"] == 128
    assert "pattern" in share["shared_with"]
    assert "description" in share["shared_with"]
    assert share["note"]["maxLength"] == 10_000
