"""Contract events are stored as their plain JSON, and integrators filter them by subject."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID, uuid4

import msgspec
import nats
import pytest
from eventsourcing.persistence import StoredEvent
from nats.js.api import RawStreamMsg

from stafett_contracts.case import BrightSpotNoted, ConcernRaised
from stafett_contracts.identity import Actor, Role
from stafett_runtime.contracts import ContractApplication, ContractMapper, UnknownEventTypeError
from stafett_runtime.testing import NatsTestServer

EMPLOYEE = Actor(person="p-1", role=Role.EMPLOYEE, service="barnehage-solsikke")


class CaseLog(ContractApplication):
    name = "case"


@pytest.fixture
def app(nats_server: NatsTestServer) -> Iterator[CaseLog]:
    app = CaseLog({"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": nats_server.url})
    yield app
    app.close()


def concern(case_id: UUID) -> ConcernRaised:
    return ConcernRaised(
        event_id=uuid4(),
        aggregate_id=case_id,
        aggregate_version=1,
        occurred_at=datetime(2026, 11, 2, 9, 30, tzinfo=UTC),
        actor=EMPLOYEE,
        correlation_id="req-1",
        child_id=uuid4(),
        unit="barnehage-solsikke",
        concern="Trekker seg unna i lek over flere uker.",
    )


def bright_spot(case_id: UUID) -> BrightSpotNoted:
    return BrightSpotNoted(
        event_id=uuid4(),
        aggregate_id=case_id,
        aggregate_version=2,
        occurred_at=datetime(2026, 11, 3, 9, 30, tzinfo=UTC),
        actor=EMPLOYEE,
        correlation_id="req-2",
        note="Lekte med to andre barn i dag.",
    )


async def message_of(url: str, subject: str) -> RawStreamMsg:
    nc = await nats.connect(url)
    try:
        return await nc.jetstream().get_last_msg("CASE", subject)
    finally:
        await nc.close()


def test_a_contract_event_is_stored_as_its_plain_json_under_its_type(
    app: CaseLog, nats_server: NatsTestServer
) -> None:
    # When a concern is saved
    case_id = uuid4()
    raised = concern(case_id)
    app.save(raised)
    # Then the stream holds exactly the event's JSON, on a subject named by its type
    subject = f"case.events.{case_id}.ConcernRaised"
    stored = asyncio.run(message_of(nats_server.url, subject))
    assert stored.data == msgspec.json.encode(raised)
    assert stored.headers is not None
    assert stored.headers["Es-Topic"] == "case.ConcernRaised@1"
    # And it reads back as the same event
    (read,) = [app.mapper.to_domain_event(s) for s in app.recorder.select_events(case_id)]
    assert read == raised


def test_an_integrator_follows_one_event_type_across_all_cases(
    app: CaseLog, nats_server: NatsTestServer
) -> None:
    # Given three cases, each with a concern and a bright spot
    case_ids = [uuid4() for _ in range(3)]
    for case_id in case_ids:
        app.save(concern(case_id), bright_spot(case_id))

    # When an integrator subscribes to ConcernRaised with a subject filter, in plain nats-py
    async def concerns() -> list[dict[str, object]]:
        nc = await nats.connect(nats_server.url)
        sub = await nc.jetstream().subscribe(
            "case.events.*.ConcernRaised", stream="CASE", ordered_consumer=True
        )
        received = [msgspec.json.decode((await sub.next_msg(5)).data) for _ in case_ids]
        await nc.close()
        return received

    received = asyncio.run(concerns())
    # Then it gets every concern, and nothing else
    assert [r["type"] for r in received] == ["ConcernRaised"] * 3
    assert [UUID(str(r["aggregate_id"])) for r in received] == case_ids


def test_an_event_of_no_known_contract_is_refused() -> None:
    mapper = ContractMapper(transcoder=None)  # type: ignore[arg-type]  # it never uses a transcoder
    with pytest.raises(UnknownEventTypeError, match=r"case\.Unknown@1"):
        mapper.to_domain_event(StoredEvent(uuid4(), 1, "case.Unknown@1", b"{}"))
