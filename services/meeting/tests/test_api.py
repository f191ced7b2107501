"""The meeting API over HTTP, against a real nats-server: answers, what reaches the stream, and
what the access log records.

The CASE stream is written here by a stand-in application named "case", with the case
contract's events; the meeting service's commands and the reads' access rule read the case from
it, as in production; so the test needs nothing of the case service but its contract. The child
and their guardians are in a register file of the test's own, the units in the test
municipality's directory (`stafett_runtime.testing`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from stafett_contracts.access import COVERED_NOW, GUARDIAN_OF_THE_CHILD
from stafett_contracts.audit import CaseAccessed
from stafett_contracts.case import (
    BatonHolderAppointed,
    CaseEvent,
    ConcernRaised,
    ConsentLapsed,
    ConsentNoted,
    Escalated,
)
from stafett_contracts.envelope import topic_of
from stafett_contracts.identity import Actor, Role
from stafett_contracts.meeting import DecisionRecorded
from stafett_contracts.people import RegisteredChild
from stafett_contracts.personal import SealedText
from stafett_meeting.api import create_app
from stafett_meeting.application import Meetings
from stafett_runtime.accesslog import AUDIT
from stafett_runtime.auth import DevelopmentKey
from stafett_runtime.contracts import ContractApplication, decode_event
from stafett_runtime.jetstream.layout import TOPIC
from stafett_runtime.kernel import Kernel
from stafett_runtime.register import FileRegister
from stafett_runtime.testing import NatsTestServer, a_child, kernel_for_tests

UNIT = "skole-lia"
HOLDER = Actor(person="laerer-1", role=Role.EMPLOYEE, service=UNIT)
LEADER = Actor(person="rektor-1", role=Role.UNIT_LEADER, service=UNIT)  # as the directory says
PPT_WORKER = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")
BUP_WORKER = Actor(person="bup-1", role=Role.EMPLOYEE, service="bup")
GUARDIAN = Actor(person="mor-1", role=Role.GUARDIAN)
AUDITOR = Actor(person="tilsyn-1", role=Role.AUDITOR)
NOW = datetime.now(UTC)


class CaseStandIn(ContractApplication):
    name = "case"  # writes the CASE stream, as the case service does


class Http:
    """The test client, a bearer token for each actor, and the kernel behind the app."""

    def __init__(self, client: TestClient[Litestar], key: DevelopmentKey, kernel: Kernel) -> None:
        self.client = client
        self.kernel = kernel
        self._key = key

    def post(self, actor: Actor, path: str, body: dict[str, Any]) -> Any:
        return self.client.post(path, json=body, headers=self._auth(actor))

    def get(self, actor: Actor, path: str, **params: str) -> Any:
        return self.client.get(path, params=params, headers=self._auth(actor))

    def access_log(self) -> list[CaseAccessed]:
        """Every CaseAccessed on the AUDIT stream, in order."""
        subject = AUDIT.type_filter(topic_of(CaseAccessed))
        found = self.client.blocking_portal.call(self.kernel.core.read_all, AUDIT.stream, subject)
        records = [decode_event(m.headers[TOPIC], m.data) for m in found]
        return [r for r in records if isinstance(r, CaseAccessed)]

    def _auth(self, actor: Actor) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key.mint(actor)}"}


@pytest.fixture
def env(nats_server: NatsTestServer) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": nats_server.url}


@pytest.fixture
def cases(env: dict[str, str]) -> Iterator[CaseStandIn]:
    app = CaseStandIn(env)
    yield app
    app.close()


@pytest.fixture
def meetings(env: dict[str, str], cases: CaseStandIn) -> Iterator[Meetings]:
    app = Meetings(env)
    yield app
    app.close()


@pytest.fixture
def register(tmp_path: Path) -> FileRegister:
    return FileRegister(tmp_path / "register.json")


@pytest.fixture
def http(
    meetings: Meetings, nats_server: NatsTestServer, register: FileRegister, tmp_path: Path
) -> Iterator[Http]:
    key = DevelopmentKey.load_or_create(tmp_path / "key.pem")
    # "seal": these tests write the case's events themselves, so no case service made the
    # child's key; the meeting service seals under it as it would under the case service's.
    kernel = kernel_for_tests(
        "meeting", nats_server.url, key=key, register=register, child_keys="seal"
    )
    with TestClient(create_app(meetings, kernel)) as client:
        yield Http(client, key, kernel)


class Case:
    """A child's case as the case service writes it on the CASE stream, event by event."""

    def __init__(self, cases: CaseStandIn, child: RegisteredChild) -> None:
        self.id = uuid4()
        self.child = child
        self._cases = cases
        self._version = 0

    def then(self, event_type: type[CaseEvent], **fields: Any) -> None:
        """Record one case event, as of now (or of `occurred_at`, when given)."""
        self._version += 1
        occurred_at = fields.pop("occurred_at", None) or datetime.now(UTC)
        self._cases.save(
            event_type(
                event_id=uuid4(),
                aggregate_id=self.id,
                aggregate_version=self._version,
                occurred_at=occurred_at,
                actor=HOLDER,
                correlation_id="case-request",
                **fields,
            )
        )

    def consent(self, *services: str, valid_from: datetime | None = None) -> UUID:
        """The guardians' consent to cooperation among `services`, noted on the case."""
        consent_id = uuid4()
        self.then(
            ConsentNoted,
            consent_id=consent_id,
            services=services,
            purposes=("cooperation",),
            valid_from=valid_from or datetime.now(UTC),
            valid_until=NOW + timedelta(days=365),
        )
        return consent_id


