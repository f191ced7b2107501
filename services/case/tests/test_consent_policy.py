"""The consent policy over a real nats-server: consent events in, case events out, once.

The CONSENT stream is written here by a stand-in application named "consent", with the consent
contract's events, so the test needs nothing of the consent service but its contract.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import pytest

from stafett_case.application import Cases
from stafett_case.domain.commands import (
    AcceptBaton,
    AppointBatonHolder,
    JoinAgency,
    OfferBaton,
    RaiseConcern,
)
from stafett_case.policies import ConsentPolicy
from stafett_contracts.case import AgencyLeft, CaseEvent, ConsentNoted
from stafett_contracts.consent import (
    ConsentGiven,
    ConsentWithdrawn,
    Evidence,
    Party,
    Purpose,
)
from stafett_contracts.identity import Actor, Role
from stafett_runtime.contracts import CONTRACT_ENV, ContractApplication
from stafett_runtime.directory import FixedDirectory
from stafett_runtime.domain import Context
from stafett_runtime.processing import ProcessingLoop, Upstream
from stafett_runtime.testing import TEST_DIRECTORY, NatsTestServer

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
UNIT = "skole-lia"
TEACHER = Actor(person="laerer-1", role=Role.EMPLOYEE, service=UNIT)
LEADER = Actor(person="rektor-1", role=Role.UNIT_LEADER, service=UNIT)
PPT_WORKER = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")
GUARDIAN = Actor(person="mor-1", role=Role.GUARDIAN)


class ConsentStandIn(ContractApplication):
    name = "consent"


@pytest.fixture
def env(nats_server: NatsTestServer) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": nats_server.url}


@pytest.fixture
def cases(env: dict[str, str]) -> Iterator[Cases]:
    app = Cases(env)
    yield app
    app.close()


@pytest.fixture
def consents(env: dict[str, str]) -> Iterator[ConsentStandIn]:
    app = ConsentStandIn(env)
    yield app
    app.close()


def envelope(consent_id: UUID, version: int, at: datetime) -> dict[str, Any]:
    return {
        "event_id": uuid4(),
        "aggregate_id": consent_id,
        "aggregate_version": version,
        "occurred_at": at,
        "actor": GUARDIAN,
        "correlation_id": f"consent-{version}",
    }


def given_consent(case_id: UUID, consent_id: UUID) -> ConsentGiven:
    return ConsentGiven(
        **envelope(consent_id, 1, T0),
        case_id=case_id,
        child_id=uuid4(),
        given_by=Party(kind="guardian", person=GUARDIAN.person),
        services=("ppt",),
        purposes=(Purpose.COOPERATION,),
        valid_from=T0,
        valid_until=T0 + timedelta(days=365),
        evidence=Evidence(form="oral", recorded_by=TEACHER.person),
    )


def case_events(cases: Cases, case_id: UUID) -> list[CaseEvent]:
    return [e for e in cases.events.get(case_id) if isinstance(e, CaseEvent)]


def run_policy(env: dict[str, str]) -> None:
    """Run the loop until it has processed every consent event, then stop it."""
    policy = ConsentPolicy(env, FixedDirectory(TEST_DIRECTORY))
    loop = ProcessingLoop(policy, Upstream.named("consent", {**env, **CONTRACT_ENV}))
    loop.start()
    try:
        deadline = time.monotonic() + 10
        while loop.lag() > 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert loop.error is None
        assert loop.lag() == 0
    finally:
        loop.stop()
        loop.process.close()
        loop.upstream.close()


def test_consent_events_become_case_events_exactly_once(
    env: dict[str, str], cases: Cases, consents: ConsentStandIn
) -> None:
    # Given a case at level 0 whose baton the teacher holds
    case_id, consent_id = uuid4(), uuid4()

    def act(actor: Actor, command: Any, at: datetime) -> None:
        context = Context(actor=actor, now=at, correlation_id="req", directory=TEST_DIRECTORY)
        cases.commands.handle(case_id, command, context)

    act(TEACHER, RaiseConcern(case_id=case_id, child_id=uuid4(), concern="Uro"), T0)
    act(LEADER, AppointBatonHolder(holder=TEACHER.person, service=UNIT), T0)

    # When the guardians consent to PPT taking part
    consents.save(given_consent(case_id, consent_id))
    run_policy(env)

    # Then the case notes the consent, caused by the consent event, as of its time
    noted = case_events(cases, case_id)[-1]
    assert isinstance(noted, ConsentNoted)
    assert (noted.consent_id, noted.services, noted.occurred_at) == (consent_id, ("ppt",), T0)
    assert noted.correlation_id == "consent-1"
    assert noted.actor.role == Role.SYSTEM

    # And PPT joins and takes the baton; then the guardians withdraw the consent
    later = T0 + timedelta(days=1)
    act(LEADER, JoinAgency(service="ppt"), later)
    act(TEACHER, OfferBaton(to_person=PPT_WORKER.person, to_service="ppt"), later)
    act(PPT_WORKER, AcceptBaton(), later)
    consents.save(ConsentWithdrawn(**envelope(consent_id, 2, T0 + timedelta(days=2))))
    run_policy(env)

    # Then PPT leaves the case at once, and the baton it held is vacant
    after = [type(e).__name__ for e in case_events(cases, case_id)]
    assert after[-3:] == ["ConsentLapsed", "AgencyLeft", "BatonVacated"]
    left = case_events(cases, case_id)[-2]
    assert isinstance(left, AgencyLeft)
    assert left.reason == "consent_withdrawn"

    # And a restart of the loop adds nothing
    run_policy(env)
    assert len(case_events(cases, case_id)) == len(after)


def test_a_consent_for_a_case_that_does_not_exist_is_skipped(
    env: dict[str, str], cases: Cases, consents: ConsentStandIn
) -> None:
    missing_case = uuid4()
    consents.save(given_consent(missing_case, uuid4()))
    run_policy(env)
    assert case_events(cases, missing_case) == []
