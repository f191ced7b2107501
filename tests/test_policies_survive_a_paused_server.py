"""Every policy processes again by itself after nats-server was paused, and nothing is lost or
done twice.

Given the consent, case, meeting and notify services as their own processes, under their own
NATS users, with concerns and consents flowing from a thread: when nats-server is frozen
(SIGSTOP) for 15 s and then goes on (SIGCONT), then within 15 s every service is ready again and
every policy (the case's consent and meeting policies, notify's case, consent and meeting
policies) says it is processing with nothing behind, a new case's commands reach every
follower, every accepted command's events are in its stream once, and every upstream event had
its effect once.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import httpx
import msgspec
import pytest
from eventsourcing.utils import Environment

from stafett_contracts.identity import Actor, Role
from stafett_notify.testing import Mailbox, smtp_server
from stafett_runtime.jetstream import JetStreamFactory
from stafett_runtime.testing import a_child
from tests.platform import Platform

PAUSE = 15.0  # seconds nats-server is frozen
RECOVERY = 15.0  # seconds every policy has, from the server's return, to be processing again
SERVICES = ("consent", "case", "meeting", "notify")
POLICIES = {
    "case": ("consent-policy", "meeting-policy"),
    "notify": ("case-policy", "consent-policy", "meeting-policy"),
}
KINDERGARTEN = "barnehage-solsikke"  # led by styrer-1 in the test municipality
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service=KINDERGARTEN)
LEADER = Actor(person="styrer-1", role=Role.UNIT_LEADER, service=KINDERGARTEN)
GUARDIAN = Actor(person="forelder-1", role=Role.GUARDIAN)


def wait_until(what: str, holds: Callable[[], bool], deadline: float) -> None:
    while not holds():
        assert time.monotonic() < deadline, f"not in time: {what}"
        time.sleep(0.1)


def consent_for(case_id: UUID) -> dict[str, Any]:
    return {
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
    }


class Commands:
    """Concerns, each followed by its consent, posted one after another from a thread."""

    def __init__(self, platform: Platform, child_id: UUID) -> None:
        self.platform = platform
        self.child_id = child_id
        self.cases: list[UUID] = []  # accepted (201)
        self.consents: list[UUID] = []
        self.answers: Counter[int | str] = Counter()
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="commands")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stopping.is_set():
            body = {"child_id": str(self.child_id), "concern": "Trekker seg unna i lek."}
            case_id = self._post("case", "/cases", TEACHER, body)
            if case_id is None:
                self._stopping.wait(0.2)
                continue
            self.cases.append(case_id)
            consent_id = self._post("consent", "/consents", GUARDIAN, consent_for(case_id))
            if consent_id is not None:
                self.consents.append(consent_id)

    def _post(self, service: str, path: str, actor: Actor, body: dict[str, Any]) -> UUID | None:
        try:
            answer = self.platform.post(service, path, actor, body)
        except httpx.HTTPError as error:
            self.answers[type(error).__name__] += 1
            return None
        self.answers[answer.status_code] += 1
        return UUID(answer.json()["id"]) if answer.status_code == 201 else None


def stream(platform: Platform, application: str) -> list[dict[str, Any]]:
    """Every event of a service's stream, in order, as the operator reads it."""
    env = Environment(application, {**platform.admin_env(), "CREATE_TABLE": "no"})
    factory = JetStreamFactory(env)
    try:
        found = factory.application_recorder().select_notifications(1, 1_000_000)
        return [msgspec.json.decode(n.state) for n in found]
    finally:
        factory.close()


def recovered(platform: Platform) -> bool:
    """Whether every service is ready (its NATS connection up again: consent has no policy to
    tell it) and every policy says it is processing, with nothing behind and nothing parked."""
    for service in SERVICES:
        try:
            answer = httpx.get(f"{platform.url(service)}/health/ready", timeout=2)
        except httpx.HTTPError:
            return False
        checks = answer.json()["checks"]
        names = POLICIES.get(service, ())
        if answer.status_code != 200 or any(checks[n]["detail"] != "processing" for n in names):
            return False
    return True


@pytest.fixture
def smtp(monkeypatch: pytest.MonkeyPatch) -> Iterator[Mailbox]:
    with smtp_server() as (mailbox, port):
        monkeypatch.setenv("STAFETT_NOTIFY_SMTP_PORT", str(port))
        yield mailbox


