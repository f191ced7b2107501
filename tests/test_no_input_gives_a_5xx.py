"""No input gives a 5xx: schemathesis tries every operation of every service's OpenAPI document.

Each of the five services runs in-process, built as its own tests build it: a kernel on a real
nats-server, a register file of the test's own, the test municipality's directory. A case is
there before the requests start (raised at skole-lia yesterday, PPT on it under the guardian's
consent; for the services that act on it, a consent and a meeting too), so that requests reach
the rules of something that exists, not only the 404 of a random id. Every request carries the
bearer token of the unit's leader as the directory names them, who may do the most on the case.

For each operation, schemathesis makes valid requests (positive), invalid ones (negative), and
valid ones naming what exists: a bounded, reproducible number (`EXAMPLES`, derandomized). Every
answer must be no server error (schemathesis' `not_a_server_error`), have a status that
`stafett_runtime.service.http_app` gives (a refusal names what was wrong, never a 500), and have
a status the operation's OpenAPI document lists (schemathesis' `status_code_conformance`): the
documents say what the services really answer (`stafett_runtime.apidocs`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from uuid import uuid4

import nats
import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from litestar import Litestar
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import status_code_conformance

from bench.history import ensure_streams, publish
from stafett_case.api import create_app as case_app
from stafett_case.application import Cases
from stafett_consent.api import create_app as consent_app
from stafett_consent.application import Consents
from stafett_contracts.case import AgencyJoined, CaseEvent, ConcernRaised, ConsentNoted
from stafett_contracts.identity import Actor, Role
from stafett_meeting.api import create_app as meeting_app
from stafett_meeting.application import Meetings
from stafett_notify.api import create_app as notify_app
from stafett_notify.testing import Clock, make_config, notifications
from stafett_projection.api import create_app as projection_app
from stafett_projection.projection import Projection
from stafett_projection.store import Database
from stafett_runtime.auth import DevelopmentKey
from stafett_runtime.contracts import ContractApplication
from stafett_runtime.kernel import Kernel, KeyUse
from stafett_runtime.natsserver import free_port
from stafett_runtime.register import FileRegister
from stafett_runtime.testing import NatsTestServer, a_child, kernel_for_tests

UNIT = "skole-lia"
LEADER = Actor(person="rektor-1", role=Role.UNIT_LEADER, service=UNIT)  # as the directory says
TEACHER = Actor(person="laerer-1", role=Role.EMPLOYEE, service=UNIT)
GUARDIAN = "mor-1"

# Every status `http_app` answers with but the 5xx (stafett_runtime.service's table); 401 when
# a negative request leaves the bearer token out on purpose.
STATUSES = {200, 201, 400, 401, 403, 404, 409, 413, 422}
Operation = schemathesis.APIOperation[Any, Any, Any, Any]
EXAMPLES = 20  # requests per operation: bounded, so that the file runs well within two minutes


class CaseStandIn(ContractApplication):
    name = "case"  # writes the CASE stream, as the case service does


@dataclass
class Service:
    """A service's app, the ids of what exists in it by parameter name, and what to close."""

    app: Litestar
    known: dict[str, str] = field(default_factory=dict)
    close: list[Callable[[], None]] = field(default_factory=list)


class World:
    """What every service is built on: the nats-server, a signing key, a register holding the
    guardian's child, and the child's case as the case service writes it."""

    def __init__(self, server: NatsTestServer, tmp_path: Path) -> None:
        self.url = server.url
        self.env = {"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": server.url}
        self.tmp_path = tmp_path
        self.key = DevelopmentKey.load_or_create(tmp_path / "key.pem")
        self.register = FileRegister(tmp_path / "register.json")
        self.child = a_child(GUARDIAN)
        self.register.add(self.child)
        self.case_id = uuid4()
        self.case = self._case()

    def token(self, actor: Actor = LEADER) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key.mint(actor)}"}

    def kernel(self, service: str, child_keys: KeyUse | None = None) -> Kernel:
        return kernel_for_tests(
            service, self.url, key=self.key, register=self.register, child_keys=child_keys
        )

    def case_on_stream(self) -> None:
        """The case as the case service writes it, with the child's key it makes then."""
        asyncio.run(self._child_key_made())
        stand_in = CaseStandIn(self.env)
        try:
            stand_in.save(*self.case)
        finally:
            stand_in.close()

    async def _child_key_made(self) -> None:
        kernel = self.kernel("case", "seal")
        await kernel.open()
        try:
            await kernel.seal_text("the case's first words", str(self.child.child_id))
        finally:
            await kernel.close()

    def created(self, app: Litestar, path: str, body: dict[str, Any], actor: Actor = LEADER) -> str:
        """The id of what a POST to the app makes (schemathesis runs the app's lifespan)."""
        with http(app) as client:
            answer = client.post(path, json=body, headers=self.token(actor))
        assert answer.status_code == 201, answer.text
        made: str = answer.json()["id"]
        return made

    def _case(self) -> list[CaseEvent]:
        """Raised at skole-lia yesterday; PPT joined under the guardian's consent."""
        raised_at = datetime.now(UTC) - timedelta(days=1)

        def envelope(version: int) -> dict[str, Any]:
            return {
                "event_id": uuid4(),
                "aggregate_id": self.case_id,
                "aggregate_version": version,
                "occurred_at": raised_at + timedelta(seconds=version),
                "actor": LEADER,
                "correlation_id": "no-input-gives-a-5xx",
            }

        return [
            ConcernRaised(
                **envelope(1), child_id=self.child.child_id, unit=UNIT, concern="Uro for eleven"
            ),
            ConsentNoted(
                **envelope(2),
                consent_id=uuid4(),
                services=(UNIT, "ppt"),
                purposes=("cooperation",),
                valid_from=raised_at,
                valid_until=raised_at + timedelta(days=365),
            ),
            AgencyJoined(**envelope(3), service="ppt", basis="consent"),
        ]


