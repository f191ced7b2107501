"""How each event changes the read models: one function per event type that needs more than
its relay-log entry.

Every event becomes an entry (the relay log, the export); a case's CASE entries are what its
case file is folded from when it is read (`views.case_file`), so who may see what is decided by
the one access rule over the one fold, never from a table kept here. Beyond that, each stream
writes only its own tables (the case stream: cases, levels, owners, measures; consent: consents;
meeting: meetings, action items, feedback; notify: notifications, breaks; audit: access,
archived), and anything computed across streams (last activity, follow-up breaks still open,
figures per unit, closed cases not yet archived) is computed when queried. So the streams can
be applied in any interleaving, live or in a rebuild, and give the same tables.

Entries are ordered as they were appended: within a stream by sequence, across streams by the
moment the event store appended each (the server's timestamp of the message, never earlier than
the one before it in its stream). That is the order the events reached the projection, and it
is the same in a rebuild, where the streams are read one after another. An event's own
`occurred_at` can be earlier than its place (a `ConsentNoted` carries the consent's moment) and
is shown, not sorted by.

A case belongs to one unit at a time (`cases.unit`, with `owners` saying since when): where the
worry arose, until the baton is handed over to a unit of the same kind of service (kindergarten
to school: `Directory.takes_over`); a referral or a handover to a helper service leaves the case
with its unit. The directory says each unit's kind.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime
from typing import Any

import msgspec
from cachetools import LRUCache

from stafett_contracts import audit, case, consent, meeting, notify
from stafett_contracts.catalogue import BY_SERVICE
from stafett_contracts.envelope import Event
from stafett_contracts.people import Directory
from stafett_contracts.personal import SealedText
from stafett_projection.store import Tx
from stafett_runtime.directory import DirectorySource, FixedDirectory

# One stream per service of the contracts' catalogue (CASE, ..., AUDIT), so a new service's
# events are projected (as relay-log entries of the case they name) without a line here.
STREAMS = tuple(service.upper() for service in BY_SERVICE)


def _union(types: tuple[type[Event], ...]) -> Any:
    union: Any = types[0]
    for t in types[1:]:
        union = union | t
    return union


_decoders: dict[str, msgspec.json.Decoder[Any]] = {
    stream: msgspec.json.Decoder(_union(BY_SERVICE[stream.lower()])) for stream in STREAMS
}


def decode(stream: str, data: bytes | str) -> Event:
    event: Event = _decoders[stream].decode(data)
    return event


def ts(moment: datetime) -> str:
    """A timestamp as stored: UTC, microseconds, so text order is time order."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def day(value: date) -> str:
    return value.isoformat()


class Message(msgspec.Struct, frozen=True):
    """One stored event as read from its stream (`msg`: as NATS delivered it, to acknowledge it
    when live, and to know when the store appended it)."""

    stream: str
    seq: int
    subject: str
    data: bytes
    msg: Any = None

    @property
    def appended_at(self) -> datetime | None:
        """When the event store appended it (None for a message made without NATS)."""
        if self.msg is None:
            return None
        moment: datetime = self.msg.metadata.timestamp
        return moment


REMEMBERED = 100_000  # ids kept in memory by the projection, the least recently used forgotten


