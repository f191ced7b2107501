"""One case up the staircase and down again, through the application, over a real nats-server.

A kindergarten's worry at level 0; consent; measures at level 1; a referral to PPT, which joins
at level 2 and takes the baton; a coordinator and level 3; back to level 1; closed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import msgspec
import nats
import pytest

from stafett_case.application import Cases
from stafett_case.domain.commands import (
    AcceptBaton,
    AppointBatonHolder,
    AssignCoordinator,
    CloseCase,
    Command,
    DeEscalate,
    DefineProblem,
    EndMeasure,
    Escalate,
    EvaluateMeasure,
    FormResponsibilityGroup,
    JoinAgency,
    Member,
    NoteConsent,
    OfferBaton,
    PlanMeasure,
    RaiseConcern,
    RecordWonderingConversation,
    RequestIndividualPlan,
    SendReferral,
    ShareConcern,
)
from stafett_contracts.case import MeasureOutcome
from stafett_contracts.identity import Actor, Role
from stafett_runtime.domain import Context, StaleVersion
from stafett_runtime.testing import TEST_DIRECTORY, NatsTestServer

DAY_ONE = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
UNIT = "barnehage-solsikke"
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service=UNIT)
LEADER = Actor(person="styrer-1", role=Role.UNIT_LEADER, service=UNIT)
PPT_WORKER = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")
COORDINATOR = Actor(person="koord-1", role=Role.EMPLOYEE, service=UNIT)
CONSENT_POLICY = Actor(person="consent-policy", role=Role.SYSTEM, service="case")


@pytest.fixture
def cases(nats_server: NatsTestServer) -> Iterator[Cases]:
    app = Cases({"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": nats_server.url})
    yield app
    app.close()


def types_in_case_stream(url: str) -> list[str]:
    async def read() -> list[str]:
        nc = await nats.connect(url)
        try:
            js = nc.jetstream()
            last = (await js.stream_info("CASE")).state.last_seq
            messages = [await js.get_msg("CASE", seq) for seq in range(1, last + 1)]
            return [msgspec.json.decode(m.data or b"{}")["type"] for m in messages]
        finally:
            await nc.close()

    return asyncio.run(read())


def test_a_case_goes_up_the_staircase_and_down_again(
    cases: Cases, nats_server: NatsTestServer
) -> None:
    case_id, measure_id = uuid4(), uuid4()
    week = 0

    def step(actor: Actor, command: Command) -> None:
        nonlocal week
        week += 1  # one step a week
        now = DAY_ONE + timedelta(weeks=week)
        context = Context(actor=actor, now=now, correlation_id=f"w{week}", directory=TEST_DIRECTORY)
        cases.commands.handle(case_id, command, context)

    def in_weeks(weeks: int) -> date:
        return (DAY_ONE + timedelta(weeks=week + weeks)).date()

    # Level 0: the worry, shared, talked over with the guardians; consent obtained
    step(TEACHER, RaiseConcern(case_id=case_id, child_id=uuid4(), concern="Trekker seg unna."))
    step(TEACHER, ShareConcern(shared_with=LEADER.person))
    step(
        TEACHER,
        RecordWonderingConversation(
            held_on=in_weeks(0), with_guardians=True, with_child=False, summary="Enige om uro."
        ),
    )
    step(LEADER, AppointBatonHolder(holder=TEACHER.person, service=UNIT))
    step(CONSENT_POLICY, consent_for_ppt(UUID(int=1)))
    # Level 1: the unit's own measures
    step(LEADER, Escalate(to_level=1, reason="Samtykke innhentet", participants=("mor-1",)))
    step(TEACHER, DefineProblem(description="Lite lek med andre.", with_guardians=True))
    step(
        TEACHER,
        PlanMeasure(
            measure_id=measure_id,
            description="Fast voksen i lek.",
            responsible=TEACHER.person,
            service=UNIT,
            evaluation_date=in_weeks(6),
        ),
    )
    step(
        TEACHER,
        EvaluateMeasure(measure_id=measure_id, outcome=MeasureOutcome.PARTLY, notes="Litt bedre."),
    )
    # Level 2: PPT, referred with consent, joins and takes the baton
    step(TEACHER, SendReferral(to_service="ppt", purpose="Utredning av språk"))
    step(PPT_WORKER, JoinAgency(service="ppt"))
    step(TEACHER, Escalate(to_level=2, reason="Trenger PPT"))
    step(TEACHER, OfferBaton(to_person=PPT_WORKER.person, to_service="ppt"))
    step(PPT_WORKER, AcceptBaton())
    # Level 3: a coordinator, a responsibility group, an individual plan
    step(LEADER, AssignCoordinator(coordinator=COORDINATOR.person, service=UNIT))
    step(PPT_WORKER, Escalate(to_level=3, reason="Langvarig behov"))
    group = (Member(person="mor-1"), Member(person=PPT_WORKER.person, service="ppt"))
    step(COORDINATOR, FormResponsibilityGroup(members=group))
    step(COORDINATOR, RequestIndividualPlan(requested_by_guardian=True))
    # Down again to level 1, and closed
    step(PPT_WORKER, EndMeasure(measure_id=measure_id, reason="Virket"))
    step(COORDINATOR, DeEscalate(to_level=1, reason="Trives nå"))
    step(LEADER, CloseCase(reason="Ingen uro lenger", participants=("mor-1",)))

    assert types_in_case_stream(nats_server.url) == [
        "ConcernRaised",
        "ConcernShared",
        "WonderingConversationHeld",
        "BatonHolderAppointed",
        "ConsentNoted",
        "Escalated",
        "ProblemDefined",
        "MeasurePlanned",
        "MeasureEvaluated",
        "ReferralSent",
        "AgencyJoined",
        "Escalated",
        "BatonHandoverOffered",
        "BatonHandedOver",
        "CoordinatorAssigned",
        "Escalated",
        "ResponsibilityGroupFormed",
        "IndividualPlanRequested",
        "MeasureEnded",
        "DeEscalated",
        "CaseClosed",
    ]
    case = cases.commands.get(case_id)
    assert (case.level, case.closed, case.services) == (1, True, (UNIT, "ppt"))
    assert case.holder is not None
    assert case.holder.person == PPT_WORKER.person


def consent_for_ppt(consent_id: UUID) -> NoteConsent:
    """What the consent policy makes of the guardians' ConsentGiven (see test_consent_policy)."""
    return NoteConsent(
        consent_id=consent_id,
        services=("ppt",),
        purposes=("cooperation", "referral"),
        valid_from=DAY_ONE,
        valid_until=DAY_ONE + timedelta(days=365),
    )


def test_two_instances_of_the_service_each_decide_on_the_whole_case(
    cases: Cases, nats_server: NatsTestServer
) -> None:
    # Given a case that one instance has handled (and so holds in memory)
    case_id = uuid4()
    context = Context(actor=TEACHER, now=DAY_ONE, correlation_id="c-1", directory=TEST_DIRECTORY)
    cases.commands.handle(
        case_id, RaiseConcern(case_id=case_id, child_id=uuid4(), concern="Uro."), context
    )
    assert cases.commands.get(case_id).version == 1
    other = Cases({"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": nats_server.url})
    try:
        # When another instance records the next step
        shared = other.commands.handle(case_id, ShareConcern(shared_with=LEADER.person), context)
        assert shared.version == 2
    finally:
        other.close()

    # Then the first sees it: a command on the old version is stale, one on the new goes through
    with pytest.raises(StaleVersion):
        cases.commands.handle(
            case_id, ShareConcern(shared_with="styrer-2"), context, expected_version=1
        )
    assert cases.commands.get(case_id).version == 2
    decision = cases.commands.handle(
        case_id, ShareConcern(shared_with="styrer-2"), context, expected_version=2
    )
    assert decision.version == 3
