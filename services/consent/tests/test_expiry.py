"""Consents lapse at their end, on a real stream: on time, across restarts, and only once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import pytest

from stafett_consent.application import Consents
from stafett_consent.domain.consent import ConsentingParty, EvidenceOfConsent, GiveConsent
from stafett_consent.domain.facts import Facts
from stafett_consent.expiry import ExpiryTimer
from stafett_contracts.casefile import CaseFile
from stafett_contracts.consent import ConsentExpired, Purpose
from stafett_contracts.identity import Actor, Role
from stafett_runtime.domain import Context
from stafett_runtime.service import call
from stafett_runtime.settings import Settings
from stafett_runtime.testing import TEST_DIRECTORY, NatsTestServer, a_child

UNIT = "skole-lia"
EMPLOYEE = Actor(person="teacher-1", role=Role.EMPLOYEE, service=UNIT)
GUARDIAN = ConsentingParty(kind="guardian", person="guardian-1")


@pytest.fixture
def env(nats_server: NatsTestServer) -> dict[str, str]:
    return Settings(service="consent", nats_url=nats_server.url).eventsourcing_env()


@pytest.fixture
async def consents(env: dict[str, str]) -> AsyncIterator[Consents]:
    app = await call(Consents, env)
    yield app
    await call(app.close)


def give_until(consents: Consents, valid_until: datetime) -> UUID:
    """The guardian's oral consent from now until `valid_until`, recorded by the case's unit."""
    now = datetime.now(UTC)
    child = a_child(GUARDIAN.person)
    case = CaseFile(
        id=uuid4(),
        version=1,
        child_id=child.child_id,
        unit=UNIT,
        raised_at=now - timedelta(days=1),
        concern="often tired",
        services=(UNIT,),
    )
    command = GiveConsent(
        case_id=case.id,
        given_by=GUARDIAN,
        services=("ppt",),
        purposes=(Purpose.COOPERATION,),
        valid_from=now,
        valid_until=valid_until,
        evidence=EvidenceOfConsent(form="oral", recorded_by=EMPLOYEE.person),
    )
    context = Context(actor=EMPLOYEE, now=now, correlation_id="t", directory=TEST_DIRECTORY)
    consent_id, _ = consents.give(command, context, Facts(case=case, child=child))
    return consent_id


def expiries(consents: Consents) -> list[ConsentExpired]:
    stored = consents.recorder.select_notifications(None, 1000)
    events = [consents.mapper.to_domain_event(n) for n in stored]
    return [e for e in events if isinstance(e, ConsentExpired)]


async def test_a_consent_expires_when_its_end_has_passed(consents: Consents) -> None:
    end = datetime.now(UTC) + timedelta(seconds=1)
    consent_id = await call(give_until, consents, end)
    timer = ExpiryTimer(consents, interval=0.05)
    await timer.start()
    try:
        await asyncio.sleep(0.3)
        assert await call(expiries, consents) == []  # not before its end
        for _ in range(60):
            if (await call(consents.consent, consent_id)).expired_at is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        await timer.stop()
    (expired,) = await call(expiries, consents)
    assert expired.aggregate_id == consent_id
    assert expired.expired_at == end
    assert end <= expired.occurred_at < end + timedelta(seconds=1)
    assert expired.actor.role == Role.SYSTEM


async def test_after_a_restart_a_consent_that_ended_meanwhile_expires_exactly_once(
    env: dict[str, str],
) -> None:
    first = await call(Consents, env)
    consent_id = await call(give_until, first, datetime.now(UTC) + timedelta(seconds=0.3))
    await call(first.close)  # the service stops before the consent ends
    await asyncio.sleep(0.4)

    # Two instances start on the same stream and both run their expiry round at once.
    restarted, replica = await asyncio.gather(call(Consents, env), call(Consents, env))
    try:
        now = datetime.now(UTC)
        await asyncio.gather(call(restarted.expire_due, now), call(replica.expire_due, now))
        assert await call(restarted.expire_due, datetime.now(UTC)) == []  # nothing more to do
        (expired,) = await call(expiries, restarted)
        assert expired.aggregate_id == consent_id
        assert (await call(replica.consent, consent_id)).expired_at is not None
    finally:
        await asyncio.gather(call(restarted.close), call(replica.close))
