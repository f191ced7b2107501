"""The rules of consent, each as given events / when a command / then events or a refusal.

The facts every decision reads come from where production takes them: the case from its events
(folded by `stafett_contracts.casefile`), the child from the register (`a_child`), the units from
the test municipality's directory. Each refusal names its rule.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

import msgspec
import pytest

from stafett_consent.domain.consent import (
    CHILD_CONSENTS_ALONE_FROM_AGE,
    CONSENT_BEGINS_WITHIN_A_YEAR,
    CONSENT_ENDS_IN_THE_FUTURE,
    CONSENT_ENDS_WITHIN_THREE_VALIDITIES,
    CONSENT_NAMES_SERVICES_AND_PURPOSES,
    CONSENT_NOT_BACKDATED,
    CONSENT_NOT_BEFORE_THE_CASE,
    ENDED_CONSENT_NEVER_CHANGES,
    EXPIRY_ONLY_WHEN_DUE,
    GUARDIAN_IN_THE_REGISTER,
    ONE_LIVE_CONSENT_PER_PARTY,
    ORAL_CONSENT_RECORDED_BY_EMPLOYEE,
    PARTY_ACTS_FOR_THEMSELVES,
    ROLE_GIVES_NO_CONSENT,
    SERVICE_IN_DIRECTORY,
    SERVICE_TAKES_PART,
    VALID_UNTIL_AFTER_VALID_FROM,
    WRITTEN_CONSENT_NEEDS_DOCUMENT,
    ChangeScope,
    Command,
    ConsentContext,
    ConsentingParty,
    ConsentRules,
    EvidenceOfConsent,
    ExpireConsent,
    GiveConsent,
    WithdrawConsent,
    add_months,
    decide,
    fold,
    refuse_second_live_consent,
)
from stafett_consent.domain.facts import Facts
from stafett_consent.domain.legal_basis import (
    LAW_EMPOWERS_THE_SERVICE,
    LEGAL_BASIS_FOR_OWN_SERVICE,
    LegalBasisContext,
    RecordLegalBasis,
    record_legal_basis,
)
from stafett_contracts import casefile
from stafett_contracts.access import GUARDIAN_OF_THE_CHILD
from stafett_contracts.case import AgencyJoined, CaseEvent, ConcernRaised
from stafett_contracts.consent import (
    ConsentEvent,
    ConsentExpired,
    ConsentGiven,
    ConsentScopeChanged,
    ConsentWithdrawn,
    LegalBasisRecorded,
    Purpose,
)
from stafett_contracts.identity import Actor, Role
from stafett_runtime.domain import Context, NotAllowed, RuleViolation, envelope
from stafett_runtime.testing import TEST_DIRECTORY, a_child

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
DAY = timedelta(days=1)
RAISED = NOW - timedelta(days=7)
CONSENT, CASE = uuid4(), uuid4()
MOTHER = ConsentingParty(kind="guardian", person="guardian-mother")
TEEN = ConsentingParty(kind="child", person="child-16")
# The register's child of the case: 16 today, with both parents as guardians.
CHILD = a_child("guardian-mother", "guardian-father", born=date(2010, 1, 10), person=TEEN.person)
WRITTEN = EvidenceOfConsent(
    form="written", document_ref="archive/2026/17", document_sha256="ab" * 32
)
EMPLOYEE = Actor(person="teacher-1", role=Role.EMPLOYEE, service="skole-lia")  # the case's unit
LEADER = Actor(person="rektor-1", role=Role.UNIT_LEADER, service="skole-lia")
PPT_WORKER = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")  # joined the case
BUP_WORKER = Actor(person="bup-1", role=Role.EMPLOYEE, service="bup")  # not on the case
NOWHERE = Actor(person="x-1", role=Role.EMPLOYEE, service="skole-nowhere")  # no such unit
CHILD_WELFARE = Actor(person="bv-1", role=Role.EMPLOYEE, service="barnevern")
THE_MOTHER = Actor(person=MOTHER.person, role=Role.GUARDIAN)
THE_FATHER = Actor(person="guardian-father", role=Role.GUARDIAN)
ANOTHER_MOTHER = Actor(person="guardian-of-another-child", role=Role.GUARDIAN)
THE_TEEN = Actor(person=TEEN.person, role=Role.CHILD)
AUDITOR = Actor(person="tilsyn-1", role=Role.AUDITOR)
ADMINISTRATOR = Actor(person="admin-1", role=Role.ADMINISTRATOR)
TIMER = Actor(person="consent-expiry-timer", role=Role.SYSTEM, service="consent")


def a_case(raised_at: datetime = RAISED, joined: tuple[str, ...] = ("ppt",)) -> casefile.CaseFile:
    """The child's case as its events tell it: raised at Lia school, the services joined."""
    raised = Context(actor=EMPLOYEE, now=raised_at, correlation_id="case")
    events: list[CaseEvent] = [
        ConcernRaised(
            **envelope(raised, CASE, 1),
            child_id=CHILD.child_id,
            unit="skole-lia",
            concern="often tired and hungry",
        )
    ]
    for service in joined:
        events.append(
            AgencyJoined(
                **envelope(raised, CASE, len(events) + 1), service=service, basis="consent"
            )
        )
    case = casefile.fold(events)
    assert case is not None
    return case