def a_case_at_level_1(
    cases: CaseStandIn,
    register: FileRegister,
    consented: tuple[str, ...] = (UNIT, "ppt"),
) -> Case:
    """A case of a child the register names GUARDIAN's, whose guardians consented to cooperation
    among `consented`, its baton held by a teacher."""
    child = a_child(GUARDIAN.person)
    register.add(child)
    case = Case(cases, child)
    case.then(ConcernRaised, child_id=child.child_id, unit=UNIT, concern="Uro", occurred_at=NOW)
    case.consent(*consented, valid_from=NOW - timedelta(days=1))
    case.then(BatonHolderAppointed, holder=HOLDER.person, service=UNIT)
    case.then(Escalated, from_level=0, to_level=1, reason="Tiltak i skolen")
    return case


def stream_types(meetings: Meetings, aggregate_id: UUID) -> list[str]:
    return [type(e).__name__ for e in meetings.events.get(aggregate_id)]


def schedule_body(case_id: UUID, **extra: Any) -> dict[str, Any]:
    return {
        "case_id": str(case_id),
        "meeting_type": "cooperation",
        "starts_at": (NOW + timedelta(days=7)).isoformat(),
        "ends_at": (NOW + timedelta(days=7, hours=1)).isoformat(),
        "place": "Møterom 2",
        "agenda": ["Status", "Videre tiltak"],
        **extra,
    }


def a_held_meeting(http: Http, case: Case, *invited: Actor) -> str:
    """A meeting of the case, scheduled and held by the baton holder with `invited`."""
    meeting_id: str = http.post(HOLDER, "/meetings", schedule_body(case.id)).json()["id"]
    for actor in invited:
        kind = "guardian" if actor.role == Role.GUARDIAN else "service"
        service = {"service": actor.service} if kind == "service" else {}
        body = {"person": actor.person, "kind": kind, **service}
        assert http.post(HOLDER, f"/meetings/{meeting_id}/invite", body).status_code == 201
    attended = {"attended": [HOLDER.person, *(a.person for a in invited)]}
    assert http.post(HOLDER, f"/meetings/{meeting_id}/record-held", attended).status_code == 201
    return meeting_id


