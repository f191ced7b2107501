"""A generated history of many cases across all four services: the benchmark's data, which the
projection's rebuild tests use too. Plausible contract events, published to their streams as
the services would, through the contracts and the store's layout only.

Deterministic for a seed. Personal data is left out (it would need the children's keys).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from uuid import UUID

import msgspec
from nats.aio.client import Client
from nats.js.errors import NotFoundError

from stafett_contracts import case as c
from stafett_contracts import consent as k
from stafett_contracts import meeting as m
from stafett_contracts import notify as n
from stafett_contracts.envelope import Event, topic_of
from stafett_contracts.identity import Actor, Role
from stafett_runtime.jetstream.core import stream_config
from stafett_runtime.jetstream.layout import MESSAGE_ID, ORIGINATOR_VERSION, TOPIC, StreamLayout

UNITS = ("barnehage-solsikke", "skole-lia", "skole-berg", "barnehage-tusen")
SERVICES = ("ppt", "helsestasjon", "barnevern", "bup")
_encode = msgspec.json.Encoder()


class _Ids:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def __call__(self) -> UUID:
        return UUID(int=self._rng.getrandbits(128), version=4)


def history(cases: int, seed: int = 7, start: datetime | None = None) -> Iterator[Event]:
    """About 15 events per case, in the order the services would publish them."""
    rng = random.Random(seed)
    new_id = _Ids(rng)
    clock = start or datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
    for number in range(cases):
        unit = UNITS[number % len(UNITS)]
        helper = SERVICES[number % len(SERVICES)]
        employee = Actor(person=f"ansatt-{number % 50}", role=Role.EMPLOYEE, service=unit)
        leader = Actor(person=f"styrer-{unit}", role=Role.UNIT_LEADER, service=unit)
        guardian = Actor(person=f"forelder-{number}", role=Role.GUARDIAN)
        system = Actor(person="notify", role=Role.SYSTEM, service="notify")
        policy = Actor(person="consent-policy", role=Role.SYSTEM, service="case")
        case_id, child_id, consent_id = new_id(), new_id(), new_id()
        meeting_id, measure_id, item_id = new_id(), new_id(), new_id()
        versions: dict[UUID, int] = {}
        clock += timedelta(minutes=rng.randint(1, 90))

        def env(
            aggregate: UUID,
            actor: Actor,
            versions: dict[UUID, int] = versions,
            number: int = number,
        ) -> dict[str, Any]:
            nonlocal clock
            clock += timedelta(seconds=rng.randint(1, 3600))
            versions[aggregate] = versions.get(aggregate, 0) + 1
            return {
                "event_id": new_id(),
                "aggregate_id": aggregate,
                "aggregate_version": versions[aggregate],
                "occurred_at": clock,
                "actor": actor,
                "correlation_id": f"gen-{number}",
            }

        yield c.ConcernRaised(
            **env(case_id, employee),
            child_id=child_id,
            unit=unit,
            concern="Trekker seg unna i lek over flere uker.",
        )
        yield c.BatonHolderAppointed(
            **env(case_id, leader),
            holder=employee.person,
            service=unit,
        )
        given = env(consent_id, guardian)
        valid_from = given["occurred_at"]
        assert isinstance(valid_from, datetime)
        yield k.ConsentGiven(
            **given,
            case_id=case_id,
            child_id=child_id,
            given_by=k.Party(kind="guardian", person=guardian.person),
            services=(unit, helper),
            purposes=(k.Purpose.COOPERATION,),
            valid_from=valid_from,
            valid_until=valid_from + timedelta(days=365),
            evidence=k.Evidence(form="oral", recorded_by=employee.person),
        )
        yield c.ConsentNoted(  # the case service's consent policy, on the case's own record
            **env(case_id, policy),
            consent_id=consent_id,
            services=(unit, helper),
            purposes=(k.Purpose.COOPERATION,),
            valid_from=valid_from,
            valid_until=valid_from + timedelta(days=365),
        )
        yield c.Escalated(
            **env(case_id, employee),
            from_level=0,
            to_level=1,
            reason="Tiltak i enheten, med foreldrene.",
        )
        yield c.MeasurePlanned(
            **env(case_id, employee),
            measure_id=measure_id,
            description="Fast voksen i overganger",
            responsible=employee.person,
            service=unit,
            evaluation_date=date(2026, 3, 1) + timedelta(days=number % 90),
        )
        yield m.MeetingScheduled(
            **env(meeting_id, employee),
            case_id=case_id,
            meeting_type=m.MeetingType.COOPERATION,
            starts_at=clock + timedelta(days=3),
            ends_at=clock + timedelta(days=3, hours=1),
            place="Møterom 2",
            leader=employee.person,
            leader_service=unit,
        )
        yield m.ParticipantInvited(
            **env(meeting_id, employee),
            case_id=case_id,
            person=guardian.person,
            kind="guardian",
        )
        notification = new_id()
        yield n.NotificationRequested(
            **env(notification, system),
            case_id=case_id,
            recipient=guardian.person,
            channel=n.Channel.EMAIL,
            reason="meeting_scheduled",
            trigger=meeting_id,
            reference=f"S-{number}",
            link=f"https://stafett.example/{number}",
        )
        yield n.NotificationSent(
            **env(notification, system),
            channel=n.Channel.EMAIL,
            attempts=1,
            sent_at=clock,
        )
        yield m.ActionItemAssigned(
            **env(meeting_id, employee),
            case_id=case_id,
            item_id=item_id,
            description="Sende referat",
            owner=employee.person,
            owner_service=unit,
            due_on=date(2026, 3, 1) + timedelta(days=number % 60),
        )
        yield m.FeedbackGiven(
            **env(meeting_id, guardian),
            case_id=case_id,
            given_by="guardian",
            person=guardian.person,
            rating=1 + number % 5,
            heard=1 + (number * 3) % 5,
        )
        yield c.MeasureEvaluated(
            **env(case_id, employee),
            measure_id=measure_id,
            outcome=rng.choice(list(c.MeasureOutcome)),
            notes="Bedre i overgangene.",
            next_evaluation_date=date(2026, 5, 1),
        )
        if number % 3 == 0:
            yield k.ConsentWithdrawn(
                **env(consent_id, guardian),
                services=(helper,),
            )
            yield c.ConsentLapsed(
                **env(case_id, policy),
                consent_id=consent_id,
                services=(helper,),
                reason="withdrawn",
            )
        if number % 5 == 0:
            yield n.FollowUpBreakDetected(
                **env(new_id(), system),
                case_id=case_id,
                unit=unit,
                last_activity_at=clock,
                stage="baton_holder",
            )
        if number % 2 == 0:
            yield c.DeEscalated(
                **env(case_id, employee),
                from_level=1,
                to_level=0,
                reason="Går bedre.",
            )
            yield c.CaseClosed(
                **env(case_id, employee),
                at_level=0,
                reason="Løst i enheten.",
            )


def layout_of(event: Event) -> StreamLayout:
    return StreamLayout(stream=event.CONTEXT.upper(), prefix=event.CONTEXT)


def subject_of(event: Event) -> str:
    return layout_of(event).event_subject(event.aggregate_id, topic_of(type(event)))


def headers_of(event: Event) -> dict[str, str]:
    return {
        TOPIC: topic_of(type(event)),
        ORIGINATOR_VERSION: str(event.aggregate_version),
        MESSAGE_ID: str(event.event_id),
    }


async def ensure_streams(
    nc: Client, names: tuple[str, ...] = ("case", "consent", "meeting", "notify")
) -> None:
    """The services' streams, as the store makes them (when no service has made them yet)."""
    js = nc.jetstream()
    for name in names:
        try:
            await js.stream_info(name.upper())
        except NotFoundError:
            await js.add_stream(stream_config(StreamLayout(stream=name.upper(), prefix=name), 1))


async def publish(nc: Client, events: list[Event], in_flight: int = 256) -> None:
    """Publish events in order per stream, many in flight at once."""
    js = nc.jetstream(timeout=30)
    for first in range(0, len(events), in_flight):
        chunk = events[first : first + in_flight]
        # The tasks start, and so send, in order; only the acknowledgements are awaited together.
        await asyncio.gather(
            *[js.publish(subject_of(e), _encode.encode(e), headers=headers_of(e)) for e in chunk]
        )