FACTS = Facts(case=a_case(), child=CHILD)


def by(actor: Actor, at: datetime = NOW) -> Context:
    return Context(actor=actor, now=at, correlation_id="test", directory=TEST_DIRECTORY)


def giving(**changes: object) -> GiveConsent:
    """The mother's written consent to PPT and the health clinic, for cooperation, from now."""
    command = GiveConsent(
        case_id=CASE,
        given_by=MOTHER,
        services=("ppt", "helsestasjon"),
        purposes=(Purpose.COOPERATION,),
        valid_from=NOW,
        evidence=WRITTEN,
    )
    return msgspec.structs.replace(command, **changes)


def teens_own(**changes: object) -> GiveConsent:
    return giving(**{"given_by": TEEN, **changes})


def when(
    history: list[ConsentEvent],
    command: Command,
    context: Context,
    rules: ConsentRules | None = None,
    facts: Facts = FACTS,
) -> list[ConsentEvent]:
    on_case = ConsentContext.of(
        context, consent_id=CONSENT, rules=rules or ConsentRules(), facts=facts
    )
    return decide(fold(history), command, on_case)


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
    facts: Facts = FACTS,
) -> None:
    """The command breaks `rule` (409)."""
    with pytest.raises(RuleViolation) as refusal:
        when(history, command, context, rules, facts)
    assert refusal.value.rule == rule


def forbidden(
    rule: str,
    history: list[ConsentEvent],
    command: Command,
    context: Context,
    rules: ConsentRules | None = None,
    facts: Facts = FACTS,
) -> None:
    """The actor may not do this, by `rule` (403)."""
    with pytest.raises(NotAllowed) as refusal:
        when(history, command, context, rules, facts)
    assert refusal.value.rule == rule


def born_years_ago(years: int) -> Facts:
    """The case's child as the register would say, `years` old today."""
    birth_date = date(NOW.year - years, 1, 10)
    return Facts(case=FACTS.case, child=msgspec.structs.replace(CHILD, birth_date=birth_date))


# Who consents: the party in person, as the register says


def test_a_guardian_gives_consent_in_their_own_name_for_the_registers_child() -> None:
    (event,) = when([], giving(), by(THE_MOTHER))
    assert isinstance(event, ConsentGiven)
    assert (event.given_by, event.actor) == (MOTHER.recorded(), THE_MOTHER)
    assert event.child_id == CHILD.child_id  # the case's child, never the request's


def test_guardian_of_the_child_a_guardian_of_another_child_gives_no_consent_on_this_case() -> None:
    herself = ConsentingParty(kind="guardian", person=ANOTHER_MOTHER.person)
    forbidden(GUARDIAN_OF_THE_CHILD, [], giving(given_by=herself), by(ANOTHER_MOTHER))
    unknown_child = Facts(case=FACTS.case, child=None)
    forbidden(GUARDIAN_OF_THE_CHILD, [], giving(), by(THE_MOTHER), facts=unknown_child)