def record_minutes(http: Http, meeting_id: str, minutes: str) -> None:
    answer = http.post(HOLDER, f"/meetings/{meeting_id}/record-minutes", {"minutes": minutes})
    assert answer.status_code == 201, answer.text


def test_a_meeting_from_scheduling_to_feedback(
    http: Http, cases: CaseStandIn, meetings: Meetings, register: FileRegister
) -> None:
    case = a_case_at_level_1(cases, register)
    # Given the meeting service knows the case's roster
    roster = http.get(HOLDER, f"/cases/{case.id}/roster")
    assert roster.status_code == 200, roster.text
    assert roster.json()["holder"] == {"person": HOLDER.person, "service": UNIT}
    assert roster.json()["level"] == 1
    # When the baton holder schedules a meeting and runs it
    scheduled = http.post(HOLDER, "/meetings", schedule_body(case.id))
    assert scheduled.status_code == 201, scheduled.text
    meeting_id = scheduled.json()["id"]
    item_id = str(uuid4())
    steps: list[tuple[Actor, str, dict[str, Any]]] = [
        (HOLDER, "invite", {"person": GUARDIAN.person, "kind": "guardian"}),
        (HOLDER, "invite", {"person": PPT_WORKER.person, "kind": "service", "service": "ppt"}),
        (HOLDER, "record-held", {"attended": [HOLDER.person, GUARDIAN.person, PPT_WORKER.person]}),
        (HOLDER, "record-minutes", {"minutes": "Vi gikk gjennom tiltakene."}),
        (
            HOLDER,
            "record-decision",
            {
                "decision_id": str(uuid4()),
                "kind": "move_to_level",
                "to_level": 2,
                "reason": "Samarbeid med PPT.",
            },
        ),
        (
            HOLDER,
            "assign-action-item",
            {
                "item_id": item_id,
                "description": "Kartlegge språk",
                "owner": PPT_WORKER.person,
                "owner_service": "ppt",
                "due_on": (NOW + timedelta(days=14)).date().isoformat(),
            },
        ),
        (PPT_WORKER, "complete-action-item", {"item_id": item_id, "note": "Gjort"}),
        (GUARDIAN, "give-feedback", {"rating": 4, "heard": 5, "comment": "Vi ble hørt."}),
    ]
    for version, (actor, path, body) in enumerate(steps, start=2):
        answer = http.post(actor, f"/meetings/{meeting_id}/{path}", body)
        assert answer.status_code == 201, f"{path}: {answer.text}"
        assert answer.json() == {"id": meeting_id, "version": version}
    # Then the stream holds the meeting's events, and the meeting reads as they leave it
    assert stream_types(meetings, UUID(meeting_id)) == [
        "MeetingScheduled",
        "ParticipantInvited",
        "ParticipantInvited",
        "MeetingHeld",
        "MinutesRecorded",
        "DecisionRecorded",
        "ActionItemAssigned",
        "ActionItemCompleted",
        "FeedbackGiven",
    ]
    meeting = http.get(GUARDIAN, f"/meetings/{meeting_id}").json()
    assert (meeting["leader"], meeting["version"], meeting["case_id"]) == (
        HOLDER.person,
        9,
        str(case.id),
    )
    assert meeting["action_items"][item_id]["completed"] is True
    assert [m["id"] for m in http.get(PPT_WORKER, f"/cases/{case.id}/meetings").json()] == [
        meeting_id
    ]


# the child's view (issue 18: the child's voice at every decision)


