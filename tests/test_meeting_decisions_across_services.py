"""A decision recorded in a meeting changes the case, with nobody entering it twice.

Given the consent, case and meeting services, each in its own process as in production, and
agreeing only through NATS: when a meeting decides to move the case to level 2, then the case
service escalates the case itself, as the person who recorded the decision, caused by it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import msgspec

from stafett_contracts.identity import Actor, Role
from stafett_runtime.testing import a_child
from tests.platform import Platform

KINDERGARTEN = "barnehage-solsikke"
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service=KINDERGARTEN)
LEADER = Actor(person="styrer-1", role=Role.UNIT_LEADER, service=KINDERGARTEN)
GUARDIAN = Actor(person="forelder-1", role=Role.GUARDIAN)
PPT = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")


def wait_until(what: str, holds: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not holds():
        assert time.monotonic() < deadline, f"not within 30 s: {what}"
        time.sleep(0.1)


def test_a_meeting_decision_to_move_to_level_2_escalates_the_case(platform: Platform) -> None:
    key = platform.key  # the services' development key
    platform.start("consent", "case", "meeting")
    consent, case, meeting = (platform.services[n] for n in ("consent", "case", "meeting"))
    http = httpx.Client(timeout=10)

    def post(actor: Actor, url: str, body: dict[str, Any]) -> Any:
        answer = http.post(url, json=body, headers={"Authorization": f"Bearer {key.mint(actor)}"})
        assert answer.status_code == 201, f"{url}: {answer.text}"
        return answer.json()

    def get(actor: Actor, url: str) -> httpx.Response:
        return http.get(url, headers={"Authorization": f"Bearer {key.mint(actor)}"})

    def case_types() -> list[str]:
        return platform.event_types("case", case_id)

    # Given a concern in the kindergarten, the guardian's consent to cooperate with PPT,
    # a baton holder, and the case at level 1
    child = a_child(GUARDIAN.person)
    platform.register_child(child)
    body = {"child_id": str(child.child_id), "concern": "Trekker seg unna i lek over flere uker."}
    case_id = UUID(post(TEACHER, f"{case.url}/cases", body)["id"])
    post(
        GUARDIAN,
        f"{consent.url}/consents",
        {
            "case_id": str(case_id),
            "given_by": {"kind": "guardian", "person": GUARDIAN.person},
            "services": [KINDERGARTEN, "ppt"],
            "purposes": ["cooperation", "referral"],
            "valid_from": datetime.now(UTC).isoformat(),
            "evidence": {
                "form": "written",
                "document_ref": "arkiv/2026/1234",
                "document_sha256": hashlib.sha256(b"signed consent").hexdigest(),
            },
        },
    )
    wait_until("the case notes the consent", lambda: "ConsentNoted" in case_types())
    appoint = {"holder": TEACHER.person, "service": KINDERGARTEN}
    post(LEADER, f"{case.url}/cases/{case_id}/appoint-baton-holder", appoint)
    escalate = {"to_level": 1, "reason": "Tiltak i barnehagen, med foreldrene."}
    post(TEACHER, f"{case.url}/cases/{case_id}/escalate", escalate)
    # And the meeting service has learned the case at level 1 from the CASE stream
    roster_url = f"{meeting.url}/cases/{case_id}/roster"
    wait_until(
        "the meeting service knows the case at level 1",
        lambda: (
            get(TEACHER, roster_url).status_code == 200
            and get(TEACHER, roster_url).json()["level"] == 1
        ),
    )

    # When the baton holder holds a cooperation meeting with the guardian and PPT
    starts = datetime.now(UTC) + timedelta(minutes=1)
    meeting_id = post(
        TEACHER,
        f"{meeting.url}/meetings",
        {
            "case_id": str(case_id),
            "meeting_type": "cooperation",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=1)).isoformat(),
            "video_link": "https://video.example/rom/42",
            "agenda": ["Hvordan går det?", "Trengs mer hjelp?"],
        },
    )["id"]
    steps: list[tuple[str, dict[str, Any]]] = [
        ("invite", {"person": GUARDIAN.person, "kind": "guardian"}),
        ("invite", {"person": PPT.person, "kind": "service", "service": "ppt"}),
        ("record-held", {"attended": [TEACHER.person, GUARDIAN.person, PPT.person]}),
    ]
    for path, body in steps:
        post(TEACHER, f"{meeting.url}/meetings/{meeting_id}/{path}", body)
    # And records its decision to move the case to level 2
    decision = {
        "decision_id": str(uuid4()),
        "kind": "move_to_level",
        "to_level": 2,
        "reason": "PPT utreder språket sammen med barnehagen.",
    }
    post(TEACHER, f"{meeting.url}/meetings/{meeting_id}/record-decision", decision)

    # Then the case service escalates the case to level 2 by itself
    wait_until("the case escalates to level 2", lambda: case_types().count("Escalated") == 2)
    events = platform.events("case", case_id)
    assert [e["type"] for e in events] == [
        "ConcernRaised",
        "ConsentNoted",
        "BatonHolderAppointed",
        "Escalated",
        "Escalated",
    ]
    recorded = platform.events("meeting", UUID(meeting_id))[-1]
    assert recorded["type"] == "DecisionRecorded"
    escalated = events[-1]
    assert (escalated["from_level"], escalated["to_level"]) == (1, 2)
    # with the meeting's reason carried as it was sealed under the child's key, never in clear
    assert escalated["reason"] == recorded["reason"]
    assert escalated["reason"]["ciphertext"]
    assert str(decision["reason"]) not in str(escalated)
    # As the person who recorded it, with those who attended, caused by the meeting's decision
    assert escalated["actor"] == msgspec.to_builtins(TEACHER)
    assert escalated["participants"] == [TEACHER.person, GUARDIAN.person, PPT.person]
    assert escalated["causation_id"] == recorded["event_id"]
    assert escalated["correlation_id"] == recorded["correlation_id"]
    read = get(TEACHER, f"{case.url}/cases/{case_id}")
    assert read.json()["case"]["level"] == 2
    # And the meeting service learns the new level in turn
    wait_until("the roster shows level 2", lambda: get(TEACHER, roster_url).json()["level"] == 2)
