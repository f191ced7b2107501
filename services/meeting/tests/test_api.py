"""The meeting API over HTTP, against a real nats-server: answers, and what reaches the stream.

The CASE stream is written here by a stand-in application named "case", with the case
contract's events, and the roster policy follows it as in production; so the test needs nothing
of the case service but its contract.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from stafett_contracts.case import (
    BatonHolderAppointed,
    CaseEvent,
    ConcernRaised,
    ConsentNoted,
    Escalated,
)
from stafett_contracts.identity import Actor, Role
from stafett_meeting.api import create_app
from stafett_meeting.application import Meetings, meeting_history
from stafett_meeting.policies import CaseFollower, RosterPolicy
from stafett_runtime.auth import DevelopmentKey, TokenVerifier
from stafett_runtime.contracts import CONTRACT_ENV, ContractApplication
from stafett_runtime.processing import ProcessingLoop, Upstream
from stafett_runtime.testing import NatsTestServer

UNIT = "skole-lia"
HOLDER = Actor(person="laerer-1", role=Role.EMPLOYEE, service=UNIT)
PPT_WORKER = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")
BUP_WORKER = Actor(person="bup-1", role=Role.EMPLOYEE, service="bup")
GUARDIAN = Actor(person="mor-1", role=Role.GUARDIAN)
NOW = datetime.now(UTC)


class CaseStandIn(ContractApplication):
    name = "case"


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
    follower = CaseFollower(env)
    follower.start()
    yield app
    follower.stop()
    app.close()


@pytest.fixture
def http(meetings: Meetings, tmp_path: Path) -> Iterator[Http]:
    key = DevelopmentKey.load_or_create(tmp_path / "key.pem")
    with TestClient(create_app(meetings, TokenVerifier(key.public_key))) as client:
        yield Http(client, key)


def a_case_at_level_1(cases: CaseStandIn, meetings: Meetings) -> UUID:
    """A case whose guardians consented to cooperation with PPT, its baton held by a teacher;
    returned once the meeting service has learned all of it."""
    case_id = uuid4()
    facts: list[tuple[type[CaseEvent], dict[str, Any]]] = [
        (ConcernRaised, {"child_id": uuid4(), "unit": UNIT, "concern": "Uro"}),
        (
            ConsentNoted,
            {
                "consent_id": uuid4(),
                "services": (UNIT, "ppt"),
                "purposes": ("cooperation",),
                "valid_from": NOW - timedelta(days=1),
                "valid_until": NOW + timedelta(days=365),
            },
        ),
        (BatonHolderAppointed, {"holder": HOLDER.person, "service": UNIT}),
        (Escalated, {"from_level": 0, "to_level": 1, "reason": "Tiltak i skolen"}),
    ]
    for version, (event_type, fields) in enumerate(facts, start=1):
        cases.save(
            event_type(
                event_id=uuid4(),
                aggregate_id=case_id,
                aggregate_version=version,
                occurred_at=NOW,
                actor=HOLDER,
                correlation_id="case-request",
                **fields,
            )
        )
    deadline = time.monotonic() + 20
    while len(meeting_history(meetings, case_id)) < len(facts):
        assert time.monotonic() < deadline, "the roster policy did not learn the case in 20 s"
        time.sleep(0.05)
    return case_id


def stream_types(meetings: Meetings, aggregate_id: UUID) -> list[str]:
    return [type(e).__name__ for e in meeting_history(meetings, aggregate_id)]


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


def test_a_meeting_from_scheduling_to_feedback(
    http: Http, cases: CaseStandIn, meetings: Meetings
) -> None:
    case_id = a_case_at_level_1(cases, meetings)
    # Given the meeting service knows the case's roster
    roster = http.get(HOLDER, f"/cases/{case_id}/roster")
    assert roster.status_code == 200, roster.text
    assert roster.json()["holder"] == {"person": HOLDER.person, "service": UNIT}
    assert roster.json()["level"] == 1
    # When the baton holder schedules a meeting and runs it
    scheduled = http.post(HOLDER, "/meetings", schedule_body(case_id))
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
        str(case_id),
    )
    assert meeting["action_items"][item_id]["completed"] is True
    assert [m["id"] for m in http.get(PPT_WORKER, f"/cases/{case_id}/meetings").json()] == [
        meeting_id
    ]


def test_inviting_someone_from_a_service_the_consent_does_not_cover_is_403_and_stores_nothing(
    http: Http, cases: CaseStandIn, meetings: Meetings
) -> None:
    case_id = a_case_at_level_1(cases, meetings)
    meeting_id = http.post(HOLDER, "/meetings", schedule_body(case_id)).json()["id"]
    body = {"person": BUP_WORKER.person, "kind": "service", "service": "bup"}
    refused = http.post(HOLDER, f"/meetings/{meeting_id}/invite", body)
    assert refused.status_code == 403, refused.text
    assert refused.json()["detail"].startswith("consent-covers-the-service: no consent")
    assert "bup" in refused.json()["detail"]
    assert stream_types(meetings, UUID(meeting_id)) == ["MeetingScheduled"]


def test_a_case_the_meeting_service_has_not_learned_is_404(http: Http) -> None:
    unknown = uuid4()
    assert http.post(HOLDER, "/meetings", schedule_body(unknown)).status_code == 404
    assert http.get(HOLDER, f"/cases/{unknown}/roster").status_code == 404
    assert http.get(HOLDER, f"/meetings/{unknown}").status_code == 404


def test_bad_input_is_422_naming_the_field_and_stores_nothing(
    http: Http, cases: CaseStandIn, meetings: Meetings
) -> None:
    case_id = a_case_at_level_1(cases, meetings)
    no_place = http.post(HOLDER, "/meetings", schedule_body(case_id, place=None))
    assert no_place.status_code == 422, no_place.text
    assert "place or video_link" in no_place.text
    unknown_type = http.post(HOLDER, "/meetings", schedule_body(case_id, meeting_type="fest"))
    assert unknown_type.status_code == 422
    assert "meeting_type" in unknown_type.text
    assert http.get(HOLDER, f"/cases/{case_id}/meetings").json() == []


def test_a_rule_broken_is_409_naming_it_and_an_outsider_is_403(
    http: Http, cases: CaseStandIn, meetings: Meetings
) -> None:
    case_id = a_case_at_level_1(cases, meetings)
    meeting_id = http.post(HOLDER, "/meetings", schedule_body(case_id)).json()["id"]
    early = http.post(HOLDER, f"/meetings/{meeting_id}/record-minutes", {"minutes": "Referat"})
    assert early.status_code == 409
    assert early.json()["extra"] == {"rule": "meeting-held-first"}
    assert http.post(BUP_WORKER, "/meetings", schedule_body(case_id)).status_code == 403
    assert http.get(BUP_WORKER, f"/meetings/{meeting_id}").status_code == 403
    assert http.get(BUP_WORKER, f"/cases/{case_id}/roster").status_code == 403
    assert stream_types(meetings, UUID(meeting_id)) == ["MeetingScheduled"]


def test_a_meeting_moved_then_cancelled_takes_no_more_invitations(
    http: Http, cases: CaseStandIn, meetings: Meetings
) -> None:
    case_id = a_case_at_level_1(cases, meetings)
    meeting_id = http.post(HOLDER, "/meetings", schedule_body(case_id)).json()["id"]
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


def test_a_case_event_processed_again_notes_nothing_twice(
    env: dict[str, str], cases: CaseStandIn, meetings: Meetings
) -> None:
    case_id = a_case_at_level_1(cases, meetings)
    before = stream_types(meetings, case_id)
    # When a second policy instance is handed the case's events again (a redelivery)
    policy, upstream = RosterPolicy(env), Upstream.named("case", {**env, **CONTRACT_ENV})
    try:
        loop = ProcessingLoop(policy, upstream)
        for notification in upstream.recorder.select_notifications(1, 100):
            loop.process_once(notification)
    finally:
        policy.close()
        upstream.close()
    # Then the roster has the same events as before: each case event was noted once
    assert stream_types(meetings, case_id) == before == ["CaseRosterNoted"] * 4
