"""Which meetings each case has, in the order they were scheduled: what the meeting service
remembers of `MeetingScheduled` (kept up to date by `stafett_runtime.index`)."""

from __future__ import annotations

from uuid import UUID

from stafett_contracts.envelope import Event
from stafett_contracts.meeting import MeetingScheduled


class MeetingsByCase:
    def __init__(self) -> None:
        self._by_case: dict[UUID, list[UUID]] = {}

    def take_in(self, event: Event) -> None:
        if isinstance(event, MeetingScheduled):
            self._by_case.setdefault(event.case_id, []).append(event.aggregate_id)

    def of(self, case_id: UUID) -> list[UUID]:
        return list(self._by_case.get(case_id, ()))
