"""The rules of consent, each as given events / when a command / then events or a refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import msgspec
import pytest

from stafett_consent.domain.consent import (
    CHILD_CONSENTS_ALONE_FROM_AGE,
    CONSENT_ENDS_IN_THE_FUTURE,
    CONSENT_NAMES_SERVICES_AND_PURPOSES,
    ENDED_CONSENT_NEVER_CHANGES,
    EXPIRY_ONLY_WHEN_DUE,
    ONE_LIVE_CONSENT_PER_PARTY,
    ORAL_CONSENT_RECORDED_BY_EMPLOYEE,
    VALID_UNTIL_AFTER_VALID_FROM,
    WRITTEN_CONSENT_NEEDS_DOCUMENT,
    ChangeScope,
    Command,
    ConsentRules,
    ExpireConsent,
    GiveConsent,
    WithdrawConsent,
    add_months,
    decide,
    fold,
    refuse_second_live_consent,
)
from stafett_consent.domain.legal_basis import RecordLegalBasis, record_legal_basis
from stafett_contracts.consent import (
    ConsentEvent,
    ConsentExpired,
    ConsentGiven,
    ConsentScopeChanged,
    ConsentWithdrawn,
    Evidence,
    Party,
    Purpose,
)
from stafett_contracts.identity import Actor, Role
from stafett_runtime.domain import Context, NotAllowed, RuleViolation

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
CONSENT, CASE, CHILD = uuid4(), uuid4(), uuid4()
MOTHER = Party(kind="guardian", person="guardian-mother")
TEEN = Party(kind="child", person="child-16")
WRITTEN = Evidence(form="written", document_ref="archive/2026/17", document_sha256="ab" * 32)
EMPLOYEE = Actor(person="teacher-1", role=Role.EMPLOYEE, service="skole-lia")
LEADER = Actor(person="rektor-1", role=Role.UNIT_LEADER, service="skole-lia")
THE_MOTHER = Actor(person=MOTHER.person, role=Role.GUARDIAN)
THE_FATHER = Actor(person="guardian-father", role=Role.GUARDIAN)
THE_TEEN = Actor(person=TEEN.person, role=Role.CHILD)
AUDITOR = Actor(person="tilsyn-1", role=Role.AUDITOR)
ADMINISTRATOR = Actor(person="admin-1", role=Role.ADMINISTRATOR)
TIMER = Actor(person="consent-expiry-timer", role=Role.SYSTEM, service="consent")


def by(actor: Actor, at: datetime = NOW) -> Context:
    return Context(actor=actor, now=at, correlation_id="test")


def giving(**changes: object) -> GiveConsent:
    """The mother's written consent to PPT and the health clinic, for cooperation."""
    command = GiveConsent(
        case_id=CASE,
        child_id=CHILD,
        given_by=MOTHER,
        services=("ppt", "helsestasjon"),
        purposes=(Purpose.COOPERATION,),
        valid_from=NOW,
        evidence=WRITTEN,
    )
    return msgspec.structs.replace(command, **changes)


def when(
    history: list[ConsentEvent],
    command: Command,
    context: Context,
    rules: ConsentRules | None = None,
) -> list[ConsentEvent]:
    return decide(fold(history), command, context, CONSENT, rules)


def given(*steps: tuple[Command, Context]) -> list[ConsentEvent]:
    history: list[ConsentEvent] = []
    for command, context in steps:
        history += when(history, command, context)
    return history


def refused(
    rule: str,
    history: list[ConsentEvent],
    command: Command,
    context: Context,
    rules: ConsentRules | None = None,
) -> None:
    with pytest.raises(RuleViolation) as refusal:
        when(history, command, context, rules)
    assert refusal.value.rule == rule


# Who consents, and how


def test_a_child_consents_alone_only_from_the_age_threshold() -> None:
    teen = giving(given_by=TEEN, evidence=WRITTEN)
    refused(
        CHILD_CONSENTS_ALONE_FROM_AGE, [], msgspec.structs.replace(teen, child_age=14), by(THE_TEEN)
    )
    refused(CHILD_CONSENTS_ALONE_FROM_AGE, [], teen, by(THE_TEEN))  # no age stated
    (event,) = when([], msgspec.structs.replace(teen, child_age=15), by(THE_TEEN))
    assert isinstance(event, ConsentGiven)
    assert event.given_by == TEEN


