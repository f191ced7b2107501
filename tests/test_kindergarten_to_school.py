"""One kindergarten case walked through its action guide, from a worry at level 0 to measures at
level 1 and a handover to school, across the consent, case and projection services (issue 18).

At each point the case shows the step of its guide it is at, who does it, and what comes next
(`stafett_contracts.guides.progress`, served by the case service and the projection alike). The
child's view is recorded beside the decisions. At the transition the school receives the
handover packet under the guardians' consent to the handover; afterwards the figures per unit
and month count the move up the staircase and the step the kindergarten skipped.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import uuid4
from zoneinfo import ZoneInfo

import httpx
import pytest

from stafett_contracts.identity import Actor, Role
from stafett_runtime.testing import a_child
from tests.platform import Platform

KINDERGARTEN = "barnehage-solsikke"  # led by styrer-1 in the test directory
SCHOOL = "skole-lia"  # led by rektor-1
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service=KINDERGARTEN)
HEAD = Actor(person="styrer-1", role=Role.UNIT_LEADER, service=KINDERGARTEN)
SCHOOL_TEACHER = Actor(person="laerer-1", role=Role.EMPLOYEE, service=SCHOOL)
GUARDIAN = Actor(person="mor-1", role=Role.GUARDIAN)
MEASURE = "Språkgruppe to ganger i uken"
CHILD_VIEW = "Jeg vil gjerne leke mer med de andre."


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """The platform, with figures for groups of one: suppression would hide this one case."""
    running = Platform(tmp_path, env={"STAFETT_PROJECTION_FIGURES_MIN_GROUP": "1"})
    try:
        yield running
    finally:
        running.stop()


def test_a_kindergarten_case_walks_its_guide_to_a_handover_to_school(platform: Platform) -> None:
    child = a_child(GUARDIAN.person)
    platform.register_child(child)
    platform.start("consent", "case", "projection")

    def post(service: str, path: str, actor: Actor, body: dict[str, Any]) -> Any:
        answer = platform.post(service, path, actor, body)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def until(read: Callable[[], httpx.Response], done: Callable[[httpx.Response], bool]) -> Any:
        deadline = time.monotonic() + 20
        while not done(answer := read()):
            assert time.monotonic() < deadline, f"not so in 20 s: {answer.text}"
            time.sleep(0.1)
        return answer.json()

    def consent(services: list[str], purposes: list[str]) -> str:
        given = post(
            "consent",
            "/consents",
            GUARDIAN,
            {
                "case_id": case_id,
                "given_by": {"kind": "guardian", "person": GUARDIAN.person},
                "services": services,
                "purposes": purposes,
                "valid_from": datetime.now(UTC).isoformat(),
                "evidence": {
                    "form": "written",
                    "document_ref": "arkiv/2026/77",
                    "document_sha256": hashlib.sha256(b"signert").hexdigest(),
                },
            },
        )
        return str(given["id"])

    version = 0

    def case(path: str, actor: Actor, body: dict[str, Any]) -> None:
        nonlocal version
        version = post("case", f"/cases/{case_id}/{path}", actor, body)["version"]

    def step(actor: Actor = TEACHER) -> dict[str, Any]:
        """Where the case is in its guide, as the case service shows it and as the projection
        shows it (once it has applied the case's newest event): the same."""
        served = platform.get("case", f"/cases/{case_id}", actor)
        assert served.status_code == 200, served.text
        shown = until(
            lambda: platform.get(
                "projection", f"/cases/{case_id}/relay-log", actor, min_version=version
            ),
            lambda a: a.status_code == 200,
        )
        guide: dict[str, Any] = served.json()["guide"]
        assert shown["guide"] == guide
        return guide

    def at(guide: dict[str, Any]) -> tuple[str, int, str, str]:
        current = guide["current"]
        return guide["service"], guide["level"], current["id"], current["who"]

    # Level 0: a worry (undring), shared, a wondering conversation, the decision.
    raised = post(
        "case", "/cases", TEACHER, {"child_id": str(child.child_id), "concern": "Leker alene."}
    )
    case_id, version = raised["id"], raised["version"]
    guide = step()
    assert guide["version"] == 1  # the guide Stafett ships: none was published
    assert at(guide) == ("kindergarten", 0, "share", "employee")
    assert [s["id"] for s in guide["next"]] == ["conversation", "decision"]
    assert guide["current"]["tools"] == ["wondering-note"]

    case("share-concern", TEACHER, {"shared_with": HEAD.person, "note": "Jeg undrer meg."})
    assert at(step()) == ("kindergarten", 0, "conversation", "baton_holder")

    case(
        "record-wondering-conversation",
        TEACHER,
        {
            "held_on": date.today().isoformat(),
            "with_guardians": True,
            "with_child": True,
            "summary": "Foreldrene kjenner seg igjen.",
        },
    )
    guide = step()
    assert at(guide) == ("kindergarten", 0, "decision", "unit_leader")
    assert [e["to"] for e in guide["current"]["exits"]] == ["close", "level-1", "system-measure"]

    # Consent is obtained at level 0; the head appoints the baton holder and decides, with the
    # child's view beside the decision.
    consent_id = consent([KINDERGARTEN], ["cooperation"])
    until(
        lambda: platform.get("case", f"/cases/{case_id}", HEAD),
        lambda a: bool(a.json()["case"]["consents"]),
    )
    case("appoint-baton-holder", HEAD, {"holder": TEACHER.person, "service": KINDERGARTEN})
    case(
        "escalate",
        HEAD,
        {"to_level": 1, "reason": "Reell bekymring", "child_view": CHILD_VIEW},
    )
    assert at(step()) == ("kindergarten", 1, "define-problem", "team")

    # Level 1: measures planned, carried out, evaluated (the problem never defined: skipped).
    measure_id = str(uuid4())
    case(
        "plan-measure",
        TEACHER,
        {
            "measure_id": measure_id,
            "description": MEASURE,
            "responsible": TEACHER.person,
            "service": KINDERGARTEN,
            "evaluation_date": (date.today() + timedelta(days=14)).isoformat(),
        },
    )
    guide = step()
    assert at(guide) == ("kindergarten", 1, "carry-out", "measure_owner")
    assert guide["skipped"] == ["define-problem"]
    case(
        "evaluate-measure",
        TEACHER,
        {"measure_id": measure_id, "outcome": "worked", "notes": "Snakker mer i gruppen."},
    )
    assert at(step()) == ("kindergarten", 1, "decision", "team")
    case("decide-level", TEACHER, {"reason": "Tiltaket virker", "child_view": CHILD_VIEW})
    assert at(step()) == ("kindergarten", 1, "define-problem", "team")  # a new round

    # The child's view stands beside the decisions in the relay log (opened for this reader).
    relay_log = until(
        lambda: platform.get("projection", f"/cases/{case_id}/relay-log", GUARDIAN),
        lambda a: a.status_code == 200,
    )
    heard = [e for e in relay_log["entries"] if e["event"].get("child_view")]
    assert [(e["type"], e["event"]["child_view"]) for e in heard] == [
        ("Escalated", CHILD_VIEW),
        ("LevelDecided", CHILD_VIEW),
    ]

    # The transition: the guardians consent to the handover to school (their consent's scope
    # widened); the school joins and accepts the baton. The case now follows the school's guide
    # (the version in force when it was opened), at the level it is at.
    post(
        "consent",
        f"/consents/{consent_id}/scope",
        GUARDIAN,
        {"services": [KINDERGARTEN, SCHOOL], "purposes": ["cooperation", "handover"]},
    )
    until(
        lambda: platform.get("case", f"/cases/{case_id}", HEAD),
        lambda a: SCHOOL in a.json()["case"]["consents"][consent_id]["services"],
    )
    case("join-agency", TEACHER, {"service": SCHOOL})
    case("offer-baton", TEACHER, {"to_person": SCHOOL_TEACHER.person, "to_service": SCHOOL})
    case("accept-baton", SCHOOL_TEACHER, {})
    guide = step(SCHOOL_TEACHER)
    assert (guide["service"], guide["version"]) == ("school", 1)
    assert at(guide) == ("school", 1, "define-problem", "team")

    # The packet the school receives: what was tried before it came in, and how it went.
    packet = until(
        lambda: platform.get("projection", f"/cases/{case_id}/handover-packet", SCHOOL_TEACHER),
        lambda a: a.status_code == 200,
    )
    assert [m["description"] for m in packet["measures_tried"]] == [MEASURE]
    assert packet["measures_tried"][0]["outcomes"][0]["outcome"] == "worked"
    assert packet["what_worked"] == [MEASURE]
    assert packet["state"]["level"] == 1
    assert packet["state"]["holder"] == SCHOOL_TEACHER.person

    # The figures per unit and month: the kindergarten's move up, and the step it skipped.
    figures = platform.get("projection", "/figures", HEAD, by="unit-month")
    assert figures.status_code == 200, figures.text
    month = datetime.now(ZoneInfo("Europe/Oslo")).strftime("%Y-%m")  # the figures' zone
    (kindergarten,) = [
        m for m in figures.json()["months"] if (m["unit"], m["month"]) == (KINDERGARTEN, month)
    ]
    assert kindergarten["concerns"] == 1
    assert kindergarten["escalations"]["0-1"] == 1
    assert kindergarten["steps_skipped"] == {"1:define-problem": 1}
    csv = platform.http.get(
        f"{platform.url('projection')}/figures",
        params={"by": "unit-month"},
        headers={
            "Authorization": f"Bearer {platform.token(HEAD)}",
            "Accept": "text/csv",
        },
    )
    assert "1:define-problem=1" in csv.text
