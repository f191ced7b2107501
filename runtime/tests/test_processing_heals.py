"""Processing never stops for good: an event it cannot handle is parked, and a loop whose store
goes away resumes by itself.

Given a service whose policy notes every consent on a case of its own, when handling one consent
fails again and again, then that consent is parked (recorded with its tracking, in one write),
the next consents are noted, the service says it is degraded but takes traffic, and after the
fix an administrator's retry notes the parked consent exactly once. And when nats-server stops
under a loop and comes back on the same store, the loop resumes from its tracked position:
nothing lost, nothing counted twice.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4, uuid5

import msgspec
import pytest
from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import OperationalError
from litestar import Litestar
from litestar.testing import TestClient

from example_apps import Orders, Tallies, all_counted
from stafett_contracts.case import ConsentNoted
from stafett_contracts.consent import ConsentGiven
from stafett_contracts.envelope import Event
from stafett_contracts.export import example_of
from stafett_contracts.identity import Actor, Role
from stafett_contracts.processing import ParkedEventRetried, ProcessingParked, parked_id
from stafett_runtime.auth import DevelopmentKey, TokenVerifier
from stafett_runtime.contracts import CONTRACT_ENV, ContractApplication, ContractProcessApplication
from stafett_runtime.follower import Follower
from stafett_runtime.health import Readiness
from stafett_runtime.processing import PARK_AFTER, ProcessingLoop, Upstream
from stafett_runtime.service import http_app
from stafett_runtime.testing import NatsTestServer

NOTED = UUID("8f0e9d1c-2b3a-4c5d-8e7f-6a5b4c3d2e1f")
ADMINISTRATOR = Actor(person="drift-1", role=Role.ADMINISTRATOR)
EMPLOYEE = Actor(person="ped-1", role=Role.EMPLOYEE, service="ppt")


def eventually(condition: Callable[[], bool], seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not holds(condition):
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def holds(condition: Callable[[], bool]) -> bool:
    try:
        return condition()
    except OperationalError:  # the store is not reachable (yet): ask again
        return False


class ConsentLog(ContractApplication):
    """The consent service's stream, as the upstream."""

    name = "consent"

    def give(self, consent_id: UUID | None = None) -> UUID:
        consent_id = consent_id or uuid4()
        given = msgspec.structs.replace(
            example_of(ConsentGiven), event_id=uuid4(), aggregate_id=consent_id
        )
        self.save(given)
        return consent_id


class ConsentNotes(ContractProcessApplication):
    """Notes each consent on a case of its own; handling the consents in `failing` raises, as
    a far-future date once did in notify's reminder rules."""

    name = "notes"

    def __init__(self, env: dict[str, str]) -> None:
        super().__init__(env)
        self.failing: set[UUID] = set()

    def policy(
        self, domain_event: DomainEventProtocol[Any], processing_event: ProcessingEvent[Any]
    ) -> None:
        assert isinstance(domain_event, ConsentGiven)
        if domain_event.aggregate_id in self.failing:
            raise OverflowError("date value out of range")
        noted = msgspec.structs.replace(
            example_of(ConsentNoted),
            event_id=uuid4(),
            aggregate_id=note_of(domain_event.aggregate_id),
            consent_id=domain_event.aggregate_id,
        )
        processing_event.collect_events(noted)

    def notes(self, consent_id: UUID) -> list[Event]:
        return [e for e in self.events.get(note_of(consent_id)) if isinstance(e, Event)]


def note_of(consent_id: UUID) -> UUID:
    return uuid5(NOTED, str(consent_id))


