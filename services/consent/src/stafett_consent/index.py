"""Which consents and legal bases belong to a case, and when each live consent ends.

The application keeps this small index in memory, so that a question about one case reads only
that case's aggregates, and the expiry timer finds due consents without loading every consent.
It is rebuilt from the CONSENT stream on start and caught up from the last position read before
each use and after each save, so writes made by another instance are seen too. Several threads
may catch up at once, each reading the stream with no lock held: the index takes in each
position once, in order, and ignores a position it has already taken in. Serving read
models is the projection service's work; this index only serves the consent service itself.
"""

from __future__ import annotations

import threading
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
        self.position = 0  # the last notification id taken in
        self._lock = threading.Lock()
        self._consents: dict[UUID, set[UUID]] = {}
        self._legal_bases: dict[UUID, set[UUID]] = {}
        self._ends: dict[UUID, datetime] = {}  # consents neither expired nor wholly withdrawn

    def take_in(self, event: Event, position: int) -> None:
        with self._lock:
            if position <= self.position:
                return  # another thread took it in already
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
            self.position = position

    def consents_of(self, case_id: UUID) -> list[UUID]:
        with self._lock:
            return sorted(self._consents.get(case_id, ()))

    def legal_bases_of(self, case_id: UUID) -> list[UUID]:
        with self._lock:
            return sorted(self._legal_bases.get(case_id, ()))

    def due(self, now: datetime) -> list[UUID]:
        """Consents whose end has passed and that have not been seen to end."""
        with self._lock:
            return [consent_id for consent_id, end in self._ends.items() if end <= now]

    def forget(self, consent_id: UUID) -> None:
        """The consent has ended some other way (withdrawn for every service it named)."""
        with self._lock:
            self._ends.pop(consent_id, None)