def test_party_acts_for_themselves_a_guardian_or_child_consents_only_in_their_own_name() -> None:
    forbidden(PARTY_ACTS_FOR_THEMSELVES, [], giving(), by(THE_FATHER))
    forbidden(PARTY_ACTS_FOR_THEMSELVES, [], teens_own(), by(THE_MOTHER))
    as_guardian = ConsentingParty(kind="guardian", person=TEEN.person)
    forbidden(PARTY_ACTS_FOR_THEMSELVES, [], giving(given_by=as_guardian), by(THE_TEEN))


def test_child_consents_alone_from_age_threshold_by_the_registers_birth_date() -> None:
    forbidden(
        CHILD_CONSENTS_ALONE_FROM_AGE, [], teens_own(), by(THE_TEEN), facts=born_years_ago(14)
    )
    (event,) = when([], teens_own(), by(THE_TEEN), facts=born_years_ago(15))
    assert isinstance(event, ConsentGiven)
    assert event.given_by == TEEN.recorded()


def test_child_consents_alone_only_as_the_registers_child_of_the_case() -> None:
    stranger = ConsentingParty(kind="child", person="some-other-child")
    as_stranger = Actor(person=stranger.person, role=Role.CHILD)
    forbidden(CHILD_CONSENTS_ALONE_FROM_AGE, [], teens_own(given_by=stranger), by(as_stranger))
    unknown_child = Facts(case=FACTS.case, child=None)
    forbidden(CHILD_CONSENTS_ALONE_FROM_AGE, [], teens_own(), by(THE_TEEN), facts=unknown_child)


def test_the_age_threshold_is_configurable_and_may_be_higher_for_named_services() -> None:
    rules = ConsentRules(child_age=15, child_age_by_service={"helsestasjon": 16})
    fifteen = born_years_ago(15)
    forbidden(CHILD_CONSENTS_ALONE_FROM_AGE, [], teens_own(), by(THE_TEEN), rules, fifteen)
    assert when([], teens_own(services=("ppt",)), by(THE_TEEN), rules, fifteen)
    assert when([], teens_own(), by(THE_TEEN), rules, born_years_ago(16))


def test_employees_and_unit_leaders_of_units_taking_part_record_consent_for_the_party() -> None:
    for actor in (EMPLOYEE, LEADER, PPT_WORKER):
        (event,) = when([], giving(), by(actor))
        assert isinstance(event, ConsentGiven)
        assert (event.given_by, event.actor) == (MOTHER.recorded(), actor)


def test_service_takes_part_an_employee_of_a_unit_not_on_the_case_records_no_consent() -> None:
    for outsider in (BUP_WORKER, NOWHERE):
        forbidden(SERVICE_TAKES_PART, [], giving(), by(outsider))


def test_guardian_in_the_register_an_employee_records_no_consent_of_an_invented_parent() -> None:
    invented = ConsentingParty(kind="guardian", person="someone-who-says-they-are-the-father")
    forbidden(GUARDIAN_IN_THE_REGISTER, [], giving(given_by=invented), by(EMPLOYEE))
    unknown_child = Facts(case=FACTS.case, child=None)
    forbidden(GUARDIAN_IN_THE_REGISTER, [], giving(), by(EMPLOYEE), facts=unknown_child)


def test_child_consents_alone_from_age_threshold_also_when_an_employee_records_it() -> None:
    forbidden(
        CHILD_CONSENTS_ALONE_FROM_AGE, [], teens_own(), by(EMPLOYEE), facts=born_years_ago(12)
    )
    (event,) = when([], teens_own(), by(EMPLOYEE))
    assert isinstance(event, ConsentGiven)
    assert (event.given_by, event.actor) == (TEEN.recorded(), EMPLOYEE)