class Service:
    """The notes service: its policy's follower, and its HTTP app with health and admin routes."""

    def __init__(self, env: dict[str, str], key: DevelopmentKey) -> None:
        self.notes = ConsentNotes(env)
        self.follower = Follower(self.notes, "consent", env, retry_seconds=0.1)
        readiness = Readiness()
        readiness.add_policy("consent-policy", self.follower)
        self.app = http_app(
            service="notes",
            route_handlers=[],
            readiness=readiness,
            verifier=TokenVerifier(key.public_key),
        )
        self.key = key

    def retry(self, http: TestClient[Litestar], actor: Actor, **body: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.key.mint(actor)}"}
        return http.post("/processing/parked/retry", json=body, headers=headers)

    def stored(self) -> list[Any]:
        """Every message of the service's stream, with its headers, as the server holds it."""
        recorder: Any = self.notes.recorder
        return list(recorder.client.run(recorder.client.read_all("NOTES", "notes.>")))


@pytest.fixture
def consents(env: dict[str, str]) -> Iterator[ConsentLog]:
    app = ConsentLog({**env, **CONTRACT_ENV})
    yield app
    app.close()


@pytest.fixture
def service(env: dict[str, str], tmp_path: Path) -> Iterator[Service]:
    running = Service(env, DevelopmentKey.load_or_create(tmp_path / "key.pem"))
    running.follower.start()
    yield running
    running.follower.stop()


def test_an_event_that_fails_again_and_again_is_parked_and_a_retry_processes_it_once(
    consents: ConsentLog, service: Service
) -> None:
    # Given three consents, the second of which the policy cannot handle (marked so before it
    # is given: the follower is live)
    poison = uuid4()
    service.notes.failing.add(poison)
    first, _, third = consents.give(), consents.give(poison), consents.give()
    loop = service.follower.loop

    # When the policy has followed them all
    eventually(lambda: loop.lag() == 0)

    # Then the second is parked, after failing the same way PARK_AFTER times in a row
    (parked,) = loop.parked()
    assert parked.aggregate_id == parked_id("notes", "consent", parked.position)
    assert (parked.upstream, parked.event_type) == ("consent", "consent.ConsentGiven@1")
    assert (parked.error_type, parked.error) == ("OverflowError", "date value out of range")
    assert parked.attempts == PARK_AFTER
    assert parked.raised_in is not None
    assert ":policy:" in parked.raised_in  # where in the code it failed
    # And its ProcessingParked and the tracking record of its position are one atomic write
    stored = service.stored()
    (parked_message,) = [m for m in stored if m.subject.endswith(".ProcessingParked")]
    (tracking,) = [m for m in stored if m.headers.get("Es-Notification-Id") == str(parked.position)]
    assert tracking.seq == parked_message.seq + 1
    assert parked_message.headers["Nats-Batch-Id"] == tracking.headers["Nats-Batch-Id"]
    # And the consents after it were noted: the policy went on
    assert [len(service.notes.notes(c)) for c in (first, poison, third)] == [1, 0, 1]
    assert loop.state.phase == "processing"

    with TestClient(service.app) as http:
        # And the service takes traffic, and says it is degraded and why
        ready = http.get("/health/ready")
        assert ready.status_code == 200
        assert ready.json()["status"] == "degraded"
        assert (
            ready.json()["checks"]["consent-policy"]["detail"] == "degraded: 1 parked; processing"
        )
        assert http.get("/health/live").status_code == 200

        # When someone who is not an administrator asks for a retry, then it is refused
        assert service.retry(http, EMPLOYEE).status_code == 403

        # When the handler is fixed and an administrator retries
        service.notes.failing.clear()
        retried = service.retry(http, ADMINISTRATOR)

        # Then the parked consent is noted, once, recorded as retried by the administrator
        assert retried.status_code == 200, retried.text
        assert retried.json() == {
            "retried": [
                {
                    "upstream": "consent",
                    "position": parked.position,
                    "outcome": "processed",
                    "events": 1,
                    "error": None,
                }
            ]
        }
        assert [len(service.notes.notes(c)) for c in (first, poison, third)] == [1, 1, 1]
        record = [e for e in service.notes.events.get(parked.aggregate_id) if isinstance(e, Event)]
        assert [type(e) for e in record] == [ProcessingParked, ParkedEventRetried]
        assert record[1].actor == ADMINISTRATOR
        assert loop.parked() == []
        assert http.get("/health/ready").json()["status"] == "ready"

        # And a second retry does nothing: nothing is parked, nothing is written
        written = len(service.stored())
        again = service.retry(http, ADMINISTRATOR)
        assert again.status_code == 200
        assert again.json() == {"retried": []}
        assert len(service.stored()) == written
        assert service.retry(http, ADMINISTRATOR, position=parked.position).status_code == 404


