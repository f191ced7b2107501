"""Which consents and legal bases belong to a case, and when each live consent ends.

The application keeps this small index in memory (`stafett_runtime.index`), so that a question
about one case reads only that case's aggregates, and the expiry timer finds due consents
without loading every consent. It is rebuilt from the CONSENT stream on start and caught up
before each use and after each save, so writes made by another instance are seen too. Serving
read models is the projection service's work; this index only serves the consent service itself.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from stafett_contracts.consent import (
    ConsentExpired,
    ConsentGiven,
    ConsentScopeChanged,
    ConsentWithdrawn,
    LegalBasisRecorded,
)
from stafett_contracts.envelope import Event


class CaseIndex:
    def __init__(self) -> None:
        self._consents: dict[UUID, set[UUID]] = {}
        self._legal_bases: dict[UUID, set[UUID]] = {}
        self._ends: dict[UUID, datetime] = {}  # consents neither expired nor wholly withdrawn

    def take_in(self, event: Event) -> None:
        match event:
            case ConsentGiven():
                self._consents.setdefault(event.case_id, set()).add(event.aggregate_id)
                self._ends[event.aggregate_id] = event.valid_until
            case ConsentScopeChanged(valid_until=datetime() as valid_until):
                self._ends[event.aggregate_id] = valid_until
            case ConsentWithdrawn(services=()) | ConsentExpired():
                self._ends.pop(event.aggregate_id, None)
            case LegalBasisRecorded():
                self._legal_bases.setdefault(event.case_id, set()).add(event.aggregate_id)

    def consents_of(self, case_id: UUID) -> list[UUID]:
        return sorted(self._consents.get(case_id, ()))

    def legal_bases_of(self, case_id: UUID) -> list[UUID]:
        return sorted(self._legal_bases.get(case_id, ()))

    def due(self, now: datetime) -> list[UUID]:
        """Consents whose end has passed and that have not been seen to end."""
        return [consent_id for consent_id, end in self._ends.items() if end <= now]

    def forget(self, consent_id: UUID) -> None:
        """The consent has ended some other way (withdrawn for every service it named)."""
        self._ends.pop(consent_id, None)
