"""Free text about a child is sealed at rest, and erasing the child erases it (DOMAIN.md rules 8
and 10; issue 16, item 1), across the five services, each in its own process as in production.

Given a child's case in which every piece of free text the platform takes (the concern, notes,
a conversation's summary, the child's view, reasons, a problem, a measure and its evaluation, a
referral's purpose, a report's grounds, a meeting's agenda, minutes, decision, action item and
feedback, a withdrawal's reason, a legal basis's justification) is a distinctive string, then
none of those strings stands anywhere on disk: not in the NATS store, the projection's database,
the services' logs or the mail outbox; yet every service shows them, opened, to a reader the
access rule admits. When an administrator erases the child, every reader gets "erased" for each
of them, and still none is found on disk.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest

from stafett_cli.outbox import Outbox
from stafett_contracts.identity import Actor, Role
from stafett_runtime.testing import a_child
from tests.platform import Platform

SCHOOL = "skole-lia"
TEACHER = Actor(person="laerer-1", role=Role.EMPLOYEE, service=SCHOOL)
HEADTEACHER = Actor(person="rektor-1", role=Role.UNIT_LEADER, service=SCHOOL)
MOTHER = Actor(person="mor-kari", role=Role.GUARDIAN)
PPT = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")
CHILD_WELFARE = Actor(person="bv-1", role=Role.EMPLOYEE, service="barnevern")
ADMINISTRATOR = Actor(person="admin-1", role=Role.ADMINISTRATOR)
KARI = a_child(MOTHER.person, born=date(2016, 5, 4), name="Kari Nordmann")
TOKEN = uuid4().hex[:12]  # what makes each written text findable, and found nowhere else


def secret(field: str) -> str:
    """The distinctive text written into one field."""
    return f"hemmelig-{field}-{TOKEN}"


class Written:
    """Every distinctive text the scenario wrote, by the field it was written into."""

    def __init__(self) -> None:
        self.texts: dict[str, str] = {}

    def __call__(self, field: str) -> str:
        self.texts[field] = secret(field)
        return self.texts[field]


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    outbox = Outbox(tmp_path / "mail")  # the development outbox: every mail as an .eml file
    outbox.start()
    running = Platform(
        tmp_path,
        env={
            "STAFETT_NOTIFY_SMTP_HOST": outbox.host,
            "STAFETT_NOTIFY_SMTP_PORT": str(outbox.port),
            "STAFETT_NOTIFY_INTERVAL": "1",
        },
    )
    running.register_child(KARI)
    try:
        running.start()
        yield running
    finally:
        running.stop()
        outbox.stop()


def wait_until(what: str, holds: Callable[[], Any], within: float = 60.0) -> Any:
    deadline = time.monotonic() + within
    while not (found := holds()):
        assert time.monotonic() < deadline, f"not within {within:.0f} s: {what}"
        time.sleep(0.2)
    return found


def found_on_disk(folder: Path, needles: list[str]) -> dict[str, list[str]]:
    """Which of `needles` stand in which file under `folder` (however deep), as UTF-8 bytes."""
    hits: dict[str, list[str]] = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        try:
            content = path.read_bytes()
        except FileNotFoundError:  # a temporary file, renamed since (nats-server's *.tmp)
            continue
        for needle in needles:
            if needle.encode() in content:
                hits.setdefault(needle, []).append(str(path.relative_to(folder)))
    return hits


def texts_in(value: Any) -> list[Any]:
    """Every string and every erased marker in a JSON answer, however deep."""
    match value:
        case {"erased": True, **_rest}:
            return [value]
        case dict():
            return [t for item in value.values() for t in texts_in(item)]
        case list():
            return [t for item in value for t in texts_in(item)]
        case str():
            return [value]
    return []


def test_free_text_sealed_every_text_is_sealed_at_rest_shown_to_readers_and_erased_with_the_child(
    platform: Platform,
) -> None:
    write = Written()
    case_id, meeting_ids = write_every_kind_of_free_text(platform, write)
    written = list(write.texts.values())

    # Then every reader the access rule admits reads each text, opened
    def shown() -> list[Any]:
        return answers(platform, case_id, meeting_ids)

    def shows_everything() -> bool:
        said = {t for t in texts_in(shown()) if isinstance(t, str)}
        return all(text in said for text in written)

    wait_until("the readers show every text written", shows_everything)

    # And none of them stands on disk: the store, the read models, the logs, the mail
    assert wait_until("a mail in the outbox", lambda: list((platform.data / "mail").glob("*")))
    for folder in ("nats", "projection"):  # the scan reads what is there: the case's id is
        assert found_on_disk(platform.data / folder, [str(case_id)]), folder
    assert found_on_disk(platform.data, written) == {}

    # When an administrator erases the child
    erased = platform.post(
        "case", f"/children/{KARI.child_id}/erase", ADMINISTRATOR, {"reason": "erasure_requested"}
    )
    assert erased.status_code == 200, erased.text

    # Then every reader gets "erased" for each text, never an error
    def erased_everywhere() -> bool:
        said = texts_in(shown())
        return not any(text in said for text in written)

    wait_until("no reader shows a text any longer", erased_everywhere)
    markers = [t for t in texts_in(shown()) if isinstance(t, dict)]
    assert len(markers) >= len(written)
    # And still none is found on disk
    assert found_on_disk(platform.data, written) == {}


def answers(platform: Platform, case_id: UUID, meeting_ids: list[str]) -> list[Any]:
    """What each service answers a reader of the case: the case, its meetings, its consents and
    legal bases, and the projection's relay log; each must answer 200."""
    reads = [
        platform.get("case", f"/cases/{case_id}", TEACHER),
        platform.get("consent", f"/cases/{case_id}/consents", TEACHER),
        platform.get("meeting", f"/cases/{case_id}/meetings", TEACHER),
        *(platform.get("meeting", f"/meetings/{m}", TEACHER) for m in meeting_ids),
        platform.get("projection", f"/cases/{case_id}/relay-log", TEACHER),
        platform.get("projection", f"/cases/{case_id}/relay-log", MOTHER),
    ]
    for answer in reads:
        assert answer.status_code == 200, f"{answer.url}: {answer.status_code} {answer.text}"
    return [answer.json() for answer in reads]


