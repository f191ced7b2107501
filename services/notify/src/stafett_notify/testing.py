"""Test kit for the notify service: a real SMTP server (aiosmtpd), stand-ins for the upstream
services, a register file of the test's own, a clock the test drives, and the check that no
message leaks what the events say (rule 8). Units and their leaders are the test municipality's
(`stafett_runtime.testing.TEST_DIRECTORY`). Like `stafett_runtime.testing`, it ships with the
package so tests import it by name; services/notify/tests/conftest.py makes its fixtures
available."""

from __future__ import annotations

import email
import email.policy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import Message
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID, uuid4

import icalendar
import msgspec
import pytest
from aiosmtpd.controller import Controller

from stafett_contracts.audit import CaseAccessed
from stafett_contracts.envelope import Event
from stafett_contracts.identity import Actor, Role
from stafett_notify.application import Notifications
from stafett_notify.channels import EmailSender, Sender, WebhookSender, senders
from stafett_notify.config import Contact, ContactDirectory, NotifyConfig, Smtp
from stafett_notify.domain.delivery import DeliveryRules
from stafett_notify.policies import UPSTREAMS, NotifyPolicy
from stafett_runtime.accesslog import AUDIT
from stafett_runtime.contracts import CONTRACT_ENV, ContractApplication
from stafett_runtime.directory import DirectorySource, FixedDirectory
from stafett_runtime.natsserver import free_port
from stafett_runtime.processing import ProcessingLoop, Upstream
from stafett_runtime.register import FileRegister, Register
from stafett_runtime.testing import TEST_DIRECTORY, NatsTestServer

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
UNIT = "skole-lia"
LEADER = "rektor-1"  # the leader of skole-lia in the test municipality (TEST_DIRECTORY)
MUNICIPALITY = FixedDirectory(TEST_DIRECTORY)  # the default deadlines (people.Deadlines)


def with_deadlines(**days: Any) -> FixedDirectory:
    """The test municipality with these of its deadlines set otherwise (people.Deadlines)."""
    deadlines = msgspec.structs.replace(TEST_DIRECTORY.deadlines, **days)
    return FixedDirectory(msgspec.structs.replace(TEST_DIRECTORY, deadlines=deadlines))


TEACHER = "laerer-1"
CHILD_NAME = "Kari Nordmann"
TEACHER_ACTOR = Actor(person=TEACHER, role=Role.EMPLOYEE, service=UNIT)

# Free text an event may carry about the child: none of it may reach a message (rule 8).
FREE_TEXT = {
    "concern", "description", "summary", "view", "note", "notes", "reason", "minutes",
    "agenda", "comment", "purpose", "grounds", "justification", "place",
}  # fmt: skip


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Mailbox:
    """What the SMTP server received, one parsed message per recipient."""

    messages: list[Message] = field(default_factory=list)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd's name)
        for recipient in envelope.rcpt_tos:
            parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
            parsed["X-Envelope-To"] = recipient
            self.messages.append(parsed)
        return "250 OK"

    def to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["X-Envelope-To"] == address]


@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server() as server:
        yield server


@contextmanager
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    """A real SMTP server on a free port, and the mailbox it delivers to."""
    mailbox = Mailbox()
    port = free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox, port
    finally:
        controller.stop()


def address(person: str) -> str:
    return f"{person}@example.org"


def make_config(
    smtp_port: int, people: tuple[str, ...], contacts: dict[str, Contact] | None = None
) -> NotifyConfig:
    return NotifyConfig(
        contacts=ContactDirectory(
            contacts={**{p: Contact(email=address(p)) for p in people}, **(contacts or {})}
        ),
        smtp=Smtp(host="127.0.0.1", port=smtp_port),
        link_base="https://stafett.example",
        delivery=DeliveryRules(
            max_attempts=3, backoff=timedelta(minutes=1), attempt_timeout=timedelta(minutes=2)
        ),
        interval=1.0,
    )


class CaseStandIn(ContractApplication):
    name = "case"


class ConsentStandIn(ContractApplication):
    name = "consent"


class MeetingStandIn(ContractApplication):
    name = "meeting"


@dataclass
class Upstreams:
    case: CaseStandIn
    consent: ConsentStandIn
    meeting: MeetingStandIn
    written: list[Event] = field(default_factory=list)

    def save(self, *events: Event) -> None:
        for event in events:
            app = {"case": self.case, "consent": self.consent, "meeting": self.meeting}
            app[event.CONTEXT].save(event)
            self.written.append(event)


@pytest.fixture
def env(nats_server: NatsTestServer) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": nats_server.url}


