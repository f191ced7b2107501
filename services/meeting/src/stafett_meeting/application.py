"""The meeting service's eventsourcing application: the MEETING stream, the command path on it,
and the cases its meetings belong to, read from the CASE stream.

Synchronous, on the store's worker threads; handlers call it through
`stafett_runtime.service.call`. A command goes the one command path (`stafett_runtime.commands`):
the meeting loaded (cached, brought up to date with only its newer events), decided by the pure
domain on its case as the case's events tell it now, its events appended atomically, so a
concurrent write to the same meeting is refused (IntegrityError, 409) rather than interleaved.

The case is read from the CASE stream, never asked of the case service, and folded with the one
fold of a case (`stafett_contracts.casefile`), kept per case and brought up to date with only
its newer events, the same way (`stafett_runtime.commands.States`): a case is known to the
meeting service as soon as its `ConcernRaised` is written. Which meetings a case has is kept in
a small in-memory index of `MeetingScheduled`, caught up from the stream before each use
(`stafett_runtime.index`).
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.utils import EnvType

from stafett_contracts import casefile
from stafett_contracts.casefile import CaseFile
from stafett_contracts.envelope import topic_of
from stafett_contracts.meeting import MeetingEvent, MeetingScheduled
from stafett_meeting.domain import Meeting, MeetingContext, Roster, decide, evolve, roster_of
from stafett_meeting.domain.by_case import MeetingsByCase
from stafett_meeting.domain.commands import Command, ScheduleMeeting
from stafett_runtime.commands import AggregateType, Commands, States
from stafett_runtime.contracts import CONTRACT_ENV, ContractApplication
from stafett_runtime.domain import Context
from stafett_runtime.index import Index, Source
from stafett_runtime.processing import Upstream

MEETING = AggregateType[Meeting, Command, MeetingContext](
    name="meeting", evolve=evolve, decide=decide, creates=(ScheduleMeeting,)
)


class Meetings(ContractApplication):
    name = "meeting"  # stream MEETING, subjects meeting.events.<id>.<EventType>

    def __init__(self, env: EnvType | None = None) -> None:
        super().__init__(env)
        self.commands = Commands(self, MEETING)
        self._case_stream = Upstream.named("case", {**(env or {}), **CONTRACT_ENV})
        self._cases = States[CaseFile](self._case_stream.events, casefile.evolve)
        self._by_case = Index(MeetingsByCase(), Source(self, (topic_of(MeetingScheduled),)))

    def close(self) -> None:
        self._case_stream.close()
        super().close()

    def schedule(self, meeting_id: UUID, command: ScheduleMeeting, context: Context) -> int:
        """Schedule a meeting of a case (404 if there is no such case)."""
        on_case = MeetingContext.of(context, meeting_id=meeting_id, case=self.case(command.case_id))
        return self.commands.handle(meeting_id, command, on_case).version

    def handle(
        self,
        meeting_id: UUID,
        command: Command,
        context: Context,
        expected_version: int | None = None,
    ) -> int:
        """Decide `command` on the meeting, on its case as it is now; its version after."""
        case = self.case(self.commands.get(meeting_id).case_id)
        on_case = MeetingContext.of(context, meeting_id=meeting_id, case=case)
        return self.commands.handle(meeting_id, command, on_case, expected_version).version

    def case(self, case_id: UUID) -> CaseFile:
        """The case as its events tell it now; 404 if there is none."""
        case = self._cases.load(case_id).state
        if case is None:
            raise AggregateNotFoundError(f"case {case_id}")
        return case

    def roster(self, case_id: UUID) -> Roster:
        return roster_of(self.case(case_id))

    def events_of(self, meeting_id: UUID) -> list[MeetingEvent]:
        """The meeting's events in order, for a reader to show what they may (404 if none)."""
        history = [e for e in self.events.get(meeting_id) if isinstance(e, MeetingEvent)]
        if not history or not isinstance(history[0], MeetingScheduled):  # none, or no meeting's
            raise AggregateNotFoundError(f"meeting {meeting_id}")
        return history

    def meetings_of(self, case_id: UUID) -> list[list[MeetingEvent]]:
        """The events of each meeting of the case, in the order they were scheduled."""
        with self._by_case.caught_up() as by_case:
            meeting_ids = by_case.of(case_id)
        return [self.events_of(meeting_id) for meeting_id in meeting_ids]