def test_the_age_threshold_is_configurable_and_may_be_higher_for_named_services() -> None:
    rules = ConsentRules(child_age=15, child_age_by_service={"helsestasjon": 16})
    fifteen = giving(given_by=TEEN, child_age=15)
    refused(CHILD_CONSENTS_ALONE_FROM_AGE, [], fifteen, by(THE_TEEN), rules)
    only_ppt = msgspec.structs.replace(fifteen, services=("ppt",))
    assert when([], only_ppt, by(THE_TEEN), rules)
    assert when([], msgspec.structs.replace(fifteen, child_age=16), by(THE_TEEN), rules)


def test_validity_defaults_to_twelve_months_and_is_configurable() -> None:
    (default,) = when([], giving(), by(EMPLOYEE))
    assert isinstance(default, ConsentGiven)
    assert default.valid_until == datetime(2027, 3, 2, 9, 0, tzinfo=UTC)
    (six,) = when([], giving(), by(EMPLOYEE), ConsentRules(validity_months=6))
    assert isinstance(six, ConsentGiven)
    assert six.valid_until == datetime(2026, 9, 2, 9, 0, tzinfo=UTC)
    assert add_months(datetime(2026, 1, 31, tzinfo=UTC), 1) == datetime(2026, 2, 28, tzinfo=UTC)


def test_valid_until_must_be_after_valid_from() -> None:
    later = NOW + timedelta(days=30)
    refused(
        VALID_UNTIL_AFTER_VALID_FROM,
        [],
        giving(valid_from=later, valid_until=later),
        by(EMPLOYEE),
    )


def test_a_consent_must_end_in_the_future() -> None:
    last_year = NOW - timedelta(days=400)
    refused(
        CONSENT_ENDS_IN_THE_FUTURE,
        [],
        giving(valid_from=last_year, valid_until=NOW - timedelta(days=1)),
        by(EMPLOYEE),
    )


def test_written_consent_needs_a_document_reference_and_its_sha256() -> None:
    no_hash = Evidence(form="written", document_ref="archive/2026/17")
    no_document = Evidence(form="written", document_sha256="ab" * 32)
    for evidence in (no_hash, no_document):
        refused(WRITTEN_CONSENT_NEEDS_DOCUMENT, [], giving(evidence=evidence), by(EMPLOYEE))


def test_oral_consent_is_recorded_by_the_employee_who_heard_it() -> None:
    heard_by_teacher = Evidence(form="oral", recorded_by=EMPLOYEE.person)
    refused(
        ORAL_CONSENT_RECORDED_BY_EMPLOYEE,
        [],
        giving(evidence=Evidence(form="oral")),
        by(EMPLOYEE),
    )
    refused(ORAL_CONSENT_RECORDED_BY_EMPLOYEE, [], giving(evidence=heard_by_teacher), by(LEADER))
    refused(
        ORAL_CONSENT_RECORDED_BY_EMPLOYEE,
        [],
        giving(evidence=Evidence(form="oral", recorded_by=THE_MOTHER.person)),
        by(THE_MOTHER),
    )
    (event,) = when([], giving(evidence=heard_by_teacher), by(EMPLOYEE))
    assert isinstance(event, ConsentGiven)
    assert event.evidence.recorded_by == EMPLOYEE.person


def test_consent_is_given_to_at_least_one_service_for_at_least_one_purpose() -> None:
    refused(CONSENT_NAMES_SERVICES_AND_PURPOSES, [], giving(services=()), by(EMPLOYEE))
    refused(CONSENT_NAMES_SERVICES_AND_PURPOSES, [], giving(purposes=()), by(EMPLOYEE))


def test_guardians_and_children_give_consent_only_for_themselves() -> None:
    with pytest.raises(NotAllowed):
        when([], giving(), by(THE_FATHER))
    with pytest.raises(NotAllowed):
        when([], giving(given_by=TEEN, child_age=16), by(THE_MOTHER))
    (event,) = when([], giving(), by(THE_MOTHER))
    assert event.actor == THE_MOTHER


def test_employees_and_unit_leaders_record_consent_on_the_partys_behalf() -> None:
    for actor in (EMPLOYEE, LEADER):
        (event,) = when([], giving(), by(actor))
        assert isinstance(event, ConsentGiven)
        assert (event.given_by, event.actor) == (MOTHER, actor)