def test_role_gives_no_consent_auditors_and_administrators_never_write() -> None:
    history = given((giving(), by(EMPLOYEE)))
    scope = ChangeScope(services=("ppt",), purposes=(Purpose.COOPERATION,))
    attempts: list[tuple[list[ConsentEvent], Command]] = [
        ([], giving()),
        (history, WithdrawConsent()),
        (history, scope),
    ]
    for actor in (AUDITOR, ADMINISTRATOR):
        for events, command in attempts:
            forbidden(ROLE_GIVES_NO_CONSENT, events, command, by(actor))
        with pytest.raises(NotAllowed):
            basis_recorded(child_welfare_investigates(), by(actor), uuid4())


# What a consent says


def test_written_consent_needs_a_document_reference_and_its_sha256() -> None:
    no_hash = EvidenceOfConsent(form="written", document_ref="archive/2026/17")
    no_document = EvidenceOfConsent(form="written", document_sha256="ab" * 32)
    for evidence in (no_hash, no_document):
        refused(WRITTEN_CONSENT_NEEDS_DOCUMENT, [], giving(evidence=evidence), by(EMPLOYEE))


def test_oral_consent_is_recorded_by_the_employee_who_heard_it() -> None:
    heard_by_teacher = EvidenceOfConsent(form="oral", recorded_by=EMPLOYEE.person)
    refused(
        ORAL_CONSENT_RECORDED_BY_EMPLOYEE,
        [],
        giving(evidence=EvidenceOfConsent(form="oral")),
        by(EMPLOYEE),
    )
    refused(ORAL_CONSENT_RECORDED_BY_EMPLOYEE, [], giving(evidence=heard_by_teacher), by(LEADER))
    refused(
        ORAL_CONSENT_RECORDED_BY_EMPLOYEE,
        [],
        giving(evidence=EvidenceOfConsent(form="oral", recorded_by=THE_MOTHER.person)),
        by(THE_MOTHER),
    )
    (event,) = when([], giving(evidence=heard_by_teacher), by(EMPLOYEE))
    assert isinstance(event, ConsentGiven)
    assert event.evidence.recorded_by == EMPLOYEE.person


def test_consent_is_given_to_at_least_one_service_for_at_least_one_purpose() -> None:
    refused(CONSENT_NAMES_SERVICES_AND_PURPOSES, [], giving(services=()), by(EMPLOYEE))
    refused(CONSENT_NAMES_SERVICES_AND_PURPOSES, [], giving(purposes=()), by(EMPLOYEE))


def test_service_in_directory_consent_is_given_only_to_units_of_the_directory() -> None:
    refused(SERVICE_IN_DIRECTORY, [], giving(services=("ppt", "made-up-service")), by(EMPLOYEE))


# When a consent holds


def test_consent_not_backdated_beyond_the_tolerance() -> None:
    in_2000 = datetime(2000, 1, 1, tzinfo=UTC)
    refused(CONSENT_NOT_BACKDATED, [], giving(valid_from=in_2000), by(EMPLOYEE))
    six_minutes_ago = NOW - timedelta(minutes=6)
    refused(CONSENT_NOT_BACKDATED, [], giving(valid_from=six_minutes_ago), by(EMPLOYEE))
    (event,) = when([], giving(valid_from=NOW - timedelta(minutes=4)), by(EMPLOYEE))
    assert isinstance(event, ConsentGiven)
    patient = ConsentRules(backdating_tolerance=timedelta(minutes=10))
    assert when([], giving(valid_from=six_minutes_ago), by(EMPLOYEE), patient)


def test_consent_not_before_the_case_was_raised() -> None:
    just_raised = Facts(case=a_case(raised_at=NOW - timedelta(minutes=1)), child=CHILD)
    before = giving(valid_from=NOW - timedelta(minutes=3))
    refused(CONSENT_NOT_BEFORE_THE_CASE, [], before, by(EMPLOYEE), facts=just_raised)


def test_consent_begins_within_a_year() -> None:
    later = add_months(NOW, 12)
    refused(CONSENT_BEGINS_WITHIN_A_YEAR, [], giving(valid_from=later + DAY), by(EMPLOYEE))
    assert when([], giving(valid_from=later), by(EMPLOYEE))


