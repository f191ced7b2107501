"""The meeting service's eventsourcing application: load a meeting and its case's roster, decide,
save.

Synchronous, on the store's worker threads; handlers call it through
`stafett_runtime.service.call`. One command's events are one atomic append, so a concurrent
write to the same meeting is refused (IntegrityError, 409) rather than interleaved.

The MEETING stream holds two kinds of aggregate: meetings (random ids) and the rosters of cases
(the case's id), which only the roster policy writes. Which meetings a case has is kept in a
small in-memory index of `MeetingScheduled`, caught up from the stream before each use.
"""

from __future__ import annotations

import threading
from typing import cast
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.utils import EnvType

from stafett_contracts.envelope import topic_of
from stafett_contracts.meeting import MeetingEvent, MeetingScheduled
from stafett_meeting.domain import Meeting, Roster, decide, fold, fold_roster
from stafett_meeting.domain.commands import Command, ScheduleMeeting
from stafett_runtime.contracts import ContractApplication, ContractProcessApplication
from stafett_runtime.domain import Context, StaleVersion

_PAGE = 500  # notifications read at a time when catching up the index
_SCHEDULED = topic_of(MeetingScheduled)


class Meetings(ContractApplication):
    name = "meeting"  # stream MEETING, subjects meeting.events.<id>.<EventType>

    def __init__(self, env: EnvType | None = None) -> None:
        super().__init__(env)
        self._position = 0
        self._by_case: dict[UUID, list[UUID]] = {}
        self._index_lock = threading.Lock()

    def schedule(self, meeting_id: UUID, command: ScheduleMeeting, context: Context) -> int:
        """Schedule a meeting of a case the roster policy has learned (404 until then)."""
        return self._handle(meeting_id, command, context, self.roster(command.case_id))

    def handle(
        self,
        meeting_id: UUID,
        command: Command,
        context: Context,
        expected_version: int | None = None,
    ) -> int:
        """Decide `command` on the meeting and save its events; its version after them."""
        state = self.get(meeting_id)
        return self._handle(
            meeting_id, command, context, self.roster(state.case_id), expected_version
        )

    def get(self, meeting_id: UUID) -> Meeting:
        state = fold(self.events_of(meeting_id))
        if state is None:
            raise AggregateNotFoundError(f"meeting {meeting_id}")
        return state

    def events_of(self, meeting_id: UUID) -> list[MeetingEvent]:
        """The meeting's events in order, for a reader to show what they may (404 if none)."""
        history = meeting_history(self, meeting_id)
        if not history or not isinstance(history[0], MeetingScheduled):  # none, or a roster
            raise AggregateNotFoundError(f"meeting {meeting_id}")
        return history

    def roster(self, case_id: UUID) -> Roster:
        """What the meeting service knows of the case; 404 while it knows nothing yet."""
        roster = fold_roster(meeting_history(self, case_id))
        if roster is None:
            raise AggregateNotFoundError(
                f"case {case_id}: the meeting service has not learned of it (yet)"
            )
        return roster

    def meetings_of(self, case_id: UUID) -> list[list[MeetingEvent]]:
        """The events of each meeting of the case, in the order they were scheduled."""
        self._catch_up()
        with self._index_lock:
            meeting_ids = list(self._by_case.get(case_id, ()))
        return [self.events_of(meeting_id) for meeting_id in meeting_ids]

    def _handle(
        self,
        meeting_id: UUID,
        command: Command,
        context: Context,
        roster: Roster,
        expected_version: int | None = None,
    ) -> int:
        history = meeting_history(self, meeting_id)
        state, version = fold(history), len(history)
        if expected_version is not None and expected_version != version:
            raise StaleVersion(expected_version, version)
        new = decide(state, command, context, roster, meeting_id)
        if new:
            self.save(*new)
        return version + len(new)

    def _catch_up(self) -> None:
        """Take in the meetings scheduled beyond the index's position, in order.

        Each page is read with no lock held (a read may wait on NATS, and other requests must not
        wait behind it) and taken in under the lock, skipping what another thread took in
        meanwhile, so every meeting is indexed once.
        """
        while True:
            with self._index_lock:
                position = self._position
            page = self.recorder.select_notifications(position + 1, _PAGE, topics=[_SCHEDULED])
            with self._index_lock:
                for notification in page:
                    if notification.id <= self._position:
                        continue  # another thread took it in already
                    event = self.mapper.to_domain_event(notification)
                    assert isinstance(event, MeetingScheduled)
                    self._by_case.setdefault(event.case_id, []).append(event.aggregate_id)
                    self._position = notification.id
            if len(page) < _PAGE:
                return


def meeting_history(
    app: ContractApplication | ContractProcessApplication, aggregate_id: UUID
) -> list[MeetingEvent]:
    """The aggregate's events in order, from the MEETING stream of `app`."""
    # The contract mapper gives back exactly the contract events stored (meeting ones here).
    return cast(list[MeetingEvent], app.history(aggregate_id))