def test_auditors_and_administrators_never_write() -> None:
    history = given((giving(), by(EMPLOYEE)))
    scope = ChangeScope(services=("ppt",), purposes=(Purpose.COOPERATION,))
    attempts: list[tuple[list[ConsentEvent], Command]] = [
        ([], giving()),
        (history, WithdrawConsent()),
        (history, scope),
    ]
    for actor in (AUDITOR, ADMINISTRATOR):
        for events, command in attempts:
            with pytest.raises(NotAllowed):
                when(events, command, by(actor))
        with pytest.raises(NotAllowed):
            record_legal_basis(reporting_to_child_welfare(), by(actor), uuid4())


def test_one_live_consent_per_case_and_party() -> None:
    mothers = fold(given((giving(), by(EMPLOYEE))))
    assert mothers is not None
    with pytest.raises(RuleViolation) as refusal:
        refuse_second_live_consent([mothers], MOTHER, NOW)
    assert refusal.value.rule == ONE_LIVE_CONSENT_PER_PARTY
    refuse_second_live_consent([mothers], TEEN, NOW)  # another party may
    refuse_second_live_consent([mothers], MOTHER, mothers.scope.valid_until)  # once it ended


# Changing the scope


def test_a_scope_change_starts_a_new_scope_from_that_instant() -> None:
    history = given((giving(), by(EMPLOYEE)))
    later = NOW + timedelta(days=10)
    change = ChangeScope(services=("ppt", "bup"), purposes=(Purpose.COOPERATION, Purpose.TVIST))
    (event,) = when(history, change, by(THE_MOTHER, later))
    assert isinstance(event, ConsentScopeChanged)
    consent = fold([*history, event])
    assert consent is not None
    assert [s.services for s in consent.scopes] == [("ppt", "helsestasjon"), ("ppt", "bup")]
    assert consent.scopes[1].since == later
    assert consent.scope.valid_until == consent.scopes[0].valid_until  # end kept


def test_a_scope_change_that_changes_nothing_returns_no_events() -> None:
    history = given((giving(), by(EMPLOYEE)))
    same = ChangeScope(services=("helsestasjon", "ppt"), purposes=(Purpose.COOPERATION,))
    assert when(history, same, by(EMPLOYEE)) == []


def test_a_childs_scope_change_is_checked_against_the_age_threshold() -> None:
    history = given((giving(given_by=TEEN, child_age=16, services=("ppt",)), by(THE_TEEN)))
    change = ChangeScope(services=("ppt", "bup"), purposes=(Purpose.COOPERATION,))
    refused(CHILD_CONSENTS_ALONE_FROM_AGE, history, change, by(THE_TEEN))
    assert when(history, msgspec.structs.replace(change, child_age=16), by(THE_TEEN))


# Withdrawal


def test_withdrawal_takes_effect_from_that_instant_wholly() -> None:
    history = given((giving(), by(THE_MOTHER)))
    later = NOW + timedelta(days=3)
    (event,) = when(history, WithdrawConsent(reason="we want to pause"), by(THE_MOTHER, later))
    assert isinstance(event, ConsentWithdrawn)
    assert event.services == ()
    consent = fold([*history, event])
    assert consent is not None
    assert consent.withdrawn_at == later


def test_withdrawal_for_named_services_keeps_the_rest() -> None:
    history = given((giving(), by(THE_MOTHER)))
    later = NOW + timedelta(days=3)
    (event,) = when(history, WithdrawConsent(services=("helsestasjon",)), by(EMPLOYEE, later))
    consent = fold([*history, event])
    assert consent is not None
    assert consent.withdrawn_at is None
    assert consent.scope.services == ("ppt",)
    assert consent.scope.since == later


def test_withdrawing_every_service_by_name_withdraws_wholly() -> None:
    history = given((giving(), by(THE_MOTHER)))
    (event,) = when(history, WithdrawConsent(services=("ppt", "helsestasjon")), by(THE_MOTHER))
    consent = fold([*history, event])
    assert consent is not None
    assert consent.withdrawn_at == NOW


def test_repeating_a_withdrawal_that_is_in_effect_returns_no_events() -> None:
    history = given((giving(), by(THE_MOTHER)), (WithdrawConsent(services=("ppt",)), by(EMPLOYEE)))
    assert when(history, WithdrawConsent(services=("ppt",)), by(EMPLOYEE)) == []
    history = given((giving(), by(THE_MOTHER)), (WithdrawConsent(), by(THE_MOTHER)))
    assert when(history, WithdrawConsent(), by(THE_MOTHER)) == []
    assert when(history, WithdrawConsent(services=("ppt",)), by(THE_MOTHER)) == []


