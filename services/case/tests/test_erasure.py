"""Erasing a child, and the retention timer that erases when the period ends (DOMAIN.md rules 8
and 10), over HTTP against a real nats-server: who may, what is recorded, and what readers see.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import msgspec
import nats
import pytest
from litestar import Litestar
from litestar.testing import TestClient

from stafett_case.api import create_app
from stafett_case.application import Cases
from stafett_case.children import Children
from stafett_case.retention import RetentionTimer
from stafett_contracts.audit import ArchiveDelivered
from stafett_contracts.envelope import topic_of
from stafett_contracts.identity import Actor, Role
from stafett_contracts.people import RegisteredChild, Retention
from stafett_runtime.auth import DevelopmentKey
from stafett_runtime.jetstream.layout import MESSAGE_ID, ORIGINATOR_VERSION, TOPIC
from stafett_runtime.kernel import Kernel
from stafett_runtime.register import FileRegister
from stafett_runtime.testing import TEST_DIRECTORY, NatsTestServer, a_child, kernel_for_tests

UNIT = "barnehage-solsikke"
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service=UNIT)
LEADER = Actor(person="styrer-1", role=Role.UNIT_LEADER, service=UNIT)
MOTHER = Actor(person="mor-1", role=Role.GUARDIAN)
ADMINISTRATOR = Actor(person="admin-1", role=Role.ADMINISTRATOR)
AUDITOR = Actor(person="tilsyn-1", role=Role.AUDITOR)
REQUESTED = {"reason": "erasure_requested", "reference": "2025/1234"}
# Cases are kept no time at all once archived: the timer shreds at its next round.
AT_ONCE = msgspec.structs.replace(TEST_DIRECTORY, retention=Retention(closed_case_years=0))


class Http:
    def __init__(self, client: TestClient[Litestar], key: DevelopmentKey, register: FileRegister):
        self.client = client
        self.key = key
        self.register = register

    def post(self, actor: Actor, path: str, body: dict[str, Any]) -> Any:
        return self.client.post(path, json=body, headers=self._auth(actor))

    def get(self, actor: Actor, path: str, **params: str) -> Any:
        return self.client.get(path, params=params, headers=self._auth(actor))

    def _auth(self, actor: Actor) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key.mint(actor)}"}

    def child(self) -> RegisteredChild:
        child = a_child(MOTHER.person, name="Kari Nordmann")
        self.register.add(child)
        return child

    def raise_concern(self, child: RegisteredChild) -> UUID:
        body = {"child_id": str(child.child_id), "concern": "Trekker seg unna i lek."}
        answer = self.post(TEACHER, "/cases", body)
        assert answer.status_code == 201, answer.text
        return UUID(answer.json()["id"])

    def close(self, case_id: UUID) -> None:
        answer = self.post(LEADER, f"/cases/{case_id}/close-case", {"reason": "Det går bra nå."})
        assert answer.status_code == 201, answer.text

    def reopen(self, case_id: UUID) -> None:
        answer = self.post(LEADER, f"/cases/{case_id}/reopen-case", {"reason": "Ny bekymring."})
        assert answer.status_code == 201, answer.text

    def erase(self, actor: Actor, child_id: UUID, body: dict[str, Any] = REQUESTED) -> Any:
        return self.post(actor, f"/children/{child_id}/erase", body)


@pytest.fixture
def cases(nats_server: NatsTestServer) -> Iterator[Cases]:
    app = Cases({"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": nats_server.url})
    yield app
    app.close()


@pytest.fixture
def children(cases: Cases) -> Iterator[Children]:
    found = Children(cases)
    yield found
    found.close()


@pytest.fixture
def kernel(nats_server: NatsTestServer, tmp_path: Path) -> Kernel:
    key = DevelopmentKey.load_or_create(tmp_path / "key.pem")
    register = FileRegister(tmp_path / "register.json")
    return kernel_for_tests(
        "case", nats_server.url, key=key, register=register, directory=AT_ONCE, child_keys="seal"
    )


@pytest.fixture
def http(cases: Cases, children: Children, kernel: Kernel, tmp_path: Path) -> Iterator[Http]:
    key = DevelopmentKey.load_or_create(tmp_path / "key.pem")
    with TestClient(create_app(cases, kernel, children=children)) as client:
        register = kernel.register
        assert isinstance(register, FileRegister)  # the one kernel_for_tests was given
        yield Http(client, key, register)


def last_sequence(url: str, stream: str = "CASE") -> int:
    async def read() -> int:
        nc = await nats.connect(url)
        try:
            return int((await nc.jetstream().stream_info(stream)).state.last_seq)
        finally:
            await nc.close()

    return asyncio.run(read())


def case_stream(url: str) -> list[dict[str, Any]]:
    async def read() -> list[dict[str, Any]]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            last = (await js.stream_info("CASE")).state.last_seq
            found = [await js.get_msg("CASE", seq) for seq in range(1, last + 1)]
            return [msgspec.json.decode(m.data or b"{}") for m in found]
        finally:
            await nc.close()

    return asyncio.run(read())


def archived(url: str, case_id: UUID, child: RegisteredChild, case_version: int) -> None:
    """The projection's record that the case, as of `case_version`, went to the archive."""
    event_id = uuid4()
    event = ArchiveDelivered(
        event_id=event_id,
        aggregate_id=event_id,
        aggregate_version=1,
        occurred_at=datetime.now(UTC),
        actor=Actor(person="archive-delivery", role=Role.SYSTEM, service="projection"),
        correlation_id=uuid4().hex,
        case_id=case_id,
        case_version=case_version,
        child_id=child.child_id,
        archive="folder",
        sha256="0" * 64,
    )
    topic = topic_of(ArchiveDelivered)
    headers = {TOPIC: topic, ORIGINATOR_VERSION: "1", MESSAGE_ID: str(event_id)}

    async def publish() -> None:
        nc = await nats.connect(url)
        try:
            subject = f"audit.events.{event_id}.ArchiveDelivered"
            await nc.jetstream().publish(subject, msgspec.json.encode(event), headers=headers)
        finally:
            await nc.close()

    asyncio.run(publish())