class Projector:
    """Applies batches of one stream's messages to the read models, with the stream position."""

    def __init__(
        self, remembered: int = REMEMBERED, directory: DirectorySource | None = None
    ) -> None:
        # consent and notification ids seen recently, for the events that do not name their
        # case (the rest are looked up in the read models)
        self._case_of: LRUCache[str, str | None] = LRUCache(remembered)
        # case versions applied in the transaction under way; the caller tells waiting readers
        # once it has committed, so no reader is told of an uncommitted change
        self.touched: dict[str, int] = {}
        # Each unit's kind, for whether a handover moves the case (none known: it never does).
        self._directory = directory or FixedDirectory(Directory())
        self._handlers: dict[type[Event], Handler] = {
            **_HANDLERS,
            case.BatonHandedOver: self._handed_over,
        }

    def apply(self, tx: Tx, stream: str, messages: Sequence[Message]) -> int:
        """Apply what is new in `messages` (ordered by seq); return the new position."""
        row = tx.one("SELECT seq, appended FROM positions WHERE stream = ?", (stream,))
        position, appended = (row[0], row[1]) if row else (0, None)
        for message in messages:
            if message.seq <= position:
                continue  # redelivered: its effect is already recorded
            appended = self.apply_one(tx, message, appended)
            position = message.seq
        tx.run(
            "INSERT INTO positions(stream, seq, appended) VALUES (?, ?, ?) "
            "ON CONFLICT (stream) DO UPDATE SET seq = excluded.seq, appended = excluded.appended",
            (stream, position, appended),
        )
        return position

    def apply_one(self, tx: Tx, message: Message, after: str | None = None) -> str | None:
        """Apply one message; the moment it takes its place at, never before `after` (the one
        before it in its stream)."""
        event = decode(message.stream, message.data)
        handler = self._handlers.get(type(event))
        if isinstance(event, audit.CaseAccessed):
            _accessed(tx, event, message.seq)
            return after
        appended = ts(message.appended_at or event.occurred_at)
        if after is not None and appended < after:
            appended = after  # a clock that stepped back never reorders a stream
        case_id = self._case_id(tx, event)
        actor = event.actor
        tx.run(
            "INSERT INTO entries(stream, seq, case_id, aggregate_id, aggregate_version, type,"
            " occurred_at, appended, person, role, service, subject, body)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                message.stream,
                message.seq,
                case_id,
                str(event.aggregate_id),
                event.aggregate_version,
                type(event).__name__,
                ts(event.occurred_at),
                appended,
                actor.person,
                str(actor.role),
                actor.service,
                message.subject,
                message.data.decode(),
            ),
        )
        if handler is not None and case_id is not None:
            handler(tx, event, case_id)
        if isinstance(event, case.CaseEvent):
            self.touched[str(event.aggregate_id)] = event.aggregate_version
        return appended

    def _handed_over(self, tx: Tx, e: case.BatonHandedOver, case_id: str) -> None:
        _holder(tx, e.to_person, e.to_service, case_id)
        row = tx.one("SELECT unit FROM cases WHERE case_id = ?", (case_id,))
        if row is not None and self._directory.current().takes_over(row[0], e.to_service):
            _owned(tx, case_id, e.to_service, ts(e.occurred_at))

    def _case_id(self, tx: Tx, event: Event) -> str | None:
        if isinstance(event, case.CaseEvent):
            return str(event.aggregate_id)
        named = getattr(event, "case_id", None)
        key = str(event.aggregate_id)
        if isinstance(event, consent.ConsentGiven | notify.NotificationRequested):
            self._case_of[key] = None if named is None else str(named)
        if named is not None:
            return str(named)
        if key not in self._case_of:
            table, column = (
                ("consents", "consent_id")
                if isinstance(event, consent.ConsentEvent)
                else ("notifications", "notification_id")
            )
            row = tx.one(f"SELECT case_id FROM {table} WHERE {column} = ?", (key,))
            self._case_of[key] = None if row is None else row[0]
        return self._case_of[key]


Handler = Callable[[Tx, Any, str], None]


# The case stream.


def _raised(tx: Tx, e: case.ConcernRaised, case_id: str) -> None:
    at = ts(e.occurred_at)
    tx.run(
        "INSERT INTO cases(case_id, child_id, raised_unit, unit, raised_at, level, status)"
        " VALUES (?, ?, ?, ?, ?, 0, 'open')",
        (case_id, str(e.child_id), e.unit, e.unit, at),
    )
    tx.run("INSERT INTO levels(case_id, since, level) VALUES (?, ?, 0)", (case_id, at))
    _owned(tx, case_id, e.unit, at)


def _owned(tx: Tx, case_id: str, unit: str, since: str) -> None:
    """The case belongs to `unit` from `since`."""
    tx.run("UPDATE cases SET unit = ? WHERE case_id = ?", (unit, case_id))
    tx.run(
        "INSERT INTO owners(case_id, since, unit) VALUES (?, ?, ?) "
        "ON CONFLICT (case_id, since) DO UPDATE SET unit = excluded.unit",
        (case_id, since, unit),
    )


def _moved(tx: Tx, e: case.Escalated | case.DeEscalated, case_id: str) -> None:
    at = ts(e.occurred_at)
    tx.run("UPDATE cases SET level = ? WHERE case_id = ?", (e.to_level, case_id))
    _close_level(tx, case_id, at)
    tx.run(
        "INSERT INTO levels(case_id, since, level, from_level) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (case_id, since) DO UPDATE SET level = excluded.level, until = NULL,"
        " from_level = excluded.from_level",
        (case_id, at, e.to_level, e.from_level),
    )
    if e.from_level == 0:
        _level_0_decided(tx, case_id, at)


def _level_decided(tx: Tx, e: case.LevelDecided, case_id: str) -> None:
    if e.level == 0:
        _level_0_decided(tx, case_id, ts(e.occurred_at))


def _level_0_decided(tx: Tx, case_id: str, at: str) -> None:
    """The first decision at level 0 (go on to level 1, close, or continue): its moment."""
    tx.run(
        "UPDATE cases SET level0_decided_at = ? WHERE case_id = ? AND level0_decided_at IS NULL",
        (at, case_id),
    )