def test_a_guardian_withdraws_only_their_own_consent() -> None:
    history = given((giving(), by(EMPLOYEE)))
    with pytest.raises(NotAllowed):
        when(history, WithdrawConsent(), by(THE_FATHER))


def test_nothing_changes_a_withdrawn_consent() -> None:
    history = given((giving(), by(THE_MOTHER)), (WithdrawConsent(), by(THE_MOTHER)))
    change = ChangeScope(services=("ppt",), purposes=(Purpose.COOPERATION,))
    refused(ENDED_CONSENT_NEVER_CHANGES, history, change, by(THE_MOTHER))


# Expiry


def test_expiry_only_when_due_and_recording_the_moment_the_consent_ended() -> None:
    history = given((giving(), by(EMPLOYEE)))
    end = datetime(2027, 3, 2, 9, 0, tzinfo=UTC)
    refused(EXPIRY_ONLY_WHEN_DUE, history, ExpireConsent(), by(TIMER, end - timedelta(seconds=1)))
    (event,) = when(history, ExpireConsent(), by(TIMER, end + timedelta(minutes=1)))
    assert isinstance(event, ConsentExpired)
    assert event.expired_at == end


def test_only_the_expiry_timer_expires_a_consent() -> None:
    history = given((giving(), by(EMPLOYEE)))
    with pytest.raises(NotAllowed):
        when(history, ExpireConsent(), by(EMPLOYEE, NOW + timedelta(days=400)))


def test_repeating_an_expiry_or_expiring_a_withdrawn_consent_returns_no_events() -> None:
    after_end = NOW + timedelta(days=400)
    expired = given((giving(), by(EMPLOYEE)), (ExpireConsent(), by(TIMER, after_end)))
    assert when(expired, ExpireConsent(), by(TIMER, after_end)) == []
    withdrawn = given((giving(), by(EMPLOYEE)), (WithdrawConsent(), by(EMPLOYEE)))
    assert when(withdrawn, ExpireConsent(), by(TIMER, after_end)) == []


def test_nothing_changes_an_expired_consent() -> None:
    after_end = NOW + timedelta(days=400)
    expired = given((giving(), by(EMPLOYEE)), (ExpireConsent(), by(TIMER, after_end)))
    extend = ChangeScope(
        services=("ppt",), purposes=(Purpose.COOPERATION,), valid_until=after_end + timedelta(30)
    )
    refused(ENDED_CONSENT_NEVER_CHANGES, expired, extend, by(EMPLOYEE, after_end))
    refused(ENDED_CONSENT_NEVER_CHANGES, expired, WithdrawConsent(), by(EMPLOYEE, after_end))


def test_a_consent_past_its_end_is_ended_before_the_timer_has_expired_it() -> None:
    history = given((giving(), by(EMPLOYEE)))
    after_end = NOW + timedelta(days=400)
    extend = ChangeScope(
        services=("ppt",), purposes=(Purpose.COOPERATION,), valid_until=after_end + timedelta(1)
    )
    refused(ENDED_CONSENT_NEVER_CHANGES, history, extend, by(EMPLOYEE, after_end))


# Legal basis


def reporting_to_child_welfare() -> RecordLegalBasis:
    return RecordLegalBasis(
        case_id=CASE,
        child_id=CHILD,
        service="barnevern",
        legal_basis="barnevernsloven § 13-2 (opplysningsplikt)",
        justification="reason to believe the child is subject to violence",
    )


def test_sharing_under_a_legal_basis_is_recorded_by_the_employee_and_never_blocked() -> None:
    basis_id: UUID = uuid4()
    (event,) = record_legal_basis(reporting_to_child_welfare(), by(EMPLOYEE), basis_id)
    assert (event.aggregate_id, event.service, event.shared_by) == (
        basis_id,
        "barnevern",
        EMPLOYEE.person,
    )
    with pytest.raises(NotAllowed):
        record_legal_basis(reporting_to_child_welfare(), by(THE_MOTHER), uuid4())


def test_deciding_twice_gives_the_same_events() -> None:
    assert when([], giving(), by(EMPLOYEE)) == when([], giving(), by(EMPLOYEE))