def test_consent_ends_within_three_validity_periods_given_or_changed() -> None:
    latest = add_months(NOW, 36)
    refused(
        CONSENT_ENDS_WITHIN_THREE_VALIDITIES, [], giving(valid_until=latest + DAY), by(EMPLOYEE)
    )
    history = given((giving(valid_until=latest), by(EMPLOYEE)))
    extend = ChangeScope(
        services=("ppt",), purposes=(Purpose.COOPERATION,), valid_until=latest + DAY
    )
    refused(CONSENT_ENDS_WITHIN_THREE_VALIDITIES, history, extend, by(EMPLOYEE, NOW + DAY))
    six_months = ConsentRules(validity_months=6)
    refused(
        CONSENT_ENDS_WITHIN_THREE_VALIDITIES,
        [],
        giving(valid_until=add_months(NOW, 19)),
        by(EMPLOYEE),
        six_months,
    )


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
    refused(
        CONSENT_ENDS_IN_THE_FUTURE,
        [],
        giving(valid_from=NOW - timedelta(minutes=4), valid_until=NOW - timedelta(minutes=1)),
        by(EMPLOYEE),
    )


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
    later = NOW + 10 * DAY
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


def test_service_takes_part_only_the_party_or_a_unit_on_the_case_changes_the_scope() -> None:
    history = given((giving(), by(THE_MOTHER)))
    change = ChangeScope(services=("ppt", "bup"), purposes=(Purpose.COOPERATION,))
    forbidden(SERVICE_TAKES_PART, history, change, by(BUP_WORKER))
    forbidden(PARTY_ACTS_FOR_THEMSELVES, history, change, by(THE_FATHER))
    assert when(history, change, by(PPT_WORKER))


def test_service_in_directory_a_new_scope_names_only_units_of_the_directory() -> None:
    history = given((giving(), by(THE_MOTHER)))
    change = ChangeScope(services=("ppt", "made-up-service"), purposes=(Purpose.COOPERATION,))
    refused(SERVICE_IN_DIRECTORY, history, change, by(THE_MOTHER))


def test_child_consents_alone_from_age_threshold_when_a_childs_scope_changes() -> None:
    rules = ConsentRules(child_age_by_service={"bup": 16})
    fifteen = born_years_ago(15)
    history = when([], teens_own(services=("ppt",)), by(THE_TEEN), rules, fifteen)
    change = ChangeScope(services=("ppt", "bup"), purposes=(Purpose.COOPERATION,))
    forbidden(CHILD_CONSENTS_ALONE_FROM_AGE, history, change, by(THE_TEEN), rules, fifteen)
    assert when(history, change, by(THE_TEEN), rules, born_years_ago(16))


# Withdrawal


def test_withdrawal_takes_effect_from_that_instant_wholly() -> None:
    history = given((giving(), by(THE_MOTHER)))
    later = NOW + 3 * DAY
    (event,) = when(history, WithdrawConsent(reason="we want to pause"), by(THE_MOTHER, later))
    assert isinstance(event, ConsentWithdrawn)
    assert event.services == ()
    consent = fold([*history, event])
    assert consent is not None
    assert consent.withdrawn_at == later


def test_withdrawal_for_named_services_keeps_the_rest() -> None:
    history = given((giving(), by(THE_MOTHER)))
    later = NOW + 3 * DAY
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


def test_party_acts_for_themselves_a_guardian_withdraws_only_their_own_consent() -> None:
    history = given((giving(), by(EMPLOYEE)))
    forbidden(PARTY_ACTS_FOR_THEMSELVES, history, WithdrawConsent(), by(THE_FATHER))


def test_service_takes_part_an_unrelated_employee_withdraws_no_guardians_consent() -> None:
    history = given((giving(), by(THE_MOTHER)))
    forbidden(SERVICE_TAKES_PART, history, WithdrawConsent(), by(BUP_WORKER))
    assert when(history, WithdrawConsent(), by(PPT_WORKER))  # on her behalf, taking part


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
        when(history, ExpireConsent(), by(EMPLOYEE, NOW + 400 * DAY))


