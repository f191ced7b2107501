"""The notify service in its own process, told by the case and meeting services through NATS.

Given the case, meeting and notify services running as in production, with a real SMTP server:
a concern raised tells the unit's leader, an appointed baton holder is told, and a meeting
scheduled invites its leader and the invited guardian with a calendar invitation, each by one
email; and when the notify service is killed and started again, nothing is sent a second time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from uuid import UUID

import httpx
import pytest

from stafett_contracts.identity import Actor, Role
from stafett_notify.testing import Mailbox, calendar_in, smtp_server
from stafett_runtime.testing import a_child
from tests.platform import Platform

UNIT = "skole-lia"
TEACHER = Actor(person="laerer-1", role=Role.EMPLOYEE, service=UNIT)
COLLEAGUE = Actor(person="laerer-2", role=Role.EMPLOYEE, service=UNIT)
LEADER = Actor(person="rektor-1", role=Role.UNIT_LEADER, service=UNIT)
GUARDIAN = Actor(person="mor-1", role=Role.GUARDIAN)


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


def wait_for_mail(mailbox: Mailbox, count: int) -> list[str]:
    deadline = time.monotonic() + 30
    while len(mailbox.messages) < count:
        assert time.monotonic() < deadline, f"{len(mailbox.messages)} of {count} emails in 30 s"
        time.sleep(0.1)
    return sorted(str(m["X-Envelope-To"]) for m in mailbox.messages)


def test_the_notify_service_mails_once_even_when_killed_and_started_again(
    platform: Platform,
    smtp: tuple[Mailbox, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mailbox, port = smtp
    directory = tmp_path / "contacts.json"
    people = (TEACHER, COLLEAGUE, LEADER, GUARDIAN)
    directory.write_text(
        json.dumps(
            {
                "contacts": {a.person: {"email": f"{a.person}@example.org"} for a in people},
            }
        )
    )
    monkeypatch.setenv("STAFETT_NOTIFY_DIRECTORY", str(directory))
    monkeypatch.setenv("STAFETT_NOTIFY_SMTP_PORT", str(port))
    monkeypatch.setenv("STAFETT_NOTIFY_INTERVAL", "1")

    def as_(actor: Actor) -> dict[str, str]:
        return {"Authorization": f"Bearer {platform.key.mint(actor)}"}

    # The leader is the directory's (rektor-1 leads skole-lia in the test municipality)
    platform.start("consent", "case", "meeting", "notify")
    case, meeting = platform.services["case"], platform.services["meeting"]
    http = httpx.Client(timeout=10)
    child = a_child(GUARDIAN.person, name="Kari Nordmann")
    platform.register_child(child)

    # Given a concern raised, and the teacher appointed to hold the baton
    raised = http.post(
        f"{case.url}/cases",
        json={"child_id": str(child.child_id), "concern": "Kari Nordmann gråter ofte."},
        headers=as_(TEACHER),
    )
    assert raised.status_code == 201, raised.text
    case_id = UUID(raised.json()["id"])
    appointed = http.post(
        f"{case.url}/cases/{case_id}/appoint-baton-holder",
        json={"holder": TEACHER.person, "service": UNIT},
        headers=as_(LEADER),
    )
    assert appointed.status_code == 201, appointed.text

    # Then the leader and the holder are each mailed once
    assert wait_for_mail(mailbox, 2) == ["laerer-1@example.org", "rektor-1@example.org"]
    assert "Kari" not in "".join(m.as_string() for m in mailbox.messages)

    # When the baton holder calls a meeting (once the meeting service knows the case) and
    # invites a guardian
    starts = datetime.now(UTC).replace(microsecond=0) + timedelta(days=7)
    body = {
        "case_id": str(case_id),
        "meeting_type": "cooperation",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=1)).isoformat(),
        "place": "Hjemme hos familien",
    }
    deadline = time.monotonic() + 30
    while (
        called := http.post(f"{meeting.url}/meetings", json=body, headers=as_(TEACHER))
    ).status_code in (403, 404):
        assert time.monotonic() < deadline, called.text
        time.sleep(0.2)
    assert called.status_code == 201, called.text
    meeting_id = called.json()["id"]
    invited = http.post(
        f"{meeting.url}/meetings/{meeting_id}/invite",
        json={"person": GUARDIAN.person, "kind": "guardian"},
        headers=as_(TEACHER),
    )
    assert invited.status_code == 201, invited.text

    # Then the leader of the meeting and the guardian each get an invitation to it
    wait_for_mail(mailbox, 4)
    invitations = {str(m["X-Envelope-To"]): calendar_in(m) for m in mailbox.messages[2:]}
    assert set(invitations) == {"laerer-1@example.org", "mor-1@example.org"}
    for calendar in invitations.values():
        assert calendar is not None
        (event,) = calendar.walk("VEVENT")
        assert event.decoded("DTSTART") == starts

    # When the notify service is killed and started again, and the baton is then offered on
    platform.kill("notify")
    platform.start("notify")
    offered = http.post(
        f"{case.url}/cases/{case_id}/offer-baton",
        json={"to_person": COLLEAGUE.person, "to_service": UNIT},
        headers=as_(TEACHER),
    )
    assert offered.status_code == 201, offered.text

    # Then only the new email is sent: rounds run in order, so a repeat would have come first
    assert wait_for_mail(mailbox, 5) == [
        "laerer-1@example.org",
        "laerer-1@example.org",
        "laerer-2@example.org",
        "mor-1@example.org",
        "rektor-1@example.org",
    ]

    # And each of the five is recorded as sent (the record follows the mail by a moment)
    def statuses() -> list[str]:
        url = f"{platform.url('notify')}/notifications?case_id={case_id}"
        return [n["status"] for n in http.get(url, headers=as_(LEADER)).json()]

    deadline = time.monotonic() + 30
    while statuses() != ["sent"] * 5:
        assert time.monotonic() < deadline, statuses()
        time.sleep(0.2)
    assert "Hjemme" not in "".join(m.as_string() for m in mailbox.messages)