def test_a_retry_that_fails_again_parks_the_event_again_and_it_stays_listed(
    consents: ConsentLog, service: Service
) -> None:
    # Given a parked consent
    poison = uuid4()
    service.notes.failing.add(poison)
    consents.give(poison)
    loop = service.follower.loop
    eventually(lambda: len(loop.parked()) == 1)
    (parked,) = loop.parked()

    # When an administrator retries it before the handler is fixed
    with TestClient(service.app) as http:
        retried = service.retry(http, ADMINISTRATOR, upstream="consent", position=parked.position)

    # Then it is parked again, and still listed as parked
    assert retried.status_code == 200
    (outcome,) = retried.json()["retried"]
    assert outcome["outcome"] == "parked again"
    assert outcome["error"] == "OverflowError: date value out of range"
    (still,) = loop.parked()
    assert (still.position, still.aggregate_version) == (parked.position, 2)
    assert service.notes.notes(poison) == []


def test_a_loop_whose_server_stops_resumes_from_its_position_when_it_returns(
    orders: Orders, env: dict[str, str], nats_server: NatsTestServer
) -> None:
    # Given a loop part way through 300 upstream events, each handled slowly
    order_id = orders.place()
    orders.add_lines(order_id, 299)
    tallies = Tallies(env)
    tallies.delay = 0.01
    upstream = Upstream.named("orders", env)
    loop = ProcessingLoop(tallies, upstream, first_pause=0.1)
    loop.start()
    try:
        eventually(lambda: (loop.position or 0) > 30)

        # When nats-server stops under it, so that its store calls fail
        nats_server.stop()
        eventually(lambda: loop.state.phase == "retrying", seconds=30)
        assert loop.error is not None

        # And comes back on the same store
        nats_server.start()

        # Then the loop resumes by itself and processes everything
        eventually(lambda: loop.lag() == 0)
        assert loop.state.phase == "processing"
        # And an event recorded afterwards is followed live
        orders.add_lines(order_id, 1)
        eventually(lambda: loop.lag() == 0)
    finally:
        loop.stop()
        upstream.close()
    # And every event was counted exactly once: none lost, none twice
    counted = all_counted(tallies, [order_id])
    assert counted == [n.id for n in orders.recorder.select_notifications(None, 1000)]
    assert len(counted) == 301
    tallies.close()


def test_a_loop_that_cannot_record_what_it_parks_fails_for_good_and_the_process_is_not_live(
    orders: Orders, env: dict[str, str], tmp_path: Path
) -> None:
    # Given a policy whose application cannot store contract events (a programming error), and
    # an upstream event it cannot read
    orders.place()
    follower = Follower(Tallies(env), "orders", env, retry_seconds=0.1)
    readiness = Readiness()
    readiness.add_policy("orders-policy", follower)
    key = DevelopmentKey.load_or_create(tmp_path / "key.pem")
    app = http_app(
        service="tallies",
        route_handlers=[],
        readiness=readiness,
        verifier=TokenVerifier(key.public_key),
    )

    # When the loop has to park that event
    follower.start()
    try:
        eventually(lambda: follower.loop.state.phase == "failed", seconds=30)

        # Then it fails for good, and the service says it is neither live nor ready, and why
        with TestClient(app) as http:
            live, ready = http.get("/health/live"), http.get("/health/ready")
        assert live.status_code == ready.status_code == 503
        (failure,) = live.json()["failures"].values()
        assert live.json()["status"] == "failed"
        assert ready.json()["checks"]["orders-policy"]["detail"] == f"failed: {failure}"
    finally:
        follower.stop()
