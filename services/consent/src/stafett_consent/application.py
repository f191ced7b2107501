"""The consent application: the CONSENT stream, and the command path on its two kinds of record,
consents and legal bases (`stafett_runtime.commands`: load the state, cached and brought up to
date with only its newer events; decide; append atomically).

Synchronous, as the store is: the HTTP handlers and the expiry timer call it on worker threads.
A person's command comes with the facts of its case (`domain.facts.Facts`), which the API looks
up: the application reads only the CONSENT stream.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID, uuid4

import msgspec
import structlog
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import EnvType

from stafett_consent.domain import legal_basis
from stafett_consent.domain.consent import (
    ChangeScope,
    Command,
    Consent,
    ConsentContext,
    ConsentRules,
    ExpireConsent,
    GiveConsent,
    WithdrawConsent,
    decide,
    evolve,
)
from stafett_consent.domain.facts import Facts
from stafett_consent.domain.legal_basis import (
    LegalBasisContext,
    RecordLegalBasis,
    record_legal_basis,
)
from stafett_consent.index import CaseIndex
from stafett_contracts.consent import LegalBasisRecorded
from stafett_contracts.identity import Actor, Role
from stafett_runtime.commands import AggregateType, Commands
from stafett_runtime.contracts import ContractApplication
from stafett_runtime.domain import Context
from stafett_runtime.index import Index, Source

log = structlog.get_logger(__name__)

EXPIRY_TIMER = Actor(person="consent-expiry-timer", role=Role.SYSTEM, service="consent")


CONSENT = AggregateType[Consent, Command, ConsentContext](
    name="consent", evolve=evolve, decide=decide, creates=(GiveConsent,)
)
LEGAL_BASIS = AggregateType[LegalBasisRecorded, RecordLegalBasis, LegalBasisContext](
    name="legal basis",
    evolve=legal_basis.evolve,
    decide=record_legal_basis,
    creates=(RecordLegalBasis,),
)


class CaseConsents(msgspec.Struct, frozen=True, kw_only=True):
    consents: list[Consent]
    legal_bases: list[LegalBasisRecorded]


class Consents(ContractApplication):
    name = "consent"

    def __init__(self, env: EnvType | None = None, rules: ConsentRules | None = None) -> None:
        super().__init__(env)
        self.rules = rules or ConsentRules()
        self.consents = Commands(self, CONSENT)
        self.legal_bases = Commands(self, LEGAL_BASIS)
        self._index = Index(CaseIndex(), Source(self))
        self._index.catch_up()

    # Commands

    def give(self, command: GiveConsent, context: Context, facts: Facts) -> tuple[UUID, int]:
        """A new consent under a new id, decided on the case's consents as this instance has
        read them (one live consent per case and party)."""
        consent_id = uuid4()
        with self._index.caught_up() as index:
            on_record = index.consents_of(command.case_id)
        others = tuple(self.consent(c) for c in on_record)
        on_case = ConsentContext.of(
            context, consent_id=consent_id, rules=self.rules, facts=facts, case_consents=others
        )
        decision = self.consents.handle(consent_id, command, on_case)
        self._index.catch_up()
        return consent_id, decision.version

    def change_scope(
        self, consent_id: UUID, command: ChangeScope, context: Context, facts: Facts
    ) -> int:
        return self._handle(consent_id, command, context, command.expected_version, facts)

    def withdraw(
        self, consent_id: UUID, command: WithdrawConsent, context: Context, facts: Facts
    ) -> int:
        return self._handle(consent_id, command, context, command.expected_version, facts)

    def record_legal_basis(
        self, command: RecordLegalBasis, context: Context, facts: Facts
    ) -> tuple[UUID, int]:
        basis_id = uuid4()
        on_case = LegalBasisContext.of(context, basis_id=basis_id, facts=facts)
        decision = self.legal_bases.handle(basis_id, command, on_case)
        self._index.catch_up()
        return basis_id, decision.version

    def expire_due(self, now: datetime) -> list[UUID]:
        """Expire every consent whose end has passed; the ids expired by this call.

        Safe to run in several instances at once: a consent already expired decides to nothing,
        and of two concurrent expiries the second is refused by the store (IntegrityError).
        """
        with self._index.caught_up() as index:
            due = index.due(now)
        expired: list[UUID] = []
        for consent_id in due:
            context = Context(actor=EXPIRY_TIMER, now=now, correlation_id=uuid4().hex)
            timer = ConsentContext.of(context, consent_id=consent_id, rules=self.rules)
            try:
                decision = self.consents.handle(consent_id, ExpireConsent(), timer)
            except IntegrityError:
                if not self.consent(consent_id).has_ended(now):
                    log.warning("consent not expired, trying again", consent_id=str(consent_id))
                continue
            if decision.events:
                expired.append(consent_id)
            else:
                with self._index.holding() as index:
                    index.forget(consent_id)
        self._index.catch_up()
        return expired

    # Queries

    def consent(self, consent_id: UUID) -> Consent:
        return self.consents.get(consent_id)

    def consents_of_case(self, case_id: UUID) -> CaseConsents:
        with self._index.caught_up() as index:
            consents, legal_bases = index.consents_of(case_id), index.legal_bases_of(case_id)
        return CaseConsents(
            consents=[self.consent(c) for c in consents],
            legal_bases=[self.legal_bases.get(b) for b in legal_bases],
        )

    # Inside

    def _handle(
        self,
        consent_id: UUID,
        command: Command,
        context: Context,
        expected_version: int | None,
        facts: Facts,
    ) -> int:
        on_case = ConsentContext.of(context, consent_id=consent_id, rules=self.rules, facts=facts)
        decision = self.consents.handle(consent_id, command, on_case, expected_version)
        self._index.catch_up()
        return decision.version
