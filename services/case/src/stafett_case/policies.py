"""What the case learns from the consent service: its events, as case commands, exactly once.

`ConsentPolicy` reads the CONSENT stream through a `ProcessingLoop` and writes to the CASE
stream, as `Cases` does (same application name), on the same command path
(`stafett_runtime.commands.Policy`), so a consent fact and a person's command on the same case
are ordered by the store's optimistic concurrency.

| consent event | case command |
|---|---|
| ConsentGiven | NoteConsent on its case |
| ConsentScopeChanged | NoteScopeChange: the new scope from the same start, its end kept unless given; services dropped lapse as withdrawn and leave |
| ConsentWithdrawn | LapseConsent(withdrawn), for the services named or all |
| ConsentExpired | LapseConsent(expired) |
| LegalBasisRecorded | NoteLegalBasis |

Only ConsentGiven and LegalBasisRecorded name their case; for the other three the case is the
one the consent's ConsentGiven named, read from the CONSENT stream. Each command is decided by
the consent policy as of the consent event's `occurred_at`, caused by it and in its
correlation, with the municipality directory as it stands (the service's `DirectorySource`). A
consent for a case that does not exist, or that the case refuses, is logged and skipped: one bad
event must not stop the loop.
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

from uuid import UUID

import structlog
from eventsourcing.utils import EnvType

from stafett_case.application import CASE
from stafett_case.domain.commands import (
    Command,
    LapseConsent,
    NoteConsent,
    NoteLegalBasis,
    NoteScopeChange,
)
from stafett_contracts.consent import (
    ConsentExpired,
    ConsentGiven,
    ConsentScopeChanged,
    ConsentWithdrawn,
    LegalBasisRecorded,
)
from stafett_contracts.envelope import Event
from stafett_contracts.identity import Actor, Role
from stafett_runtime.commands import Order, Policy, caused_by
from stafett_runtime.contracts import CONTRACT_ENV
from stafett_runtime.directory import DirectorySource
from stafett_runtime.domain import Context
from stafett_runtime.follower import Follower
from stafett_runtime.processing import Upstream

POLICY_ACTOR = Actor(person="consent-policy", role=Role.SYSTEM, service="case")

log = structlog.get_logger(__name__)


class ConsentFacts:
    """The translation of consent events into case commands (the table above)."""

    def __init__(self, consents: Upstream, directory: DirectorySource) -> None:
        self._consents = consents
        self._directory = directory

    def __call__(self, event: Event) -> Order[Command, Context] | None:
        command: Command
        match event:
            case ConsentGiven():
                case_id: UUID | None = event.case_id
                command = NoteConsent(
                    consent_id=event.aggregate_id,
                    services=event.services,
                    purposes=tuple(str(purpose) for purpose in event.purposes),
                    valid_from=event.valid_from,
                    valid_until=event.valid_until,
                )
            case ConsentScopeChanged():
                case_id = self._case_of(event.aggregate_id)
                command = NoteScopeChange(
                    consent_id=event.aggregate_id,
                    services=event.services,
                    purposes=tuple(str(purpose) for purpose in event.purposes),
                    valid_until=event.valid_until,
                )
            case ConsentWithdrawn():
                case_id = self._case_of(event.aggregate_id)
                command = LapseConsent(
                    consent_id=event.aggregate_id, services=event.services, reason="withdrawn"
                )
            case ConsentExpired():
                case_id = self._case_of(event.aggregate_id)
                command = LapseConsent(consent_id=event.aggregate_id, reason="expired")
            case LegalBasisRecorded():
                case_id = event.case_id
                command = NoteLegalBasis(service=event.service, legal_basis=event.legal_basis)
            case _:
                log.info("consent event not for the case", event_type=type(event).__name__)
                return None
        if case_id is None:
            log.warning("consent of no known case skipped", consent_id=str(event.aggregate_id))
            return None
        context = caused_by(event, POLICY_ACTOR, self._directory.current())
        return Order(case_id, command, context)

    def _case_of(self, consent_id: UUID) -> UUID | None:
        """The case a consent belongs to: the one its ConsentGiven named."""
        for earlier in self._consents.events.get(consent_id):
            if isinstance(earlier, ConsentGiven):
                return earlier.case_id
        return None


class ConsentPolicy(Policy):
    name = "case"  # writes to the CASE stream, beside Cases

    def __init__(self, env: EnvType | None, directory: DirectorySource) -> None:
        self._consents = Upstream.named("consent", {**(env or {}), **CONTRACT_ENV})
        super().__init__(env, CASE, ConsentFacts(self._consents, directory))

    def close(self) -> None:
        self._consents.close()
        super().close()


class ConsentFollower(Follower):
    """Runs the consent policy's loop, once the CONSENT stream exists."""

    def __init__(
        self, env: EnvType, directory: DirectorySource, retry_seconds: float = 2.0
    ) -> None:
        super().__init__(ConsentPolicy(env, directory), "consent", env, retry_seconds)