def test_the_child_s_view_is_recorded_beside_a_meeting_s_decision_sealed_and_shown_with_it(
    http: Http, cases: CaseStandIn, meetings: Meetings, register: FileRegister
) -> None:
    # Given a meeting held about a case at level 1, the guardian there
    case = a_case_at_level_1(cases, register)
    meeting_id = a_held_meeting(http, case, GUARDIAN)
    # When the baton holder records the meeting's decision with what the child said of it
    decision_id = str(uuid4())
    said = "Jeg vil ha en voksen i friminuttet."
    body = {
        "decision_id": decision_id,
        "kind": "move_to_level",
        "to_level": 2,
        "reason": "Samarbeid med PPT.",
        "child_view": said,
    }
    answer = http.post(HOLDER, f"/meetings/{meeting_id}/record-decision", body)
    assert answer.status_code == 201, answer.text
    # Then the decision on the stream carries the child's view sealed, never in clear
    (recorded,) = [
        e for e in meetings.events.get(UUID(meeting_id)) if type(e).__name__ == "DecisionRecorded"
    ]
    assert isinstance(recorded, DecisionRecorded)
    assert isinstance(recorded.child_view, SealedText)
    assert said not in msgspec.json.encode(recorded).decode()
    # And the guardian reads it beside the decision, opened
    decision = http.get(GUARDIAN, f"/meetings/{meeting_id}").json()["decisions"][decision_id]
    assert (decision["to_level"], decision["child_view"]) == (2, said)
    # And the same decision recorded again (a retry) is found already recorded
    again = http.post(HOLDER, f"/meetings/{meeting_id}/record-decision", body)
    assert again.status_code == 201, again.text
    assert again.json()["version"] == answer.json()["version"]


# consent-covers-the-service (DOMAIN.md rules 1 and 3)


def test_minutes_recorded_after_ppts_consent_lapsed_are_not_served_to_its_invitee(
    http: Http, cases: CaseStandIn, meetings: Meetings, register: FileRegister
) -> None:
    # Given a meeting with PPT invited under the guardians' consent, and minutes of it
    case = a_case_at_level_1(cases, register, consented=(UNIT,))
    ppts_consent = case.consent("ppt")
    meeting_id = a_held_meeting(http, case, GUARDIAN, PPT_WORKER)
    record_minutes(http, meeting_id, "Før: vi ble enige om tiltak.")
    # When the consent lapses for PPT, and more minutes are recorded
    case.then(ConsentLapsed, consent_id=ppts_consent, services=("ppt",), reason="withdrawn")
    record_minutes(http, meeting_id, "Etter: nye opplysninger om hjemmet.")
    # Then PPT's invitee reads nothing of the case while no consent covers PPT
    refused = http.get(PPT_WORKER, f"/meetings/{meeting_id}")
    assert refused.status_code == 403, refused.text
    assert refused.json()["extra"] == {"rule": COVERED_NOW}
    # And when a new consent covers PPT, the minutes from the gap stay unseen by PPT
    case.consent("ppt")
    record_minutes(http, meeting_id, "Igjen: PPT er med.")
    seen = http.get(PPT_WORKER, f"/meetings/{meeting_id}")
    assert seen.status_code == 200, seen.text
    assert seen.json()["minutes"] == ["Før: vi ble enige om tiltak.", "Igjen: PPT er med."]
    # while the guardian sees them all
    whole = http.get(GUARDIAN, f"/meetings/{meeting_id}").json()
    assert len(whole["minutes"]) == 3


def test_a_covered_service_sees_only_the_meetings_from_its_period(
    http: Http, cases: CaseStandIn, meetings: Meetings, register: FileRegister
) -> None:
    # Given a meeting held before any consent covered PPT, and one after
    case = a_case_at_level_1(cases, register, consented=(UNIT,))
    before = a_held_meeting(http, case)
    case.consent("ppt")
    after = a_held_meeting(http, case, PPT_WORKER)
    # When PPT reads the case's meetings, then only the later one is there
    listed = http.get(PPT_WORKER, f"/cases/{case.id}/meetings")
    assert listed.status_code == 200, listed.text
    assert [m["id"] for m in listed.json()] == [after]
    # and the earlier one is not shown on its own either
    hidden = http.get(PPT_WORKER, f"/meetings/{before}")
    assert hidden.status_code == 404
    assert hidden.json()["detail"] == "no meeting you may see"
    # while the case's own unit sees both
    own = http.get(HOLDER, f"/cases/{case.id}/meetings").json()
    assert [m["id"] for m in own] == [before, after]