@pytest.fixture
def upstreams(env: dict[str, str]) -> Iterator[Upstreams]:
    apps = Upstreams(CaseStandIn(env), ConsentStandIn(env), MeetingStandIn(env))
    yield apps
    for app in (apps.case, apps.consent, apps.meeting):
        app.close()


@pytest.fixture
def register(tmp_path: Path) -> FileRegister:
    """The population register, as a file of this test's own: add the children it knows."""
    return FileRegister(tmp_path / "register.json")


def run_policies(
    env: dict[str, str],
    config: NotifyConfig,
    register: Register,
    directory: DirectorySource = MUNICIPALITY,
) -> None:
    """Run the policy over each upstream until it has processed every event, then stop it."""
    for name in UPSTREAMS:
        loop = ProcessingLoop(
            NotifyPolicy(env, config, register, directory),
            Upstream.named(name, {**env, **CONTRACT_ENV}),
        )
        loop.start()
        try:
            deadline = time.monotonic() + 10
            while loop.lag() > 0 and time.monotonic() < deadline and loop.error is None:
                time.sleep(0.02)
            assert loop.error is None
            assert loop.lag() == 0
        finally:
            loop.stop()
            loop.process.close()
            loop.upstream.close()


def notifications(
    env: dict[str, str],
    config: NotifyConfig,
    clock: Clock,
    email_sender: Sender | None = None,
    directory: DirectorySource = MUNICIPALITY,
) -> Notifications:
    webhook = WebhookSender(config.contacts.webhook_secrets())
    channels = senders(email_sender or EmailSender(config.smtp, clock), webhook)
    return Notifications(env, config, channels, directory, clock)


class Envelopes:
    """Envelopes for upstream events: each aggregate's versions counted for the test."""

    def __init__(self) -> None:
        self.versions: dict[UUID, int] = {}

    def __call__(
        self, aggregate_id: UUID, at: datetime, actor: Actor = TEACHER_ACTOR
    ) -> dict[str, Any]:
        version = self.versions.get(aggregate_id, 0) + 1
        self.versions[aggregate_id] = version
        return {
            "event_id": uuid4(),
            "aggregate_id": aggregate_id,
            "aggregate_version": version,
            "occurred_at": at,
            "actor": actor,
            "correlation_id": f"req-{aggregate_id.hex[:6]}-{version}",
        }


@pytest.fixture
def envelope() -> Envelopes:
    return Envelopes()


def texts_of(message: Message) -> list[str]:
    """Every text part of a message, the .ics included, decoded."""
    parts = message.walk() if message.is_multipart() else [message]
    found = [str(message["Subject"])]
    for part in parts:
        if part.get_content_maintype() == "text":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            found.append(payload.decode())
    return found


def personal_data_in(events: list[Event]) -> set[str]:
    """The child's id, and every free text, that the events carry."""
    found: set[str] = {CHILD_NAME}
    for event in events:
        fields = msgspec.structs.asdict(event)
        for name, value in fields.items():
            if name == "child_id":
                found.add(str(value))
            if name in FREE_TEXT and isinstance(value, str):
                found.add(value)
            if name in FREE_TEXT and isinstance(value, tuple):
                found.update(v for v in value if isinstance(v, str))
    return found


def assert_no_personal_data(messages: list[Message], events: list[Event]) -> None:
    sensitive = personal_data_in(events)
    assert messages, "no message to check"
    for message in messages:
        for text in texts_of(message):
            leaked = {s for s in sensitive if s in text or s.replace(" ", "") in text}
            assert not leaked, f"a message carries personal data: {leaked}"


E = TypeVar("E", bound=Event)


def notify_events(app: Notifications) -> list[Event]:
    """Every event in the NOTIFY stream, in order."""
    found = app.recorder.select_notifications(1, 10_000)
    return [e for e in map(app.mapper.to_domain_event, found) if isinstance(e, Event)]


def of_type(events: list[Event], kind: type[E]) -> list[E]:
    return [e for e in events if isinstance(e, kind)]


def case_accesses(env: dict[str, str]) -> list[CaseAccessed]:
    """Every read of case data, and every refusal, recorded on the AUDIT stream, in order."""
    audit = Upstream.named(AUDIT.prefix, {**env, **CONTRACT_ENV})
    try:
        found = audit.recorder.select_notifications(1, 10_000)
        events = [audit.mapper.to_domain_event(f) for f in found]
        return [e for e in events if isinstance(e, CaseAccessed)]
    finally:
        audit.close()


def calendar_in(message: Message) -> icalendar.Calendar | None:
    """The message's .ics invitation, parsed, if it has one."""
    for part in message.walk():
        if part.get_content_type() == "text/calendar":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            return icalendar.Calendar.from_ical(payload)
    return None
