"""When a child's personal data is shredded (DOMAIN.md rule 10): the one rule, over the events.

A child is due for shredding when every case that names the child is closed, each closed case
has been delivered to the archive (`ArchiveDelivered` for its closing), and the municipality's
retention period (`people.Retention`) has run from the last of those cases to close. A case
reopened is open again, so its child is not due; closing it again needs a new delivery. A
child erased already (`ChildErased`) is never due again.

`RetentionLedger` takes in the few events that say this (ConcernRaised, CaseClosed and
CaseReopened from CASE, ChildErased from CASE, ArchiveDelivered and ArchiveDeliveryFailed from
AUDIT) in any order: a
closing and a reopening are told apart by the case versions they carry, not by when they were
read, so each kind can be read on its own (a narrow read per event type). The case service's
retention timer asks it what is due; `stafett status` asks it what is coming.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from stafett_contracts.audit import ArchiveDelivered, ArchiveDeliveryFailed
from stafett_contracts.case import CaseClosed, CaseReopened, ConcernRaised
from stafett_contracts.envelope import Event, topic_of
from stafett_contracts.erasure import ChildErased
from stafett_contracts.people import Retention

# The events the ledger reads, by the stream that holds them.
CASE_TOPICS = tuple(topic_of(t) for t in (ConcernRaised, CaseClosed, CaseReopened, ChildErased))
AUDIT_TOPICS = tuple(topic_of(t) for t in (ArchiveDelivered, ArchiveDeliveryFailed))


@dataclass
class _Case:
    child_id: UUID | None = None
    closed_version: int = 0  # of the newest CaseClosed
    closed_at: datetime | None = None
    reopened_version: int = 0  # of the newest CaseReopened
    delivered_version: int = 0  # the newest version of the case delivered to the archive
    failures: dict[int, list[ArchiveDeliveryFailed]] = field(default_factory=dict)  # by version

    @property
    def closed(self) -> bool:
        return self.closed_version > self.reopened_version

    @property
    def archived(self) -> bool:
        return self.closed and self.delivered_version >= self.closed_version


@dataclass(frozen=True)
class AwaitingArchive:
    """A closed case whose closing is not yet delivered to the archive."""

    case_id: UUID
    child_id: UUID | None
    closed_at: datetime
    attempts_failed: int = 0  # attempts at delivering this closing that failed
    last_error: str | None = None  # what the archive did the last time
    next_attempt_at: datetime | None = None


@dataclass(frozen=True)
class Shredding:
    """A child whose cases are all closed: when the retention period ends, and which closed
    cases still wait for the archive (the child is shredded only once none does)."""

    child_id: UUID
    due_at: datetime
    cases: tuple[UUID, ...]
    awaiting_archive: tuple[UUID, ...] = ()

    def due(self, now: datetime) -> bool:
        return self.due_at <= now and not self.awaiting_archive


def _awaiting(case_id: UUID, case: _Case, closed_at: datetime) -> AwaitingArchive:
    """A closed case waiting for the archive, with the failed attempts at its newest closing."""
    failed = sorted(case.failures.get(case.closed_version, ()), key=lambda f: f.occurred_at)
    if not failed:
        return AwaitingArchive(case_id, case.child_id, closed_at)
    return AwaitingArchive(
        case_id,
        case.child_id,
        closed_at,
        attempts_failed=len(failed),
        last_error=failed[-1].error,
        next_attempt_at=failed[-1].next_attempt_at,
    )


@dataclass
class RetentionLedger:
    _cases: dict[UUID, _Case] = field(default_factory=dict)
    _children: dict[UUID, set[UUID]] = field(default_factory=dict)
    _erased: set[UUID] = field(default_factory=set)

    def take_in(self, event: Event) -> None:
        """Take in one event; any other kind is ignored, and so is one taken in before."""
        match event:
            case ConcernRaised():
                self._case(event.aggregate_id).child_id = event.child_id
                self._children.setdefault(event.child_id, set()).add(event.aggregate_id)
            case CaseClosed():
                case = self._case(event.aggregate_id)
                if event.aggregate_version > case.closed_version:
                    case.closed_version = event.aggregate_version
                    case.closed_at = event.occurred_at
            case CaseReopened():
                case = self._case(event.aggregate_id)
                case.reopened_version = max(case.reopened_version, event.aggregate_version)
            case ArchiveDelivered():
                case = self._case(event.case_id)
                case.delivered_version = max(case.delivered_version, event.case_version)
            case ArchiveDeliveryFailed():
                failed = self._case(event.case_id).failures.setdefault(event.case_version, [])
                if all(f.event_id != event.event_id for f in failed):
                    failed.append(event)
            case ChildErased():
                self._erased.add(event.child_id)

    def cases_of(self, child_id: UUID) -> tuple[UUID, ...]:
        """The cases that name the child (none: no case ever did)."""
        return tuple(sorted(self._children.get(child_id, ()), key=str))

    def erased(self) -> set[UUID]:
        """The children erased."""
        return set(self._erased)

    def awaiting_archive(self) -> list[AwaitingArchive]:
        """Every closed case whose closing is not delivered to the archive yet, oldest first."""
        waiting = [
            _awaiting(case_id, case, case.closed_at)
            for case_id, case in self._cases.items()
            if case.closed and not case.archived and case.closed_at is not None
        ]
        return sorted(waiting, key=lambda w: w.closed_at)

    def schedule(self, retention: Retention) -> list[Shredding]:
        """Every child not yet erased whose cases are all closed, soonest due first."""
        found: list[Shredding] = []
        for child_id, case_ids in self._children.items():
            cases = [self._cases[c] for c in case_ids]
            if child_id in self._erased or not all(c.closed for c in cases):
                continue
            last_closed = max(c.closed_at for c in cases if c.closed_at is not None)
            found.append(
                Shredding(
                    child_id=child_id,
                    due_at=years_after(last_closed, retention.closed_case_years),
                    cases=tuple(sorted(case_ids, key=str)),
                    awaiting_archive=tuple(
                        sorted((c for c in case_ids if not self._cases[c].archived), key=str)
                    ),
                )
            )
        return sorted(found, key=lambda s: s.due_at)

    def due(self, retention: Retention, now: datetime) -> list[Shredding]:
        """The children to shred now."""
        return [s for s in self.schedule(retention) if s.due(now)]

    def _case(self, case_id: UUID) -> _Case:
        return self._cases.setdefault(case_id, _Case())


def years_after(moment: datetime, years: int) -> datetime:
    """The same moment `years` later (29 February becomes 28 February in a common year)."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)