def test_every_policy_processes_again_after_the_server_was_paused(
    platform: Platform, smtp: Mailbox
) -> None:
    platform.start("consent", "case", "meeting", "notify")
    child = a_child(GUARDIAN.person)
    platform.register_child(child)

    # Given concerns and consents flowing from a thread
    commands = Commands(platform, child.child_id)
    commands.start()
    try:
        wait_until("a few commands", lambda: len(commands.consents) >= 3, time.monotonic() + 30)

        # When nats-server is frozen for 15 s while they flow, and then goes on
        platform.nats.pause()
        time.sleep(PAUSE)
        platform.nats.resume()
        resumed = time.monotonic()
    finally:
        commands.stop()

    # Then within 15 s every service is ready and every policy processing, nothing behind
    wait_until(
        "every service ready, every policy processing, nothing behind",
        lambda: recovered(platform),
        resumed + RECOVERY,
    )
    assert commands.answers[201] >= 6, commands.answers

    # And a new case's commands reach every follower
    case_id = a_case_decided_in_a_meeting(platform, child.child_id)

    # And every accepted command's events are in its stream once
    case_events, consent_events = stream(platform, "case"), stream(platform, "consent")
    meeting_events, notify_events = stream(platform, "meeting"), stream(platform, "notify")
    raised = Counter(UUID(e["aggregate_id"]) for e in case_events if e["type"] == "ConcernRaised")
    given = Counter(UUID(e["aggregate_id"]) for e in consent_events if e["type"] == "ConsentGiven")
    assert all(raised[case] == 1 for case in [*commands.cases, case_id])
    assert all(given[consent] == 1 for consent in commands.consents)

    # And every upstream event had its effect once: each concern's unit leader asked to be told,
    # each consent noted on its case, nothing parked
    def caused_by(events: list[dict[str, Any]], kind: str) -> Counter[str]:
        return Counter(e["causation_id"] for e in events if e["type"] == kind)

    noted = caused_by(case_events, "ConsentNoted")
    told = Counter(e["trigger"] for e in notify_events if e["type"] == "NotificationRequested")
    for concern in (e for e in case_events if e["type"] == "ConcernRaised"):
        assert told[concern["event_id"]] == 1
    for consent in (e for e in consent_events if e["type"] == "ConsentGiven"):
        assert noted[consent["event_id"]] == 1
    assert max(noted.values()) == max(told.values()) == 1
    everything = case_events + meeting_events + notify_events
    assert [e for e in everything if e["type"] == "ProcessingParked"] == []


def a_case_decided_in_a_meeting(platform: Platform, child_id: UUID) -> UUID:
    """A concern, a consent, a baton holder, level 1, and a meeting that decides level 2: each
    step needs a policy of another service to have done its part."""
    deadline = time.monotonic() + 30

    def post(service: str, path: str, actor: Actor, body: dict[str, Any]) -> UUID:
        answer = platform.post(service, path, actor, body)
        assert answer.status_code == 201, f"{service} {path}: {answer.text}"
        return UUID(answer.json()["id"])

    def case_types() -> list[str]:
        return platform.event_types("case", case_id)

    def roster_level() -> int | None:
        answer = platform.get("meeting", f"/cases/{case_id}/roster", TEACHER)
        return answer.json()["level"] if answer.status_code == 200 else None

    body = {"child_id": str(child_id), "concern": "Trekker seg unna i lek over flere uker."}
    case_id = post("case", "/cases", TEACHER, body)
    post("consent", "/consents", GUARDIAN, consent_for(case_id))
    wait_until("the case notes the consent", lambda: "ConsentNoted" in case_types(), deadline)
    path = f"/cases/{case_id}"
    appoint = {"holder": TEACHER.person, "service": KINDERGARTEN}
    post("case", f"{path}/appoint-baton-holder", LEADER, appoint)
    post("case", f"{path}/escalate", TEACHER, {"to_level": 1, "reason": "Tiltak i barnehagen."})
    wait_until("the roster knows level 1", lambda: roster_level() == 1, deadline)
    starts = datetime.now(UTC) + timedelta(days=1)
    meeting = {
        "case_id": str(case_id),
        "meeting_type": "cooperation",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=1)).isoformat(),
        "video_link": "https://video.example/rom/42",
    }
    meeting_id = post("meeting", "/meetings", TEACHER, meeting)
    path = f"/meetings/{meeting_id}"
    post("meeting", f"{path}/invite", TEACHER, {"person": GUARDIAN.person, "kind": "guardian"})
    post("meeting", f"{path}/record-held", TEACHER, {"attended": [TEACHER.person]})
    decision = {
        "decision_id": str(uuid4()),
        "kind": "move_to_level",
        "to_level": 2,
        "reason": "PPT utreder språket sammen med barnehagen.",
    }
    post("meeting", f"{path}/record-decision", TEACHER, decision)
    wait_until(
        "the case carries out the meeting's decision",
        lambda: case_types().count("Escalated") == 2,
        deadline,
    )
    wait_until("the roster knows level 2", lambda: roster_level() == 2, deadline)

    def invited() -> set[str]:
        return {
            e["recipient"]
            for e in stream(platform, "notify")
            if e["type"] == "NotificationRequested" and e.get("case_id") == str(case_id)
        }

    wait_until(
        "notify asks to tell the unit leader, the baton holder and the invited guardian",
        lambda: {LEADER.person, TEACHER.person, GUARDIAN.person} <= invited(),
        deadline,
    )
    return case_id
