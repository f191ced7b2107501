"""The consent application: load a consent by folding its events, decide, save atomically.

Synchronous, as the store is: the HTTP handlers and the expiry timer call it on worker threads.
A person's command comes with the facts of its case (`domain.facts.Facts`), which the API looks
up: the application reads only the CONSENT stream.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import cast
from uuid import UUID, uuid4

import msgspec
import structlog
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import EnvType

from stafett_consent.domain.consent import (
    ChangeScope,
    Command,
    Consent,
    ConsentRules,
    ExpireConsent,
    GiveConsent,
    WithdrawConsent,
    decide,
    fold,
    refuse_second_live_consent,
)
from stafett_consent.domain.facts import Facts
from stafett_consent.domain.legal_basis import RecordLegalBasis, record_legal_basis
from stafett_consent.index import CaseIndex
from stafett_contracts.consent import ConsentEvent, LegalBasisRecorded
from stafett_contracts.envelope import Event
from stafett_contracts.identity import Actor, Role
from stafett_runtime.contracts import ContractApplication
from stafett_runtime.domain import Context, StaleVersion

log = structlog.get_logger(__name__)

EXPIRY_TIMER = Actor(person="consent-expiry-timer", role=Role.SYSTEM, service="consent")
_PAGE = 500  # notifications read at a time when catching up the index


class CaseConsents(msgspec.Struct, frozen=True, kw_only=True):
    consents: list[Consent]
    legal_bases: list[LegalBasisRecorded]


class Consents(ContractApplication):
    name = "consent"

    def __init__(self, env: EnvType | None = None, rules: ConsentRules | None = None) -> None:
        super().__init__(env)
        self.rules = rules or ConsentRules()
        self._index = CaseIndex()
        self._catch_up()

    # Commands

    def give(self, command: GiveConsent, context: Context, facts: Facts) -> tuple[UUID, int]:
        """A new consent under a new id. Who may give it is decided first, so that a refusal says
        nothing of the case's other consents. One live consent per case and party is checked
        against what this instance has read: two gives racing on two instances could both pass."""
        consent_id = uuid4()
        new = decide(None, command, context, consent_id, self.rules, facts)
        self._catch_up()
        existing = [self.consent(c) for c in self._index.consents_of(command.case_id)]
        refuse_second_live_consent(existing, command.given_by, context.now)
        self._save(new)
        return consent_id, len(new)

    def change_scope(
        self, consent_id: UUID, command: ChangeScope, context: Context, facts: Facts
    ) -> int:
        return self._handle(consent_id, command, context, command.expected_version, facts)[1]

    def withdraw(
        self, consent_id: UUID, command: WithdrawConsent, context: Context, facts: Facts
    ) -> int:
        return self._handle(consent_id, command, context, command.expected_version, facts)[1]

    def record_legal_basis(
        self, command: RecordLegalBasis, context: Context, facts: Facts
    ) -> tuple[UUID, int]:
        basis_id = uuid4()
        self._save(record_legal_basis(command, context, basis_id, facts))
        return basis_id, 1

    def expire_due(self, now: datetime) -> list[UUID]:
        """Expire every consent whose end has passed; the ids expired by this call.

        Safe to run in several instances at once: a consent already expired decides to nothing,
        and of two concurrent expiries the second is refused by the store (IntegrityError).
        """
        self._catch_up()
        expired: list[UUID] = []
        for consent_id in self._index.due(now):
            context = Context(actor=EXPIRY_TIMER, now=now, correlation_id=uuid4().hex)
            try:
                new, _ = self._handle(consent_id, ExpireConsent(), context)
            except IntegrityError:
                if not self.consent(consent_id).has_ended(now):
                    log.warning("consent not expired, trying again", consent_id=str(consent_id))
                continue
            if new:
                expired.append(consent_id)
            else:
                self._index.forget(consent_id)
        self._catch_up()
        return expired

    # Queries

    def consent(self, consent_id: UUID) -> Consent:
        state = fold(self._history(consent_id))
        if state is None:
            raise AggregateNotFoundError(consent_id)
        return state

    def consents_of_case(self, case_id: UUID) -> CaseConsents:
        self._catch_up()
        return CaseConsents(
            consents=[self.consent(c) for c in self._index.consents_of(case_id)],
            legal_bases=[self._legal_basis(b) for b in self._index.legal_bases_of(case_id)],
        )

    # Inside

    def _handle(
        self,
        consent_id: UUID,
        command: Command,
        context: Context,
        expected_version: int | None = None,
        facts: Facts | None = None,
    ) -> tuple[list[ConsentEvent], int]:
        """Decide on the consent's current state and save what follows: the new events, version."""
        history = self._history(consent_id)
        if not history:
            raise AggregateNotFoundError(consent_id)
        version = len(history)
        if expected_version is not None and expected_version != version:
            raise StaleVersion(expected_version, version)
        new = decide(fold(history), command, context, consent_id, self.rules, facts)
        self._save(new)
        return new, version + len(new)

    def _save(self, events: Sequence[Event]) -> None:
        if events:
            self.save(*events)
            self._catch_up()

    def _history(self, aggregate_id: UUID) -> list[ConsentEvent]:
        # The contract mapper gives back exactly the contract events stored (consent ones here).
        return cast(list[ConsentEvent], self.history(aggregate_id))

    def _legal_basis(self, basis_id: UUID) -> LegalBasisRecorded:
        (event,) = self._history(basis_id)
        assert isinstance(event, LegalBasisRecorded)
        return event

    def _catch_up(self) -> None:
        """Take in what the stream holds beyond the index's position, in order. No lock is held
        while the stream is read: the index ignores what another thread took in meanwhile."""
        while True:
            page = self.recorder.select_notifications(self._index.position + 1, _PAGE)
            for notification in page:
                event = self.mapper.to_domain_event(notification)
                assert isinstance(event, Event)
                self._index.take_in(event, notification.id)
            if len(page) < _PAGE:
                return
