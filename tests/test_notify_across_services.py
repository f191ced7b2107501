"""The notify service in its own process, told by the case service only through NATS.

Given the case and notify services running as in production, with a real SMTP server:
a concern raised tells the unit's leader, an appointed baton holder is told, each by one email;
and when the notify service is killed and started again, nothing is sent a second time.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from uuid import UUID, uuid4

import httpx
import pytest

from stafett_contracts.identity import Actor, Role
from stafett_notify.testing import ConsentStandIn, Mailbox, MeetingStandIn, smtp_server
from stafett_runtime.auth import DevelopmentKey
from stafett_runtime.testing import NatsTestServer
from tests.conftest import RunningService

UNIT = "skole-lia"
TEACHER = Actor(person="laerer-1", role=Role.EMPLOYEE, service=UNIT)
COLLEAGUE = Actor(person="laerer-2", role=Role.EMPLOYEE, service=UNIT)
LEADER = Actor(person="rektor-1", role=Role.UNIT_LEADER, service=UNIT)


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
    run_service: Callable[[str], RunningService],
    nats_server: NatsTestServer,
    smtp: tuple[Mailbox, int],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    mailbox, port = smtp
    directory = tmp_path / "directory.json"
    people = (TEACHER, COLLEAGUE, LEADER)
    directory.write_text(
        json.dumps(
            {
                "contacts": {a.person: {"email": f"{a.person}@example.org"} for a in people},
                "units": {UNIT: {"leader": LEADER.person}},
            }
        )
    )
    monkeypatch.setenv("STAFETT_NOTIFY_DIRECTORY", str(directory))
    monkeypatch.setenv("STAFETT_NOTIFY_SMTP_PORT", str(port))
    monkeypatch.setenv("STAFETT_NOTIFY_INTERVAL", "1")
    key = DevelopmentKey.load_or_create(tmp_path / "dev-signing-key.pem")  # the services' key

    def as_(actor: Actor) -> dict[str, str]:
        return {"Authorization": f"Bearer {key.mint(actor)}"}

    # The consent and meeting services' streams, as they would make them (no process needed)
    store = {"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": nats_server.url}
    for stand_in in (ConsentStandIn(store), MeetingStandIn(store)):
        stand_in.close()
    case = run_service("case")
    notify = run_service("notify")
    http = httpx.Client(timeout=10)

    # Given a concern raised, and the teacher appointed to hold the baton
    raised = http.post(
        f"{case.url}/cases",
        json={"child_id": str(uuid4()), "concern": "Kari Nordmann gråter ofte."},
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

    # When the notify service is killed and started again, and the baton is then offered on
    notify.process.kill()
    notify.process.wait()
    notify = run_service("notify")
    offered = http.post(
        f"{case.url}/cases/{case_id}/offer-baton",
        json={"to_person": COLLEAGUE.person, "to_service": UNIT},
        headers=as_(TEACHER),
    )
    assert offered.status_code == 201, offered.text

    # Then only the new email is sent: rounds run in order, so a repeat would have come first
    assert wait_for_mail(mailbox, 3) == [
        "laerer-1@example.org",
        "laerer-2@example.org",
        "rektor-1@example.org",
    ]
    listed = http.get(f"{notify.url}/notifications?case_id={case_id}", headers=as_(LEADER))
    assert [n["status"] for n in listed.json()] == ["sent", "sent", "sent"]