def test_repeating_an_expiry_or_expiring_a_withdrawn_consent_returns_no_events() -> None:
    after_end = NOW + 400 * DAY
    expired = given((giving(), by(EMPLOYEE)), (ExpireConsent(), by(TIMER, after_end)))
    assert when(expired, ExpireConsent(), by(TIMER, after_end)) == []
    withdrawn = given((giving(), by(EMPLOYEE)), (WithdrawConsent(), by(EMPLOYEE)))
    assert when(withdrawn, ExpireConsent(), by(TIMER, after_end)) == []


def test_nothing_changes_an_expired_consent() -> None:
    after_end = NOW + 400 * DAY
    expired = given((giving(), by(EMPLOYEE)), (ExpireConsent(), by(TIMER, after_end)))
    extend = ChangeScope(
        services=("ppt",), purposes=(Purpose.COOPERATION,), valid_until=after_end + 30 * DAY
    )
    refused(ENDED_CONSENT_NEVER_CHANGES, expired, extend, by(EMPLOYEE, after_end))
    refused(ENDED_CONSENT_NEVER_CHANGES, expired, WithdrawConsent(), by(EMPLOYEE, after_end))


def test_a_consent_past_its_end_is_ended_before_the_timer_has_expired_it() -> None:
    history = given((giving(), by(EMPLOYEE)))
    after_end = NOW + 400 * DAY
    extend = ChangeScope(
        services=("ppt",), purposes=(Purpose.COOPERATION,), valid_until=after_end + DAY
    )
    refused(ENDED_CONSENT_NEVER_CHANGES, history, extend, by(EMPLOYEE, after_end))


# Legal basis


def basis_recorded(
    command: RecordLegalBasis, context: Context, basis_id: UUID
) -> list[LegalBasisRecorded]:
    return record_legal_basis(
        None, command, LegalBasisContext.of(context, basis_id=basis_id, facts=FACTS)
    )


def child_welfare_investigates(**changes: object) -> RecordLegalBasis:
    command = RecordLegalBasis(
        case_id=CASE,
        service="barnevern",
        legal_basis="barnevernsloven § 2-1",
        justification="a report of concern is being investigated",
    )
    return msgspec.structs.replace(command, **changes)


def test_a_unit_records_the_legal_basis_it_takes_part_under_for_the_cases_child() -> None:
    basis_id: UUID = uuid4()
    (event,) = basis_recorded(child_welfare_investigates(), by(CHILD_WELFARE), basis_id)
    assert (event.aggregate_id, event.service, event.shared_by, event.child_id) == (
        basis_id,
        "barnevern",
        CHILD_WELFARE.person,
        CHILD.child_id,
    )


def test_legal_basis_for_own_service_nobody_records_one_for_another_unit() -> None:
    for actor in (EMPLOYEE, PPT_WORKER, THE_MOTHER):
        with pytest.raises(NotAllowed) as refusal:
            basis_recorded(child_welfare_investigates(), by(actor), uuid4())
        assert refusal.value.rule == LEGAL_BASIS_FOR_OWN_SERVICE


def test_law_empowers_the_service_a_unit_names_a_provision_for_its_kind() -> None:
    health_law = child_welfare_investigates(legal_basis="helsepersonelloven § 33")
    with pytest.raises(NotAllowed) as refusal:
        basis_recorded(health_law, by(CHILD_WELFARE), uuid4())
    assert refusal.value.rule == LAW_EMPOWERS_THE_SERVICE
    assert "barnevernsloven § 2-1, barnevernsloven § 2-2" in str(refusal.value)


def test_law_empowers_the_service_a_unit_that_exists_nowhere_records_no_legal_basis() -> None:
    own = child_welfare_investigates(service="skole-nowhere")
    with pytest.raises(NotAllowed) as refusal:
        basis_recorded(own, by(NOWHERE), uuid4())
    assert refusal.value.rule == LAW_EMPOWERS_THE_SERVICE


def test_deciding_twice_gives_the_same_events() -> None:
    assert when([], giving(), by(EMPLOYEE)) == when([], giving(), by(EMPLOYEE))