# guardian-of-the-child (DOMAIN.md rule 7)


def test_a_guardian_of_the_child_sees_every_meeting(
    http: Http, cases: CaseStandIn, meetings: Meetings, register: FileRegister
) -> None:
    case = a_case_at_level_1(cases, register)
    first = a_held_meeting(http, case)  # the guardian was invited to neither
    second = http.post(HOLDER, "/meetings", schedule_body(case.id)).json()["id"]
    listed = http.get(GUARDIAN, f"/cases/{case.id}/meetings")
    assert listed.status_code == 200, listed.text
    assert [m["id"] for m in listed.json()] == [first, second]
    assert http.get(GUARDIAN, f"/cases/{case.id}/roster").status_code == 200
    # A person signed in as a guardian whom the register does not name is refused
    stranger = Actor(person="far-ukjent", role=Role.GUARDIAN)
    refused = http.get(stranger, f"/cases/{case.id}/meetings")
    assert refused.status_code == 403
    assert refused.json()["extra"] == {"rule": GUARDIAN_OF_THE_CHILD}


# auditor-states-purpose


def test_an_auditor_reads_the_meetings_only_with_a_purpose(
    http: Http, cases: CaseStandIn, meetings: Meetings, register: FileRegister
) -> None:
    case = a_case_at_level_1(cases, register)
    meeting_id = a_held_meeting(http, case)
    without = http.get(AUDITOR, f"/cases/{case.id}/meetings")
    assert without.status_code == 422
    assert without.json()["extra"][0]["key"] == "purpose"
    too_long = http.get(AUDITOR, f"/meetings/{meeting_id}", purpose="x" * 501)
    assert too_long.status_code == 422
    assert "purpose" in too_long.text
    granted = http.get(AUDITOR, f"/meetings/{meeting_id}", purpose="Tilsyn 2026-4")
    assert granted.status_code == 200, granted.text
    last = http.access_log()[-1]
    assert (last.actor, last.what, last.purpose, last.outcome) == (
        AUDITOR,
        "meeting",
        "Tilsyn 2026-4",
        "granted",
    )


# every read recorded (DOMAIN.md rule 9)


def test_a_stranger_is_refused_and_the_refusal_is_recorded_on_the_audit_stream(
    http: Http, cases: CaseStandIn, meetings: Meetings, register: FileRegister
) -> None:
    case = a_case_at_level_1(cases, register)
    meeting_id = http.post(HOLDER, "/meetings", schedule_body(case.id)).json()["id"]
    # When someone from BUP, which no consent covers, asks for the meeting, its list and roster
    for path in (f"/meetings/{meeting_id}", f"/cases/{case.id}/meetings"):
        refused = http.get(BUP_WORKER, path)
        assert refused.status_code == 403, refused.text
        assert refused.json()["extra"] == {"rule": COVERED_NOW}
        assert set(refused.json()) == {"status_code", "detail", "extra"}  # nothing of the case
    assert http.get(BUP_WORKER, f"/cases/{case.id}/roster").status_code == 403
    # Then each refusal is on the AUDIT stream, naming the reader, the case and the rule
    assert http.get(HOLDER, f"/cases/{case.id}/roster").status_code == 200
    log = [(r.actor, r.case_id, r.what, r.outcome, r.rule, r.served_by) for r in http.access_log()]
    assert log == [
        (BUP_WORKER, case.id, "meeting", "refused", COVERED_NOW, "meeting"),
        (BUP_WORKER, case.id, "meetings", "refused", COVERED_NOW, "meeting"),
        (BUP_WORKER, case.id, "roster", "refused", COVERED_NOW, "meeting"),
        (HOLDER, case.id, "roster", "granted", "own-unit", "meeting"),
    ]