def a_round(timer: RetentionTimer, http: Http) -> None:
    """One round of the timer, on the app's own loop, as the service runs it."""
    portal = http.client.blocking_portal
    assert portal is not None
    portal.call(timer.round)


# Who may erase, and what an unknown child is


def test_given_a_case_worker_when_they_erase_a_child_then_403_before_anything_is_said(
    http: Http, nats_server: NatsTestServer
) -> None:
    """Rule administrator-erases: the answer is the same whether a case names the child."""
    known = http.child()
    http.raise_concern(known)
    before = last_sequence(nats_server.url)

    for child_id in (known.child_id, uuid4()):
        for actor in (TEACHER, LEADER, MOTHER, AUDITOR):
            answer = http.erase(actor, child_id)
            assert answer.status_code == 403, answer.text
            assert answer.json()["extra"] == {"rule": "administrator-erases"}
    assert last_sequence(nats_server.url) == before


def test_given_no_case_names_the_child_when_an_administrator_erases_it_then_404(
    http: Http, nats_server: NatsTestServer
) -> None:
    http.raise_concern(http.child())
    before = last_sequence(nats_server.url)

    answer = http.erase(ADMINISTRATOR, uuid4())

    assert answer.status_code == 404, answer.text
    assert last_sequence(nats_server.url) == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"reason": "Kari's mother asked"}, "reason"),
        ({}, "reason"),
        ({"reason": "erasure_requested", "reference": "asked by Kari"}, "reference"),
    ],
)
def test_given_a_reason_outside_the_vocabulary_then_422_naming_the_field(
    http: Http, nats_server: NatsTestServer, body: dict[str, Any], field: str
) -> None:
    child = http.child()
    http.raise_concern(child)
    before = last_sequence(nats_server.url)

    answer = http.erase(ADMINISTRATOR, child.child_id, body)

    assert answer.status_code == 422, answer.text
    assert field in answer.text
    assert last_sequence(nats_server.url) == before


# Erasing


