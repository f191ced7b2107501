"""May service S see case C for purpose P at time T? Given the case's events, then the answer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

from stafett_consent.domain.consent import (
    ChangeScope,
    Command,
    Consent,
    ExpireConsent,
    GiveConsent,
    WithdrawConsent,
    decide,
    fold,
)
from stafett_consent.domain.coverage import may_see
from stafett_consent.domain.facts import Facts
from stafett_consent.domain.legal_basis import RecordLegalBasis, record_legal_basis
from stafett_contracts.casefile import CaseFile
from stafett_contracts.consent import (
    ConsentEvent,
    Evidence,
    LegalBasisRecorded,
    Party,
    Purpose,
)
from stafett_contracts.identity import Actor, Role
from stafett_runtime.domain import Context
from stafett_runtime.testing import TEST_DIRECTORY, a_child

DAY = timedelta(days=1)
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
END = START + 100 * DAY
CASE = uuid4()
MOTHER = Party(kind="guardian", person="guardian-mother")
FATHER = Party(kind="guardian", person="guardian-father")
EMPLOYEE = Actor(person="teacher-1", role=Role.EMPLOYEE, service="skole-lia")
CHILD_WELFARE = Actor(person="bv-1", role=Role.EMPLOYEE, service="barnevern")
TIMER = Actor(person="consent-expiry-timer", role=Role.SYSTEM, service="consent")
COOPERATION, TVIST = Purpose.COOPERATION, Purpose.TVIST
# A case raised at Lia school before START, about a child whose guardians are both parents.
CHILD = a_child(MOTHER.person, FATHER.person)
FACTS = Facts(
    case=CaseFile(
        id=CASE,
        version=1,
        child_id=CHILD.child_id,
        unit="skole-lia",
        raised_at=START - DAY,
        concern="often tired",
        services=("skole-lia",),
    ),
    child=CHILD,
)


def at(moment: datetime, actor: Actor = EMPLOYEE) -> Context:
    return Context(actor=actor, now=moment, correlation_id="test", directory=TEST_DIRECTORY)


def consent_of(
    party: Party, *steps: tuple[Command, Context], services: tuple[str, ...] = ("ppt", "bup")
) -> Consent:
    """A written consent given at START until END, then the steps, folded."""
    give = GiveConsent(
        case_id=CASE,
        given_by=party,
        services=services,
        purposes=(COOPERATION,),
        valid_from=START,
        valid_until=END,
        evidence=Evidence(form="written", document_ref="doc-1", document_sha256="cd" * 32),
    )
    consent_id = uuid4()
    history: list[ConsentEvent] = []
    for command, context in [(give, at(START)), *steps]:
        history += decide(fold(history), command, context, consent_id, facts=FACTS)
    consent = fold(history)
    assert consent is not None
    return consent


def report_to_child_welfare(moment: datetime) -> LegalBasisRecorded:
    command = RecordLegalBasis(
        case_id=CASE,
        service="barnevern",
        legal_basis="barnevernsloven § 2-2",
        justification="examining a report that the child is neglected",
    )
    (event,) = record_legal_basis(command, at(moment, CHILD_WELFARE), uuid4(), FACTS)
    return event


def test_a_consent_covers_its_services_for_its_purposes_within_its_validity() -> None:
    consent = consent_of(MOTHER)
    answer = may_see("ppt", COOPERATION, START + DAY, [consent], [])
    assert answer.allowed
    assert answer.basis is not None
    assert (answer.basis.kind, answer.basis.id, answer.until) == ("consent", consent.id, END)
    assert not may_see("ppt", TVIST, START + DAY, [consent], []).allowed  # another purpose
    assert not may_see("barnevern", COOPERATION, START + DAY, [consent], []).allowed
    assert not may_see("ppt", COOPERATION, START - DAY, [consent], []).allowed  # before
    assert not may_see("ppt", COOPERATION, END, [consent], []).allowed  # valid_until excluded


def test_without_any_consent_nobody_sees_the_case() -> None:
    answer = may_see("ppt", COOPERATION, START, [], [])
    assert not answer.allowed
    assert answer.basis is None
    assert "no consent" in answer.reason


def test_withdrawal_for_one_service_ends_only_that_service_from_that_instant() -> None:
    withdrawn = START + 10 * DAY
    consent = consent_of(MOTHER, (WithdrawConsent(services=("bup",)), at(withdrawn)))
    assert may_see("bup", COOPERATION, withdrawn - timedelta(seconds=1), [consent], []).allowed
    assert not may_see("bup", COOPERATION, withdrawn, [consent], []).allowed
    assert may_see("ppt", COOPERATION, withdrawn + DAY, [consent], []).allowed
    before = may_see("bup", COOPERATION, START + DAY, [consent], [])
    assert before.until == withdrawn  # known now: the cover ended at the withdrawal


def test_wholly_withdrawn_consent_covers_nothing_from_that_instant() -> None:
    withdrawn = START + 10 * DAY
    consent = consent_of(MOTHER, (WithdrawConsent(), at(withdrawn)))
    assert not may_see("ppt", COOPERATION, withdrawn, [consent], []).allowed
    earlier = may_see("ppt", COOPERATION, withdrawn - DAY, [consent], [])
    assert earlier.allowed  # what was lawfully shared before stays lawful
    assert earlier.until == withdrawn


def test_an_answer_for_a_past_moment_uses_the_scope_of_that_moment() -> None:
    changed = START + 20 * DAY
    widened = ChangeScope(services=("ppt", "bup"), purposes=(COOPERATION, TVIST))
    narrowed = ChangeScope(services=("ppt",), purposes=(COOPERATION, TVIST))
    consent = consent_of(MOTHER, (widened, at(changed)), (narrowed, at(changed + 10 * DAY)))
    assert not may_see("ppt", TVIST, changed - DAY, [consent], []).allowed
    assert may_see("ppt", TVIST, changed, [consent], []).allowed
    assert may_see("bup", TVIST, changed + DAY, [consent], []).until == changed + 10 * DAY
    assert not may_see("bup", COOPERATION, changed + 10 * DAY, [consent], []).allowed
    assert may_see("bup", COOPERATION, changed - DAY, [consent], []).allowed


def test_an_extended_consent_covers_until_its_new_end() -> None:
    new_end = END + 50 * DAY
    extended = ChangeScope(services=("ppt", "bup"), purposes=(COOPERATION,), valid_until=new_end)
    consent = consent_of(MOTHER, (extended, at(START + 30 * DAY)))
    assert may_see("ppt", COOPERATION, START + DAY, [consent], []).until == new_end
    assert may_see("ppt", COOPERATION, END + DAY, [consent], []).allowed


def test_an_expired_consent_covers_nothing_after_its_end() -> None:
    consent = consent_of(MOTHER, (ExpireConsent(), at(END + DAY, TIMER)))
    assert consent.expired_at == END
    assert may_see("ppt", COOPERATION, END - DAY, [consent], []).allowed
    assert not may_see("ppt", COOPERATION, END, [consent], []).allowed


def test_each_guardians_consent_counts_and_the_longest_cover_is_named() -> None:
    mothers = consent_of(MOTHER, (WithdrawConsent(), at(START + 5 * DAY)))
    fathers = consent_of(FATHER)
    answer = may_see("ppt", COOPERATION, START + DAY, [mothers, fathers], [])
    assert answer.basis is not None
    assert (answer.basis.id, answer.until) == (fathers.id, END)
    assert may_see("ppt", COOPERATION, START + 6 * DAY, [mothers, fathers], []).allowed


def test_a_legal_basis_covers_its_service_from_when_it_was_recorded_whatever_consent_says() -> None:
    reported = START + 3 * DAY
    basis = report_to_child_welfare(reported)
    withdrawn = consent_of(MOTHER, (WithdrawConsent(), at(START + DAY)))
    answer = may_see("barnevern", TVIST, reported, [withdrawn], [basis])
    assert answer.allowed
    assert answer.basis is not None
    assert (answer.basis.kind, answer.basis.id, answer.until) == (
        "legal_basis",
        basis.aggregate_id,
        None,
    )
    assert not may_see("barnevern", TVIST, reported - DAY, [withdrawn], [basis]).allowed
    assert not may_see("ppt", COOPERATION, reported, [withdrawn], [basis]).allowed