# who-calls-meetings: the leader is whom the directory names


def test_a_unit_leader_token_the_directory_does_not_name_may_not_schedule_a_meeting(
    http: Http, cases: CaseStandIn, meetings: Meetings, register: FileRegister
) -> None:
    case = a_case_at_level_1(cases, register)
    claims_to_lead = Actor(person="laerer-2", role=Role.UNIT_LEADER, service=UNIT)
    refused = http.post(claims_to_lead, "/meetings", schedule_body(case.id))
    assert refused.status_code == 403, refused.text
    assert meetings.meetings_of(case.id) == []
    # while the leader the directory names calls the meeting
    assert http.post(LEADER, "/meetings", schedule_body(case.id)).status_code == 201


def test_inviting_someone_from_a_service_the_consent_does_not_cover_is_403_and_stores_nothing(
    http: Http, cases: CaseStandIn, meetings: Meetings, register: FileRegister
) -> None:
    case = a_case_at_level_1(cases, register)
    meeting_id = http.post(HOLDER, "/meetings", schedule_body(case.id)).json()["id"]
    body = {"person": BUP_WORKER.person, "kind": "service", "service": "bup"}
    refused = http.post(HOLDER, f"/meetings/{meeting_id}/invite", body)
    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"].startswith("consent-covers-the-service: no consent")
    assert "bup" in refused.json()["detail"]
    assert stream_types(meetings, UUID(meeting_id)) == ["MeetingScheduled"]


def test_a_case_or_meeting_that_does_not_exist_is_404(http: Http) -> None:
    unknown = uuid4()
    assert http.post(HOLDER, "/meetings", schedule_body(unknown)).status_code == 404
    assert http.get(HOLDER, f"/cases/{unknown}/roster").status_code == 404
    assert http.get(HOLDER, f"/cases/{unknown}/meetings").status_code == 404
    assert http.get(HOLDER, f"/meetings/{unknown}").status_code == 404
    assert http.access_log() == []  # nothing was read


def test_bad_input_is_422_naming_the_field_and_stores_nothing(
    http: Http, cases: CaseStandIn, meetings: Meetings, register: FileRegister
) -> None:
    case = a_case_at_level_1(cases, register)
    no_place = http.post(HOLDER, "/meetings", schedule_body(case.id, place=None))
    assert no_place.status_code == 422, no_place.text
    assert "place or video_link" in no_place.text
    unknown_type = http.post(HOLDER, "/meetings", schedule_body(case.id, meeting_type="fest"))
    assert unknown_type.status_code == 422
    assert "meeting_type" in unknown_type.text
    assert http.get(HOLDER, f"/cases/{case.id}/meetings").json() == []


def test_date_within_window_a_meeting_in_1970_is_409_and_stores_nothing(
    http: Http, cases: CaseStandIn, meetings: Meetings, register: FileRegister
) -> None:
    # Given a case raised today
    case = a_case_at_level_1(cases, register)
    stored = meetings.recorder.max_notification_id()
    # When its baton holder schedules a meeting on 1 January 1970
    old = schedule_body(
        case.id, starts_at="1970-01-01T09:00:00+01:00", ends_at="1970-01-01T10:00:00+01:00"
    )
    answer = http.post(HOLDER, "/meetings", old)
    # Then it is refused naming the rule and the window, and the stream holds nothing new
    assert answer.status_code == 409, answer.text
    assert answer.json()["extra"] == {"rule": "date-within-window"}
    assert "from when the case was raised" in answer.json()["detail"]
    assert meetings.recorder.max_notification_id() == stored
    assert http.get(HOLDER, f"/cases/{case.id}/meetings").json() == []


