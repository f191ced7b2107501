"""The one command path (`stafett_runtime.commands`), against a real nats-server: load (cached,
brought up to date with only the newer events), decide, append atomically; and a policy's
orders decided on the same path and written with its tracking record.

The aggregate here is a case (the one fold, `stafett_contracts.casefile`) with a small domain of
the test's own: open it, note a bright spot on it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, Tracking

from stafett_contracts.case import BrightSpotNoted, CaseEvent, ConcernRaised
from stafett_contracts.casefile import CaseFile, evolve
from stafett_contracts.envelope import Event, PrivateText
from stafett_contracts.identity import Actor, Role
from stafett_contracts.people import Directory
from stafett_runtime.commands import AggregateType, Commands, Order, Policy, caused_by
from stafett_runtime.contracts import ContractApplication
from stafett_runtime.domain import Context, NotAllowed, RuleViolation, StaleVersion, envelope

UNIT = "barnehage-solsikke"
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service=UNIT)
GUARDIAN = Actor(person="forelder-1", role=Role.GUARDIAN)
NOW = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


class Open(msgspec.Struct, frozen=True, kw_only=True):
    case_id: UUID


class Note(msgspec.Struct, frozen=True, kw_only=True):
    text: PrivateText


def decide(state: CaseFile | None, command: Open | Note, context: Context) -> list[CaseEvent]:
    if isinstance(command, Open):
        if state is not None:
            return []  # opened already
        return [
            ConcernRaised(
                **envelope(context, command.case_id, 1),
                child_id=uuid4(),
                unit=UNIT,
                concern="Uro.",
            )
        ]
    assert state is not None
    if not command.text:
        raise RuleViolation("note-says-something", "a bright spot says what was good")
    return [BrightSpotNoted(**envelope(context, state.id, state.version + 1), note=command.text)]


def refuse_guardians(state: CaseFile | None, command: Open | Note, context: Context) -> None:
    if context.actor.role == Role.GUARDIAN:
        raise NotAllowed("only staff note on the case", rule="who-may-act")


CASE = AggregateType[CaseFile, Open | Note, Context](
    name="case", evolve=evolve, decide=decide, creates=(Open,), refuse_strangers=refuse_guardians
)


class CaseLog(ContractApplication):
    name = "case"


def by(actor: Actor = TEACHER) -> Context:
    return Context(actor=actor, now=NOW, correlation_id="test")


@pytest.fixture
def app(env: dict[str, str]) -> Iterator[CaseLog]:
    app = CaseLog(env)
    yield app
    app.close()


def opened(commands: Commands[CaseFile, Open | Note, Context]) -> UUID:
    case_id = uuid4()
    commands.handle(case_id, Open(case_id=case_id), by())
    return case_id


def stored(app: CaseLog, case_id: UUID) -> list[str]:
    return [type(event).__name__ for event in app.events.get(case_id)]


def test_a_command_on_a_warm_aggregate_reads_only_its_new_events(
    app: CaseLog, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a case the path has decided on, with two bright spots
    commands = Commands(app, CASE)
    case_id = opened(commands)
    commands.handle(case_id, Note(text="Lekte fint."), by())
    commands.handle(case_id, Note(text="Spiste godt."), by())
    reads: list[tuple[int | None, int]] = []
    get = app.events.get

    def spied(aggregate_id: UUID, **kwargs: Any) -> Iterator[Any]:
        found = list(get(aggregate_id, **kwargs))
        reads.append((kwargs.get("gt"), len(found)))
        return iter(found)

    monkeypatch.setattr(app.events, "get", spied)
    # When another command is decided on it
    decision = commands.handle(case_id, Note(text="Sang i samlingsstund."), by())
    # Then the path asked only for the events after the version it holds, and there were none
    assert reads == [(3, 0)]
    assert decision.version == 4


def test_writes_by_another_instance_are_seen_before_deciding(
    app: CaseLog, env: dict[str, str]
) -> None:
    # Given a case this instance holds in its cache at version 1
    commands = Commands(app, CASE)
    case_id = opened(commands)
    other = CaseLog(env)
    try:
        # When another instance notes a bright spot on it
        Commands(other, CASE).handle(case_id, Note(text="Lekte fint."), by())
    finally:
        other.close()
    # Then this instance decides on version 2, and a command on version 1 is stale
    with pytest.raises(StaleVersion):
        commands.handle(case_id, Note(text="Spiste godt."), by(), expected_version=1)
    assert commands.handle(case_id, Note(text="Spiste godt."), by(), 2).version == 3
    assert commands.get(case_id).version == 3


def test_case_exists_a_command_for_no_such_aggregate_is_404_unless_it_begins_one(
    app: CaseLog,
) -> None:
    commands = Commands(app, CASE)
    with pytest.raises(AggregateNotFoundError):
        commands.handle(uuid4(), Note(text="Lekte fint."), by())
    case_id = uuid4()
    assert commands.handle(case_id, Open(case_id=case_id), by()).version == 1
    # And a command already satisfied decides nothing and writes nothing
    again = commands.handle(case_id, Open(case_id=case_id), by())
    assert (again.events, again.version, stored(app, case_id)) == ([], 1, ["ConcernRaised"])


def test_expected_version_a_stranger_is_refused_before_the_version_is_said(
    app: CaseLog,
) -> None:
    commands = Commands(app, CASE)
    case_id = opened(commands)
    with pytest.raises(NotAllowed):
        commands.handle(case_id, Note(text="Fin dag."), by(GUARDIAN), expected_version=7)
    with pytest.raises(StaleVersion) as stale:
        commands.handle(case_id, Note(text="Fin dag."), by(), expected_version=7)
    assert (stale.value.expected, stale.value.actual) == (7, 1)


def racing_with(
    other: CaseLog, case_id: UUID, writes: int
) -> AggregateType[CaseFile, Open | Note, Context]:
    """The case's type, but another instance writes on the case while this one decides (the
    first `writes` times it decides)."""
    written: list[int] = []

    def decide_while_another_writes(
        state: CaseFile | None, command: Open | Note, context: Context
    ) -> list[CaseEvent]:
        if len(written) < writes:
            written.append(1)
            Commands(other, CASE).handle(case_id, Note(text="Samtidig."), by())
        return decide(state, command, context)

    return AggregateType[CaseFile, Open | Note, Context](
        name="case", evolve=evolve, decide=decide_while_another_writes
    )


def test_one_write_at_a_time_a_write_meanwhile_refuses_a_command_decided_on_a_version(
    app: CaseLog, env: dict[str, str]
) -> None:
    # Given a case, and another instance that writes on it while this one decides
    case_id = opened(Commands(app, CASE))
    other = CaseLog(env)
    try:
        # When this instance appends a decision its sender made on version 1
        with pytest.raises(IntegrityError):
            Commands(app, racing_with(other, case_id, 1)).handle(
                case_id, Note(text="For sent."), by(), expected_version=1
            )
    finally:
        other.close()
    # Then only the other write is in the stream: the command is refused whole
    assert stored(app, case_id) == ["ConcernRaised", "BrightSpotNoted"]
    assert [e.note for e in app.events.get(case_id) if isinstance(e, BrightSpotNoted)] == [
        "Samtidig."
    ]


def test_one_write_at_a_time_a_command_on_no_version_is_decided_again_on_the_newer_state(
    app: CaseLog, env: dict[str, str]
) -> None:
    # Given a case, and another instance that writes on it while this one first decides
    case_id = opened(Commands(app, CASE))
    other = CaseLog(env)
    try:
        # When this instance appends a command that names no version
        decision = Commands(app, racing_with(other, case_id, 1)).handle(
            case_id, Note(text="Etterpå."), by()
        )
    finally:
        other.close()
    # Then it was decided again after the other write, and both are in the stream, in order
    assert decision.version == 3
    notes = [e.note for e in app.events.get(case_id) if isinstance(e, BrightSpotNoted)]
    assert notes == ["Samtidig.", "Etterpå."]


def test_one_write_at_a_time_a_command_that_keeps_meeting_other_writes_is_refused_at_last(
    app: CaseLog, env: dict[str, str]
) -> None:
    case_id = opened(Commands(app, CASE))
    other = CaseLog(env)
    try:
        with pytest.raises(IntegrityError):
            Commands(app, racing_with(other, case_id, 99)).handle(
                case_id, Note(text="Aldri."), by()
            )
    finally:
        other.close()
    assert "Aldri." not in [
        e.note for e in app.events.get(case_id) if isinstance(e, BrightSpotNoted)
    ]


def test_a_decision_continues_its_aggregate_or_nothing_is_written(app: CaseLog) -> None:
    case_id = opened(Commands(app, CASE))

    def on_another_case(
        state: CaseFile | None, command: Open | Note, context: Context
    ) -> list[CaseEvent]:
        return [BrightSpotNoted(**envelope(context, uuid4(), 2), note="Feil sak.")]

    astray = AggregateType[CaseFile, Open | Note, Context](
        name="case", evolve=evolve, decide=on_another_case
    )
    with pytest.raises(ValueError, match="continues its aggregate"):
        Commands(app, astray).handle(case_id, Note(text="Feil sak."), by())
    assert stored(app, case_id) == ["ConcernRaised"]


# A policy: an upstream event, translated into an order on the same path.

POLICY = Actor(person="test-policy", role=Role.SYSTEM, service="case")


class NoteOnCase(Policy):
    name = "case"  # writes the CASE stream, beside CaseLog


def noted(event: Event) -> Order[Open | Note, Context] | None:
    """Each bright spot of the upstream (a stand-in event) is noted on the case it names."""
    if not isinstance(event, BrightSpotNoted):
        return None
    return Order(event.aggregate_id, Note(text=event.note), caused_by(event, POLICY, Directory()))


def upstream_spot(case_id: UUID, note: str) -> BrightSpotNoted:
    return BrightSpotNoted(
        event_id=uuid4(),
        aggregate_id=case_id,
        aggregate_version=9,
        occurred_at=NOW,
        actor=TEACHER,
        correlation_id="upstream-request",
        note=note,
    )


@pytest.fixture
def policy(env: dict[str, str]) -> Iterator[NoteOnCase]:
    app = NoteOnCase(env, CASE, noted)
    yield app
    app.close()


def test_a_policys_order_is_written_with_the_tracking_record_as_of_its_cause(
    app: CaseLog, policy: NoteOnCase
) -> None:
    case_id = opened(Commands(app, CASE))
    cause = upstream_spot(case_id, "Lekte fint.")
    policy.process_event(cause, Tracking("upstream", 1))
    (_, spot) = list(app.events.get(case_id))
    assert isinstance(spot, BrightSpotNoted)
    assert (spot.note, spot.actor, spot.causation_id) == (
        "Lekte fint.",
        POLICY,
        str(cause.event_id),
    )
    assert (spot.occurred_at, spot.correlation_id) == (NOW, "upstream-request")
    assert policy.recorder.has_tracking_id("upstream", 1)
    # And the same event delivered again is refused by the store: nothing twice
    with pytest.raises(IntegrityError):
        policy.process_event(cause, Tracking("upstream", 1))
    assert stored(app, case_id) == ["ConcernRaised", "BrightSpotNoted"]


@pytest.mark.parametrize(
    "order_for",
    [
        pytest.param(lambda case_id: upstream_spot(uuid4(), "Ingen sak."), id="no-such-case"),
        pytest.param(lambda case_id: upstream_spot(case_id, ""), id="refused-by-a-rule"),
    ],
)
def test_a_policy_skips_an_order_for_no_aggregate_or_one_refused_and_moves_on(
    app: CaseLog, policy: NoteOnCase, order_for: Callable[[UUID], BrightSpotNoted]
) -> None:
    case_id = opened(Commands(app, CASE))
    policy.process_event(order_for(case_id), Tracking("upstream", 1))
    assert policy.recorder.has_tracking_id("upstream", 1)  # processed: only its position
    assert stored(app, case_id) == ["ConcernRaised"]


def test_a_policy_on_a_warm_aggregate_reads_only_its_new_events(
    app: CaseLog, policy: NoteOnCase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a case the policy has written on
    case_id = opened(Commands(app, CASE))
    policy.process_event(upstream_spot(case_id, "Lekte fint."), Tracking("upstream", 1))
    reads: list[int | None] = []
    get = policy.events.get

    def spied(aggregate_id: UUID, **kwargs: Any) -> Iterator[Any]:
        reads.append(kwargs.get("gt"))
        return get(aggregate_id, **kwargs)

    monkeypatch.setattr(policy.events, "get", spied)
    # When its next order is for the same case
    policy.process_event(upstream_spot(case_id, "Spiste godt."), Tracking("upstream", 2))
    # Then it asked only for what came after its own write
    assert reads == [2]
    assert stored(app, case_id) == ["ConcernRaised", "BrightSpotNoted", "BrightSpotNoted"]


def opened_elsewhere(state: CaseFile | None, command: Open, context: Context) -> list[CaseEvent]:
    """A second kind of aggregate in the same stream: a case opened in another unit."""
    if state is not None:
        return []
    raised = ConcernRaised(
        **envelope(context, command.case_id, 1), child_id=uuid4(), unit="skole-fjell", concern="."
    )
    return [raised]


ELSEWHERE = AggregateType[CaseFile, Open, Context](
    name="case elsewhere", evolve=evolve, decide=opened_elsewhere, creates=(Open,)
)


def test_a_policy_writes_every_order_of_one_event_each_on_its_own_aggregate_type(
    app: CaseLog, env: dict[str, str]
) -> None:
    # Given two open cases, and a policy that makes three orders of each bright spot: a note on
    # its case, an empty note on the other (refused by a rule), a case opened in another unit
    commands = Commands(app, CASE)
    noted_on, refused_on, new_case = opened(commands), opened(commands), uuid4()

    def three(event: Event) -> list[Order[Any, Context]]:
        assert isinstance(event, BrightSpotNoted)
        context = caused_by(event, POLICY, Directory())
        return [
            Order(noted_on, Note(text=event.note), context),
            Order(refused_on, Note(text=""), context),
            Order(new_case, Open(case_id=new_case), context, ELSEWHERE),
        ]

    policy = NoteOnCase(env, CASE, three)
    try:
        # When a bright spot comes from upstream
        policy.process_event(upstream_spot(noted_on, "Lekte fint."), Tracking("upstream", 1))
        # Then the orders decided are written with its tracking record, the refused one skipped
        assert policy.recorder.has_tracking_id("upstream", 1)
    finally:
        policy.close()
    assert stored(app, noted_on) == ["ConcernRaised", "BrightSpotNoted"]
    assert stored(app, refused_on) == ["ConcernRaised"]
    # And the order that names its aggregate type was decided by that type's rules
    (raised,) = app.events.get(new_case)
    assert isinstance(raised, ConcernRaised)
    assert raised.unit == "skole-fjell"


def test_two_orders_of_one_event_for_the_same_aggregate_are_a_fault_and_nothing_is_written(
    app: CaseLog, env: dict[str, str]
) -> None:
    # Given a policy that orders two notes on one case for one event (the second would be
    # decided on the case without the first, and refused by the store again and again)
    case_id = opened(Commands(app, CASE))

    def twice(event: Event) -> list[Order[Note, Context]]:
        context = caused_by(event, POLICY, Directory())
        return [Order(case_id, Note(text=text), context) for text in ("Én.", "To.")]

    policy = NoteOnCase(env, CASE, twice)
    try:
        # When an event comes, then it fails saying so (the loop parks it), and nothing is written
        with pytest.raises(ValueError, match="one order per aggregate"):
            policy.process_event(upstream_spot(case_id, "x"), Tracking("upstream", 1))
        assert not policy.recorder.has_tracking_id("upstream", 1)
    finally:
        policy.close()
    assert stored(app, case_id) == ["ConcernRaised"]