def test_an_erasure_is_recorded_without_personal_data_and_readers_see_erased(
    http: Http, nats_server: NatsTestServer
) -> None:
    child = http.child()
    case_id = http.raise_concern(child)

    answer = http.erase(ADMINISTRATOR, child.child_id)

    assert answer.status_code == 200, answer.text
    assert answer.json() == {
        "child_id": str(child.child_id),
        "version": 1,
        "already_erased": False,
    }
    (erased,) = [e for e in case_stream(nats_server.url) if e["type"] == "ChildErased"]
    assert erased["aggregate_id"] == str(child.child_id)
    assert erased["reason"] == "erasure_requested"
    assert erased["reference"] == "2025/1234"
    assert erased["cases"] == [str(case_id)]
    assert erased["actor"]["person"] == ADMINISTRATOR.person
    assert child.name not in str(erased)
    assert child.national_id not in str(erased)
    read = http.get(MOTHER, f"/cases/{case_id}").json()
    assert read["erased"]["erased"] is True
    assert "personal_data" not in read or read["personal_data"] is None
    # No new case for the child can seal its data again: the key stays erased.
    refused = http.post(TEACHER, "/cases", {"child_id": str(child.child_id), "concern": "Igjen."})
    assert refused.status_code == 409
    assert refused.json()["extra"]["rule"] == "erased-child-stays-erased"


def test_given_an_erased_child_when_it_is_erased_again_then_200_and_nothing_new(
    http: Http, nats_server: NatsTestServer
) -> None:
    child = http.child()
    http.raise_concern(child)
    assert http.erase(ADMINISTRATOR, child.child_id).status_code == 200
    before = last_sequence(nats_server.url)

    again = http.erase(ADMINISTRATOR, child.child_id, {"reason": "registered_in_error"})

    assert again.status_code == 200, again.text
    assert again.json()["already_erased"] is True
    assert last_sequence(nats_server.url) == before


# Retention (the directory keeps closed cases 0 years: due as soon as they are archived)


def test_given_a_closed_case_not_yet_archived_then_the_timer_waits_and_shreds_once_it_is(
    http: Http, children: Children, kernel: Kernel, nats_server: NatsTestServer
) -> None:
    child = http.child()
    case_id = http.raise_concern(child)
    http.close(case_id)
    timer = RetentionTimer(children, kernel.directory, kernel.erase, interval=60)

    a_round(timer, http)
    (waiting,) = children.schedule(AT_ONCE.retention)
    assert waiting.awaiting_archive == (case_id,)
    assert not [e for e in case_stream(nats_server.url) if e["type"] == "ChildErased"]

    archived(nats_server.url, case_id, child, case_version=2)
    a_round(timer, http)

    (erased,) = [e for e in case_stream(nats_server.url) if e["type"] == "ChildErased"]
    assert erased["reason"] == "retention_period_ended"
    assert erased["actor"] == {"person": "retention-timer", "role": "system", "service": "case"}
    assert http.get(MOTHER, f"/cases/{case_id}").json()["erased"]["erased"] is True
    assert children.schedule(AT_ONCE.retention) == []


def test_given_a_reopened_case_or_another_open_case_then_the_child_is_not_shredded(
    http: Http, children: Children, kernel: Kernel, nats_server: NatsTestServer
) -> None:
    reopened, with_another = http.child(), http.child()
    first = http.raise_concern(reopened)
    http.close(first)
    archived(nats_server.url, first, reopened, case_version=2)
    http.reopen(first)
    closed = http.raise_concern(with_another)
    http.raise_concern(with_another)  # still open
    http.close(closed)
    archived(nats_server.url, closed, with_another, case_version=2)
    timer = RetentionTimer(children, kernel.directory, kernel.erase, interval=60)

    a_round(timer, http)

    assert not [e for e in case_stream(nats_server.url) if e["type"] == "ChildErased"]
    for case_id in (first, closed):
        read = http.get(MOTHER, f"/cases/{case_id}").json()
        assert read["personal_data"]["name"] == "Kari Nordmann"
        assert read.get("erased") is None
    assert children.schedule(AT_ONCE.retention) == []


def test_given_a_period_of_years_then_the_child_is_due_that_long_after_the_last_case_closed(
    http: Http, children: Children, nats_server: NatsTestServer
) -> None:
    child = http.child()
    case_id = http.raise_concern(child)
    http.close(case_id)
    archived(nats_server.url, case_id, child, case_version=2)
    keep = Retention(closed_case_years=5)

    (due,) = children.schedule(keep)

    closed_at = datetime.fromisoformat(
        next(e for e in case_stream(nats_server.url) if e["type"] == "CaseClosed")["occurred_at"]
    )
    assert due.due_at == closed_at.replace(year=closed_at.year + 5)
    assert not due.due(closed_at + timedelta(days=5 * 365))  # a leap day short of it
    assert due.due(due.due_at)
