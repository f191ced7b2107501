"""A meeting's decision the case refuses is recorded on the case, and its recorder is told.

Given the consent, case, meeting and notify services, each in its own process as in production,
agreeing only through NATS, with a real SMTP server: when a meeting decides to move a case to
level 3 while it has no coordinator, then the case service records `DecisionRefused` naming the
rule `level-3-needs-coordinator`, as the person who recorded the decision, caused by it; the
case stays where it was; and the notify service mails that person, with a reference and a link.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import Message
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest

from stafett_contracts.identity import Actor, Role
from stafett_notify.testing import Mailbox, smtp_server
from stafett_runtime.testing import a_child
from tests.platform import Platform

KINDERGARTEN = "barnehage-solsikke"
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service=KINDERGARTEN)
LEADER = Actor(person="styrer-1", role=Role.UNIT_LEADER, service=KINDERGARTEN)
GUARDIAN = Actor(person="forelder-1", role=Role.GUARDIAN)
REFUSED_HEADLINE = "A decision you recorded in a meeting was not carried out in the case"


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


def wait_until(what: str, holds: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 30
    while not holds():
        assert time.monotonic() < deadline, f"not within 30 s: {what}"
        time.sleep(0.1)


def test_level_3_needs_coordinator_a_refused_meeting_decision_is_recorded_and_its_recorder_told(
    platform: Platform, smtp: tuple[Mailbox, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    mailbox, port = smtp
    monkeypatch.setenv("STAFETT_NOTIFY_SMTP_PORT", str(port))  # everyone at <id>@stafett.localhost
    monkeypatch.setenv("STAFETT_NOTIFY_INTERVAL", "1")
    platform.start("consent", "case", "meeting", "notify")

    def post(service: str, actor: Actor, path: str, body: dict[str, Any]) -> Any:
        answer = platform.post(service, path, actor, body)
        assert answer.status_code == 201, f"{path}: {answer.text}"
        return answer.json()

    def roster_level() -> int | None:
        answer = platform.get("meeting", f"/cases/{case_id}/roster", TEACHER)
        return int(answer.json()["level"]) if answer.status_code == 200 else None

    # Given a concern in the kindergarten, the guardian's consent, a baton holder, and the case
    # at level 1 with no coordinator
    child = a_child(GUARDIAN.person)
    platform.register_child(child)
    concern = {"child_id": str(child.child_id), "concern": "Trekker seg unna i lek over uker."}
    case_id = UUID(post("case", TEACHER, "/cases", concern)["id"])
    consent = {
        "case_id": str(case_id),
        "given_by": {"kind": "guardian", "person": GUARDIAN.person},
        "services": [KINDERGARTEN, "ppt"],
        "purposes": ["cooperation"],
        "valid_from": datetime.now(UTC).isoformat(),
        "evidence": {
            "form": "written",
            "document_ref": "arkiv/2026/1234",
            "document_sha256": hashlib.sha256(b"signed consent").hexdigest(),
        },
    }
    post("consent", GUARDIAN, "/consents", consent)
    wait_until(
        "the case notes the consent",
        lambda: "ConsentNoted" in platform.event_types("case", case_id),
    )
    appoint = {"holder": TEACHER.person, "service": KINDERGARTEN}
    post("case", LEADER, f"/cases/{case_id}/appoint-baton-holder", appoint)
    escalate = {"to_level": 1, "reason": "Tiltak i barnehagen, med foreldrene."}
    post("case", TEACHER, f"/cases/{case_id}/escalate", escalate)
    wait_until("the meeting service knows the case at level 1", lambda: roster_level() == 1)

    # When the baton holder holds a meeting with the guardian and records its decision to move
    # the case to level 3
    starts = datetime.now(UTC) + timedelta(minutes=1)
    meeting = {
        "case_id": str(case_id),
        "meeting_type": "cooperation",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=1)).isoformat(),
        "video_link": "https://video.example/rom/42",
    }
    meeting_id = UUID(post("meeting", TEACHER, "/meetings", meeting)["id"])
    invite = {"person": GUARDIAN.person, "kind": "guardian"}
    post("meeting", TEACHER, f"/meetings/{meeting_id}/invite", invite)
    held = {"attended": [TEACHER.person, GUARDIAN.person]}
    post("meeting", TEACHER, f"/meetings/{meeting_id}/record-held", held)
    decision = {
        "decision_id": str(uuid4()),
        "kind": "move_to_level",
        "to_level": 3,
        "reason": "Langvarig behov: ansvarsgruppe og individuell plan.",
    }
    post("meeting", TEACHER, f"/meetings/{meeting_id}/record-decision", decision)

    # Then the case records the decision refused, naming the rule, and stays at level 1
    wait_until(
        "the case records the refusal",
        lambda: "DecisionRefused" in platform.event_types("case", case_id),
    )
    events = platform.events("case", case_id)
    assert [e["type"] for e in events] == [
        "ConcernRaised",
        "ConsentNoted",
        "BatonHolderAppointed",
        "Escalated",
        "DecisionRefused",
    ]
    refused = events[-1]
    assert refused["rule"] == "level-3-needs-coordinator"
    assert (refused["meeting_id"], refused["decision_id"]) == (
        str(meeting_id),
        decision["decision_id"],
    )
    assert (refused["kind"], refused["to_level"]) == ("move_to_level", 3)
    # As the person who recorded the decision, caused by it, in its correlation
    recorded = platform.events("meeting", meeting_id)[-1]
    assert recorded["type"] == "DecisionRecorded"
    assert refused["actor"] == msgspec.to_builtins(TEACHER)
    assert refused["causation_id"] == recorded["event_id"]
    assert refused["correlation_id"] == recorded["correlation_id"]
    read = platform.get("case", f"/cases/{case_id}", TEACHER)
    assert read.json()["case"]["level"] == 1

    # And the notify service tells the person who recorded it, with a reference and a link
    def refusals() -> list[Message]:
        return [m for m in mailbox.messages if REFUSED_HEADLINE in str(m["Subject"])]

    wait_until("the recorder is mailed", lambda: bool(refusals()))
    (mail,) = refusals()
    assert str(mail["X-Envelope-To"]) == f"{TEACHER.person}@stafett.localhost"
    body = mail.get_payload(decode=True)  # plain text, quoted-printable
    assert isinstance(body, bytes)
    assert f"/cases/{case_id}" in body.decode()
    assert refused["reason"] not in body.decode() + str(mail["Subject"])  # behind the link
    listed = platform.get("notify", "/notifications", TEACHER, case_id=str(case_id)).json()
    assert [
        (n["recipient"], n["reference"]) for n in listed if n["reason"] == "decision_refused"
    ] == [(TEACHER.person, f"STF-{case_id.hex[:8].upper()}")]