def write_every_kind_of_free_text(platform: Platform, write: Written) -> tuple[UUID, list[str]]:
    """A case taken through every command that takes free text about the child."""

    def ok(answer: Any) -> Any:
        assert answer.status_code in (200, 201), f"{answer.url}: {answer.status_code} {answer.text}"
        return answer.json()

    def act(actor: Actor, command: str, body: dict[str, Any] | None = None) -> None:
        ok(platform.post("case", f"/cases/{case_id}/{command}", actor, body or {}))

    def case_types() -> list[str]:
        return platform.event_types("case", case_id)

    # Given a teacher's concern, and the mother's consent to the school and PPT
    body = {"child_id": str(KARI.child_id), "concern": write("concern")}
    case_id = UUID(ok(platform.post("case", "/cases", TEACHER, body))["id"])
    consent_id = ok(
        platform.post(
            "consent",
            "/consents",
            MOTHER,
            {
                "case_id": str(case_id),
                "given_by": {"kind": "guardian", "person": MOTHER.person},
                "services": [SCHOOL, "ppt"],
                "purposes": ["cooperation", "referral"],
                "valid_from": datetime.now(UTC).isoformat(),
                "evidence": {
                    "form": "written",
                    "document_ref": "arkiv/2026/kari",
                    "document_sha256": hashlib.sha256(b"signert").hexdigest(),
                },
            },
        )
    )["id"]
    wait_until("the case notes the consent", lambda: "ConsentNoted" in case_types())

    # When the school works at level 0 and 1
    act(TEACHER, "share-concern", {"shared_with": HEADTEACHER.person, "note": write("note")})
    act(
        TEACHER,
        "record-wondering-conversation",
        {
            "held_on": date.today().isoformat(),
            "with_guardians": True,
            "with_child": False,
            "summary": write("summary"),
        },
    )
    act(TEACHER, "record-child-view", {"view": write("view")})
    act(TEACHER, "note-bright-spot", {"note": write("bright-spot")})
    act(HEADTEACHER, "appoint-baton-holder", {"holder": TEACHER.person, "service": SCHOOL})
    act(
        TEACHER,
        "escalate",
        {
            "to_level": 1,
            "reason": write("escalation-reason"),
            "participants": [MOTHER.person],
            "child_view": write("escalation-child-view"),
        },
    )
    act(TEACHER, "define-problem", {"description": write("problem"), "with_guardians": True})
    measure_id = str(uuid4())
    act(
        TEACHER,
        "plan-measure",
        {
            "measure_id": measure_id,
            "description": write("measure"),
            "responsible": TEACHER.person,
            "service": SCHOOL,
            "evaluation_date": (date.today() + timedelta(days=30)).isoformat(),
        },
    )
    act(
        TEACHER,
        "evaluate-measure",
        {"measure_id": measure_id, "outcome": "partly", "notes": write("evaluation")},
    )

    # And a meeting is held, decides, assigns a task and is given feedback; another is cancelled
    def roster_level() -> int | None:
        answer = platform.get("meeting", f"/cases/{case_id}/roster", TEACHER)
        return int(answer.json()["level"]) if answer.status_code == 200 else None

    wait_until("the meeting service knows the case at level 1", lambda: roster_level() == 1)
    starts = datetime.now(UTC) + timedelta(days=7)
    meeting = {
        "case_id": str(case_id),
        "meeting_type": "cooperation",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=1)).isoformat(),
        "place": "Lia skole, møterom 2",
        "agenda": [write("agenda")],
    }
    held_id = ok(platform.post("meeting", "/meetings", TEACHER, meeting))["id"]

    def at(meeting_id: str, command: str, body: dict[str, Any], actor: Actor = TEACHER) -> None:
        ok(platform.post("meeting", f"/meetings/{meeting_id}/{command}", actor, body))

    at(held_id, "invite", {"person": MOTHER.person, "kind": "guardian"})
    later = starts + timedelta(days=1)
    at(
        held_id,
        "reschedule",
        {
            "starts_at": later.isoformat(),
            "ends_at": (later + timedelta(hours=1)).isoformat(),
            "reason": write("reschedule-reason"),
        },
    )
    at(held_id, "record-held", {"attended": [TEACHER.person, MOTHER.person]})
    at(held_id, "record-minutes", {"minutes": write("minutes")})
    at(
        held_id,
        "record-decision",
        {
            "decision_id": str(uuid4()),
            "kind": "continue",
            "reason": write("decision-reason"),
            "child_view": write("decision-child-view"),
        },
    )
    item_id = str(uuid4())
    at(
        held_id,
        "assign-action-item",
        {
            "item_id": item_id,
            "description": write("action-item"),
            "owner": TEACHER.person,
            "owner_service": SCHOOL,
            "due_on": (date.today() + timedelta(days=14)).isoformat(),
        },
    )
    at(held_id, "complete-action-item", {"item_id": item_id, "note": write("action-item-note")})
    at(held_id, "give-feedback", {"rating": 4, "heard": 5, "comment": write("feedback")}, MOTHER)
    cancelled_id = ok(platform.post("meeting", "/meetings", TEACHER, meeting))["id"]
    at(cancelled_id, "cancel", {"reason": write("cancel-reason")})

    # And PPT is referred to, child welfare takes part under a legal basis, and a report is filed
    act(TEACHER, "send-referral", {"to_service": "ppt", "purpose": write("referral")})
    act(PPT, "join-agency", {"service": "ppt"})
    act(TEACHER, "escalate", {"to_level": 2, "reason": write("second-escalation")})
    act(
        TEACHER,
        "de-escalate",
        {"to_level": 1, "reason": write("de-escalation"), "child_view": write("de-view")},
    )
    act(PPT, "leave-agency", {"service": "ppt", "note": write("leave-note")})
    act(TEACHER, "request-individual-plan", {"requested_by_guardian": True, "note": write("plan")})
    act(HEADTEACHER, "propose-system-measure", {"description": write("system-measure")})
    act(
        TEACHER,
        "file-child-welfare-report",
        {"legal_basis": "barnevernsloven § 13-2", "grounds": write("grounds")},
    )
    ok(
        platform.post(
            "consent",
            "/legal-bases",
            CHILD_WELFARE,
            {
                "case_id": str(case_id),
                "service": "barnevern",
                "legal_basis": "barnevernsloven § 2-1",
                "justification": write("justification"),
            },
        )
    )
    ok(
        platform.post(
            "consent",
            f"/consents/{consent_id}/withdraw",
            MOTHER,
            {"services": ["ppt"], "reason": write("withdrawal-reason")},
        )
    )

    # And the case comes down, is closed, and is opened again
    act(TEACHER, "end-measure", {"measure_id": measure_id, "reason": write("end-reason")})
    act(
        HEADTEACHER,
        "close-case",
        {"reason": write("close-reason"), "child_view": write("close-child-view")},
    )
    act(HEADTEACHER, "reopen-case", {"reason": write("reopen-reason")})
    return case_id, [held_id, cancelled_id]