def _close_level(tx: Tx, case_id: str, at: str) -> None:
    tx.run("UPDATE levels SET until = ? WHERE case_id = ? AND until IS NULL", (at, case_id))


def _closed(tx: Tx, e: case.CaseClosed, case_id: str) -> None:
    at = ts(e.occurred_at)
    tx.run(
        "UPDATE cases SET status = 'closed', closed_at = ?, closed_level = ? WHERE case_id = ?",
        (at, e.at_level, case_id),
    )
    _close_level(tx, case_id, at)
    if e.at_level == 0:
        _level_0_decided(tx, case_id, at)


def _reopened(tx: Tx, e: case.CaseReopened, case_id: str) -> None:
    at = ts(e.occurred_at)
    tx.run(
        "UPDATE cases SET status = 'open', closed_at = NULL, closed_level = NULL WHERE case_id = ?",
        (case_id,),
    )
    row = tx.one("SELECT level FROM cases WHERE case_id = ?", (case_id,))
    tx.run(
        "INSERT INTO levels(case_id, since, level) VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
        (case_id, at, row[0] if row else 0),
    )


def _holder(tx: Tx, person: str | None, service: str | None, case_id: str) -> None:
    tx.run(
        "UPDATE cases SET holder = ?, holder_service = ? WHERE case_id = ?",
        (person, service, case_id),
    )


def _appointed(tx: Tx, e: case.BatonHolderAppointed, case_id: str) -> None:
    _holder(tx, e.holder, e.service, case_id)


def _vacated(tx: Tx, e: case.BatonVacated, case_id: str) -> None:
    _holder(tx, None, None, case_id)


def _coordinator(tx: Tx, e: case.CoordinatorAssigned, case_id: str) -> None:
    tx.run(
        "UPDATE cases SET coordinator = ?, coordinator_service = ? WHERE case_id = ?",
        (e.coordinator, e.service, case_id),
    )


def _agency_left(tx: Tx, e: case.AgencyLeft, case_id: str) -> None:
    """A service that leaves takes its coordinator with it (as the case's fold says)."""
    tx.run(
        "UPDATE cases SET coordinator = NULL, coordinator_service = NULL"
        " WHERE case_id = ? AND coordinator_service = ?",
        (case_id, e.service),
    )


def at_rest(text: SealedText | str) -> str:
    """Free text as the database keeps it: sealed (its JSON), as the event has it; opened only
    at read time, for a reader the access rule admits."""
    return text if isinstance(text, str) else msgspec.json.encode(text).decode()


def _measure_planned(tx: Tx, e: case.MeasurePlanned, case_id: str) -> None:
    tx.run(
        "INSERT INTO measures(measure_id, case_id, description, responsible, service,"
        " evaluation_date, status) VALUES (?, ?, ?, ?, ?, ?, 'active')",
        (
            str(e.measure_id),
            case_id,
            at_rest(e.description),
            e.responsible,
            e.service,
            day(e.evaluation_date),
        ),
    )
    tx.run(
        "UPDATE cases SET first_measure_at = ? WHERE case_id = ? AND first_measure_at IS NULL",
        (ts(e.occurred_at), case_id),
    )


def _measure_evaluated(tx: Tx, e: case.MeasureEvaluated, case_id: str) -> None:
    next_date = None if e.next_evaluation_date is None else day(e.next_evaluation_date)
    tx.run(
        "UPDATE measures SET outcome = ?, evaluation_date = ? WHERE measure_id = ?",
        (str(e.outcome), next_date, str(e.measure_id)),
    )


def _measure_ended(tx: Tx, e: case.MeasureEnded, case_id: str) -> None:
    tx.run("UPDATE measures SET status = 'ended' WHERE measure_id = ?", (str(e.measure_id),))


# The consent stream.


def _given(tx: Tx, e: consent.ConsentGiven, case_id: str) -> None:
    tx.run(
        "INSERT INTO consents(consent_id, case_id, party_kind, party, purposes, valid_from,"
        " valid_until) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            str(e.aggregate_id),
            case_id,
            e.given_by.kind,
            e.given_by.person,
            ",".join(e.purposes),
            ts(e.valid_from),
            ts(e.valid_until),
        ),
    )


def _scope_changed(tx: Tx, e: consent.ConsentScopeChanged, case_id: str) -> None:
    until = None if e.valid_until is None else ts(e.valid_until)
    tx.run(
        "UPDATE consents SET purposes = ?, valid_until = COALESCE(?, valid_until)"
        " WHERE consent_id = ?",
        (",".join(e.purposes), until, str(e.aggregate_id)),
    )