def case_service(world: World) -> Service:
    cases = Cases(world.env)
    service = Service(case_app(cases, world.kernel("case", "seal")), close=[cases.close])
    concern = {"child_id": str(world.child.child_id), "concern": "Uro for eleven"}
    service.known["case_id"] = world.created(service.app, "/cases", concern, TEACHER)
    return service


def consent_service(world: World) -> Service:
    world.case_on_stream()
    consents = Consents(world.env)
    service = Service(
        consent_app(consents, world.kernel("consent", "open")), close=[consents.close]
    )
    service.known["case_id"] = str(world.case_id)
    consent = {
        "case_id": str(world.case_id),
        "given_by": {"kind": "guardian", "person": GUARDIAN},
        "services": [UNIT, "ppt"],
        "purposes": ["cooperation"],
        "valid_from": datetime.now(UTC).isoformat(),
        "evidence": {"form": "oral", "recorded_by": LEADER.person},
    }
    service.known["consent_id"] = world.created(service.app, "/consents", consent)
    return service


def meeting_service(world: World) -> Service:
    world.case_on_stream()
    meetings = Meetings(world.env)
    app = meeting_app(meetings, world.kernel("meeting", child_keys="open"))
    service = Service(app, close=[meetings.close])
    service.known["case_id"] = str(world.case_id)
    starts = datetime.now(UTC) + timedelta(days=7)
    meeting = {
        "case_id": str(world.case_id),
        "meeting_type": "cooperation",
        "starts_at": starts.isoformat(),
        "ends_at": (starts + timedelta(hours=1)).isoformat(),
        "place": "Møterom 2",
    }
    service.known["meeting_id"] = world.created(app, "/meetings", meeting)
    return service


def notify_service(world: World) -> Service:
    world.case_on_stream()
    config = make_config(free_port(), (LEADER.person,))  # nothing listens: nothing is sent
    application = notifications(world.env, config, Clock())
    app = notify_app(application, world.kernel("notify"))
    return Service(app, known={"case_id": str(world.case_id)}, close=[application.close])


def projection_service(world: World) -> Service:
    async def streams_with_the_case() -> None:
        nc = await nats.connect(world.url)
        try:
            await ensure_streams(nc)
            await publish(nc, list(world.case))
        finally:
            await nc.close()

    asyncio.run(streams_with_the_case())
    database = Database(f"sqlite:///{world.tmp_path / 'projection.sqlite3'}")
    app = projection_app(Projection(database), world.kernel("projection", "open"))
    deadline = time.monotonic() + 20
    with http(app) as client:
        while client.get("/lag", headers=world.token()).json()["CASE"]["position"] < 3:
            assert time.monotonic() < deadline, "the projection did not catch up in 20 s"
            time.sleep(0.05)
    return Service(app, known={"case_id": str(world.case_id), "unit": UNIT})


SERVICES: dict[str, Callable[[World], Service]] = {
    "consent": consent_service,
    "case": case_service,
    "meeting": meeting_service,
    "notify": notify_service,
    "projection": projection_service,
}


def http(app: Litestar) -> asgi.ASGIClient:
    """A client of the app in-process, on the lifespan schemathesis runs for it."""
    return asgi.get_client(cast(asgi.ASGIApp, app))


@contextmanager
def running(name: str, world: World) -> Iterator[Service]:
    """The service built and serving (schemathesis runs its lifespan), then stopped."""
    service = SERVICES[name](world)
    try:
        yield service
    finally:
        asgi.shutdown_lifespans()  # the app's shutdown: its kernel closes
        for close in service.close:
            close()


@pytest.mark.parametrize("name", SERVICES)
def test_no_input_to_any_operation_of_the_service_gives_a_5xx(
    name: str, nats_server: NatsTestServer, tmp_path: Path
) -> None:
    world = World(nats_server, tmp_path)
    with running(name, world) as service:
        schema = schemathesis.openapi.from_asgi("/schema/openapi.json", service.app)
        for operation in schema.get_all_operations():
            assert isinstance(operation, Ok), operation  # the document is valid OpenAPI
            no_request_gives_a_5xx(operation.ok(), service.known, world.token())


def no_request_gives_a_5xx(
    operation: Operation, known: dict[str, str], headers: dict[str, str]
) -> None:
    """Valid and invalid requests to one operation, and valid ones naming what exists."""
    in_path = {p.name for p in operation.path_parameters}
    path = {name: known[name] for name in in_path if name in known}
    query = {p.name: known[p.name] for p in operation.query if p.name in known}
    modes = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)
    kinds = [operation.as_strategy(generation_mode=mode) for mode in modes]
    if path or query:
        kinds.append(operation.as_strategy(path_parameters=path or None, query=query or None))

    # Health checks off: a pattern's strategy may filter much, and a request may wait (the
    # relay log's min_version waits up to 5 s); neither is what this test is about.
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=st.one_of(kinds))
    def answered_without_a_server_error(case: schemathesis.Case[Operation]) -> None:
        response = case.call(headers=headers)
        case.validate_response(response, checks=[not_a_server_error, status_code_conformance])
        assert response.status_code in STATUSES, (
            f"{operation.label}: {response.status_code} {response.text[:500]}"
        )

    answered_without_a_server_error()