@pytest.mark.parametrize("character", ["\x00", "\u200b", "\u202e"])
def test_a_person_id_with_a_control_or_invisible_character_is_422_naming_the_field(
    http: Http, cases: CaseStandIn, meetings: Meetings, register: FileRegister, character: str
) -> None:
    case = a_case_at_level_1(cases, register)
    meeting_id = http.post(HOLDER, "/meetings", schedule_body(case.id)).json()["id"]
    invite = {"person": f"mor{character}-1", "kind": "guardian"}
    answer = http.post(HOLDER, f"/meetings/{meeting_id}/invite", invite)
    assert answer.status_code == 422
    assert answer.json()["extra"][0]["key"] == "person"
    assert stream_types(meetings, UUID(meeting_id)) == ["MeetingScheduled"]


def test_a_meeting_time_without_a_time_zone_or_minutes_of_only_whitespace_are_422(
    http: Http, cases: CaseStandIn, meetings: Meetings, register: FileRegister
) -> None:
    case = a_case_at_level_1(cases, register)
    naive = schedule_body(case.id, starts_at="2030-01-07T09:00:00", ends_at="2030-01-07T10:00:00")
    answer = http.post(HOLDER, "/meetings", naive)
    assert answer.status_code == 422
    assert answer.json()["extra"][0]["key"] == "starts_at"
    meeting_id = a_held_meeting(http, case)
    blank = http.post(HOLDER, f"/meetings/{meeting_id}/record-minutes", {"minutes": "  \n  "})
    assert blank.status_code == 422
    assert blank.json()["extra"][0]["key"] == "minutes"
    assert stream_types(meetings, UUID(meeting_id)) == ["MeetingScheduled", "MeetingHeld"]


def test_a_rule_broken_is_409_naming_it_and_an_outsider_may_not_schedule(
    http: Http, cases: CaseStandIn, meetings: Meetings, register: FileRegister
) -> None:
    case = a_case_at_level_1(cases, register)
    meeting_id = http.post(HOLDER, "/meetings", schedule_body(case.id)).json()["id"]
    early = http.post(HOLDER, f"/meetings/{meeting_id}/record-minutes", {"minutes": "Referat"})
    assert early.status_code == 409
    assert early.json()["extra"] == {"rule": "meeting-held-first"}
    assert http.post(BUP_WORKER, "/meetings", schedule_body(case.id)).status_code == 403
    assert stream_types(meetings, UUID(meeting_id)) == ["MeetingScheduled"]


def test_a_meeting_moved_then_cancelled_takes_no_more_invitations(
    http: Http, cases: CaseStandIn, meetings: Meetings, register: FileRegister
) -> None:
    case = a_case_at_level_1(cases, register)
    meeting_id = http.post(HOLDER, "/meetings", schedule_body(case.id)).json()["id"]
    later = {
        "starts_at": (NOW + timedelta(days=9)).isoformat(),
        "ends_at": (NOW + timedelta(days=9, hours=1)).isoformat(),
        "video_link": "https://video.example/rom/7",
        "reason": "Sykdom",
    }
    moved = http.post(HOLDER, f"/meetings/{meeting_id}/reschedule", later)
    assert moved.json() == {"id": meeting_id, "version": 2}
    cancelled = http.post(HOLDER, f"/meetings/{meeting_id}/cancel", {"reason": "Løst"})
    assert cancelled.json() == {"id": meeting_id, "version": 3}
    invite = {"person": GUARDIAN.person, "kind": "guardian"}
    refused = http.post(HOLDER, f"/meetings/{meeting_id}/invite", invite)
    assert refused.status_code == 409
    assert refused.json()["extra"] == {"rule": "meeting-not-cancelled"}
    meeting = http.get(HOLDER, f"/meetings/{meeting_id}").json()
    assert (meeting["cancelled"], meeting["video_link"], meeting["place"]) == (
        True,
        "https://video.example/rom/7",
        None,
    )
    assert stream_types(meetings, UUID(meeting_id)) == [
        "MeetingScheduled",
        "MeetingRescheduled",
        "MeetingCancelled",
    ]