def _withdrawn(tx: Tx, e: consent.ConsentWithdrawn, case_id: str) -> None:
    if not e.services:  # withdrawn wholly; a withdrawal for some services ends only their cover
        tx.run(
            "UPDATE consents SET ended_at = ?, end_reason = 'withdrawn' WHERE consent_id = ?",
            (ts(e.occurred_at), str(e.aggregate_id)),
        )


def _expired(tx: Tx, e: consent.ConsentExpired, case_id: str) -> None:
    tx.run(
        "UPDATE consents SET ended_at = ?, end_reason = 'expired' WHERE consent_id = ?"
        " AND ended_at IS NULL",
        (ts(e.expired_at), str(e.aggregate_id)),
    )


# The meeting stream.


def _scheduled(tx: Tx, e: meeting.MeetingScheduled, case_id: str) -> None:
    tx.run(
        "INSERT INTO meetings(meeting_id, case_id, meeting_type, leader_service)"
        " VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (str(e.aggregate_id), case_id, str(e.meeting_type), e.leader_service),
    )


def _item_assigned(tx: Tx, e: meeting.ActionItemAssigned, case_id: str) -> None:
    tx.run(
        "INSERT INTO action_items(item_id, case_id, description, owner, owner_service, due_on,"
        " done) VALUES (?, ?, ?, ?, ?, ?, 0)",
        (str(e.item_id), case_id, at_rest(e.description), e.owner, e.owner_service, day(e.due_on)),
    )


def _item_completed(tx: Tx, e: meeting.ActionItemCompleted, case_id: str) -> None:
    tx.run("UPDATE action_items SET done = 1 WHERE item_id = ?", (str(e.item_id),))


def _feedback(tx: Tx, e: meeting.FeedbackGiven, case_id: str) -> None:
    tx.run(
        "INSERT INTO feedback(meeting_id, version, case_id, given_at, given_by, rating, heard)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            str(e.aggregate_id),
            e.aggregate_version,
            case_id,
            ts(e.occurred_at),
            e.given_by,
            e.rating,
            e.heard,
        ),
    )


# The notify stream.


def _requested(tx: Tx, e: notify.NotificationRequested, case_id: str) -> None:
    tx.run(
        "INSERT INTO notifications(notification_id, case_id) VALUES (?, ?)",
        (str(e.aggregate_id), case_id),
    )


def _break(tx: Tx, e: notify.FollowUpBreakDetected, case_id: str) -> None:
    tx.run(
        "INSERT INTO breaks(notification_id, case_id, unit, detected_at, last_activity_at, stage,"
        " cause) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (
            str(e.aggregate_id),
            case_id,
            e.unit,
            ts(e.occurred_at),
            ts(e.last_activity_at),
            e.stage,
            e.cause,
        ),
    )


# The audit stream: every read of case data, recorded by the service that answered it.


def _accessed(tx: Tx, e: audit.CaseAccessed, seq: int) -> None:
    tx.run(
        "INSERT INTO access(seq, case_id, occurred_at, person, role, service, what, purpose,"
        " outcome, basis, refusal, rule, served_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            seq,
            str(e.case_id),
            ts(e.occurred_at),
            e.actor.person,
            str(e.actor.role),
            e.actor.service,
            e.what,
            e.purpose,
            e.outcome,
            e.basis,
            e.refusal,
            e.rule,
            e.served_by,
        ),
    )


def _archived(tx: Tx, e: audit.ArchiveDelivered, case_id: str) -> None:
    tx.run(
        "INSERT INTO archived(case_id, case_version, delivered_at, archive, reference)"
        " VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
        (case_id, e.case_version, ts(e.occurred_at), e.archive, e.reference),
    )


_HANDLERS: dict[type[Event], Handler] = {
    case.ConcernRaised: _raised,
    case.Escalated: _moved,
    case.DeEscalated: _moved,
    case.LevelDecided: _level_decided,
    case.CaseClosed: _closed,
    case.CaseReopened: _reopened,
    case.BatonHolderAppointed: _appointed,
    case.BatonVacated: _vacated,
    case.CoordinatorAssigned: _coordinator,
    case.AgencyLeft: _agency_left,
    case.MeasurePlanned: _measure_planned,
    case.MeasureEvaluated: _measure_evaluated,
    case.MeasureEnded: _measure_ended,
    consent.ConsentGiven: _given,
    consent.ConsentScopeChanged: _scope_changed,
    consent.ConsentWithdrawn: _withdrawn,
    consent.ConsentExpired: _expired,
    meeting.MeetingScheduled: _scheduled,
    meeting.ActionItemAssigned: _item_assigned,
    meeting.ActionItemCompleted: _item_completed,
    meeting.FeedbackGiven: _feedback,
    notify.NotificationRequested: _requested,
    notify.FollowUpBreakDetected: _break,
    audit.ArchiveDelivered: _archived,
}
