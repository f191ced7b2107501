"""What the case learns from the consent service: its events, as case commands, exactly once.

`ConsentPolicy` reads the CONSENT stream through a `ProcessingLoop` and writes to the CASE
stream, as `Cases` does (same application name), so a consent fact and a person's command on
the same case are ordered by the store's optimistic concurrency.

| consent event | case command |
|---|---|
| ConsentGiven | NoteConsent on its case |
| ConsentScopeChanged | NoteConsent with the new scope (same start; end kept unless given): services dropped lapse as withdrawn and leave |
| ConsentWithdrawn | LapseConsent(withdrawn), for the services named or all |
| ConsentExpired | LapseConsent(expired) |
| LegalBasisRecorded | NoteLegalBasis |

Only ConsentGiven and LegalBasisRecorded name their case; for the other three the case is the
one the consent's ConsentGiven named, read from the CONSENT stream. Each command is decided as
of the consent event's `occurred_at`, caused by it and in its correlation, with the municipality
directory as it stands (the service's `DirectorySource`). A consent for a case
that does not exist, or that the case refuses, is logged and skipped: one bad event must not
stop the loop.
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

from functools import singledispatchmethod
from typing import Any
from uuid import UUID

import structlog
from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.utils import EnvType

from stafett_case.application import case_history
from stafett_case.domain import decide
from stafett_case.domain.commands import Command, LapseConsent, NoteConsent, NoteLegalBasis
from stafett_contracts.casefile import fold
from stafett_contracts.consent import (
    ConsentEvent,
    ConsentExpired,
    ConsentGiven,
    ConsentScopeChanged,
    ConsentWithdrawn,
    LegalBasisRecorded,
)
from stafett_contracts.identity import Actor, Role
from stafett_runtime.contracts import CONTRACT_ENV, ContractProcessApplication
from stafett_runtime.directory import DirectorySource
from stafett_runtime.domain import Context, NotAllowed, RuleViolation
from stafett_runtime.follower import Follower
from stafett_runtime.processing import Upstream

POLICY_ACTOR = Actor(person="consent-policy", role=Role.SYSTEM, service="case")

log = structlog.get_logger(__name__)


class ConsentPolicy(ContractProcessApplication):
    name = "case"  # writes to the CASE stream, beside Cases

    def __init__(self, env: EnvType | None, directory: DirectorySource) -> None:
        super().__init__(env)
        self._consents = Upstream.named("consent", {**(env or {}), **CONTRACT_ENV})
        self._directory = directory

    def close(self) -> None:
        self._consents.close()
        super().close()

    @singledispatchmethod
    def policy(
        self, domain_event: DomainEventProtocol[Any], processing_event: ProcessingEvent[Any]
    ) -> None:
        log.info("consent event not for the case", event_type=type(domain_event).__name__)

    @policy.register
    def _given(self, event: ConsentGiven, processing_event: ProcessingEvent[Any]) -> None:
        command = NoteConsent(
            consent_id=event.aggregate_id,
            services=event.services,
            purposes=tuple(str(purpose) for purpose in event.purposes),
            valid_from=event.valid_from,
            valid_until=event.valid_until,
        )
        self._apply(event.case_id, command, event, processing_event)

    @policy.register
    def _scope_changed(
        self, event: ConsentScopeChanged, processing_event: ProcessingEvent[Any]
    ) -> None:
        case_id = self._case_of(event)
        state = fold(case_history(self, case_id)) if case_id else None
        noted = state.consents.get(event.aggregate_id) if state else None
        if case_id is None or noted is None:
            log.warning(
                "scope change of a consent the case never noted", consent=event.aggregate_id
            )
            return
        command = NoteConsent(
            consent_id=event.aggregate_id,
            services=event.services,
            purposes=tuple(str(purpose) for purpose in event.purposes),
            valid_from=noted.valid_from,
            valid_until=event.valid_until or noted.valid_until,
        )
        self._apply(case_id, command, event, processing_event)

    @policy.register
    def _withdrawn(self, event: ConsentWithdrawn, processing_event: ProcessingEvent[Any]) -> None:
        command = LapseConsent(
            consent_id=event.aggregate_id, services=event.services, reason="withdrawn"
        )
        self._apply(self._case_of(event), command, event, processing_event)

    @policy.register
    def _expired(self, event: ConsentExpired, processing_event: ProcessingEvent[Any]) -> None:
        command = LapseConsent(consent_id=event.aggregate_id, reason="expired")
        self._apply(self._case_of(event), command, event, processing_event)

    @policy.register
    def _legal_basis(
        self, event: LegalBasisRecorded, processing_event: ProcessingEvent[Any]
    ) -> None:
        command = NoteLegalBasis(service=event.service, legal_basis=event.legal_basis)
        self._apply(event.case_id, command, event, processing_event)

    def _case_of(self, event: ConsentEvent) -> UUID | None:
        """The case a consent belongs to: the one its ConsentGiven named."""
        for earlier in self._consents.events.get(event.aggregate_id):
            if isinstance(earlier, ConsentGiven):
                return earlier.case_id
        return None

    def _apply(
        self,
        case_id: UUID | None,
        command: Command,
        event: ConsentEvent,
        processing_event: ProcessingEvent[Any],
    ) -> None:
        history = case_history(self, case_id) if case_id else []
        if not history:
            log.warning(
                "consent for no known case skipped", case_id=case_id, event_id=event.event_id
            )
            return
        context = Context(
            actor=POLICY_ACTOR,
            now=event.occurred_at,
            correlation_id=event.correlation_id,
            causation_id=str(event.event_id),
            directory=self._directory.current(),
        )
        try:
            new = decide(fold(history), command, context)
        except (RuleViolation, NotAllowed) as refusal:
            log.warning("case refused a consent fact", case_id=case_id, reason=str(refusal))
            return
        processing_event.collect_events(*new)


class ConsentFollower(Follower):
    """Runs the consent policy's loop, once the CONSENT stream exists."""

    def __init__(
        self, env: EnvType, directory: DirectorySource, retry_seconds: float = 2.0
    ) -> None:
        super().__init__(ConsentPolicy(env, directory), "consent", env, retry_seconds)
