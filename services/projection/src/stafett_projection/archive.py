"""The archive document of a case, for the pupil's file (elevmappe): what a person reads.

Made of the entries the reader may see (the access rule decides, before anything is said), in
Norwegian bokmål (`nb`, the default) or English (`en`): the case (the child, where the worry
arose, its level by name, opened and closed), every decision (when, who decided, with whom, and
why), every measure with its evaluations, and the log of what happened, each entry as a
sentence with the words its author wrote beside it. Dates are in the municipality's time zone.

`document` gives it as typed data (served as JSON); `markdown` renders it as a document. What the
services record for their own bookkeeping is left out, as in the web app's relay log: the
case's notes of consent it learned from the consent service (told once, by the consent
service's own events), the meeting service's copy of the roster, notifications and their
delivery, reads (the access log tells those), and a service's record of its own processing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from functools import singledispatch
from typing import Any, Protocol, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo

import msgspec

from stafett_contracts import case, consent, meeting, notify
from stafett_contracts.casefile import CaseSummary
from stafett_contracts.envelope import Event
from stafett_contracts.people import Directory
from stafett_contracts.personal import Erased, PersonalData, SealedText
from stafett_projection.models import decode
from stafett_projection.phrases import ERASED_TEXT, PHRASES, Language
from stafett_projection.views import Entry

# The services' bookkeeping: recorded, never part of the story a person reads.
BOOKKEEPING = frozenset(
    {
        "ConsentNoted",
        "ConsentLapsed",
        "LegalBasisNoted",
        "CaseRosterNoted",
        "NotificationRequested",
        "NotificationSent",
        "NotificationFailed",
        "ReminderScheduled",
        "CalendarInvitationPrepared",
        "DeliveryAttempted",
        "DeliveryAttemptFailed",
        "CaseAccessed",
        "ArchiveDelivered",
        "ArchiveDeliveryFailed",
        "ChildErased",  # of the child, not of one case: in no case's entries
        "GuidePublished",  # the municipality's configuration: in no case's entries
        "ProcessingParked",
        "ParkedEventRetried",
    }
)


class Who(msgspec.Struct, frozen=True, kw_only=True):
    """Who did something: the person's id, their role and unit, in words."""

    person: str
    role: str
    unit: str | None = None  # the unit's name, as the directory gives it
    said: str  # all of it, as a reader reads it


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    """A decision about the case: when, what, who decided, with whom, and why."""

    at: datetime
    decision: str
    level: int | None = None  # the level the case is at after it
    level_name: str | None = None
    decided_by: Who
    with_whom: list[str] = []
    why: str | None = None


class Evaluation(msgspec.Struct, frozen=True, kw_only=True):
    at: datetime
    outcome: str
    notes: str
    by: Who
    next_evaluation: date | None = None


class Measure(msgspec.Struct, frozen=True, kw_only=True):
    """A measure: who is responsible, when it is evaluated, how the evaluations went."""

    description: str
    responsible: str
    unit: str
    planned_at: datetime
    planned_by: Who
    evaluation_date: date
    evaluations: list[Evaluation] = []
    ended_at: datetime | None = None
    ended_because: str | None = None


class Line(msgspec.Struct, frozen=True, kw_only=True):
    """One thing that happened, as a sentence, and what its author wrote."""

    at: datetime
    by: Who
    what: str
    text: str | None = None


class ArchiveDocument(msgspec.Struct, frozen=True, kw_only=True):
    """A case's relay log for the archive, of the entries the reader may see."""

    case_id: UUID
    language: Language
    title: str
    municipality: str
    child: PersonalData | None = None  # only for a reader who may know who the child is
    erased: Erased | None = None  # instead, once the child's key is deleted
    status: str
    level: int | None = None
    level_name: str | None = None
    unit: str | None = None
    unit_name: str | None = None
    opened_at: datetime | None = None
    closed_at: datetime | None = None
    decisions: list[Decision]
    measures: list[Measure]
    log: list[Line]


T = TypeVar("T")


class TextOpener(Protocol):
    """What opens sealed free text for a reader (the service's kernel)."""

    async def open_texts(self, value: T, erased_as: str | None = None) -> T: ...


async def opened_document(
    opener: TextOpener,
    case_id: UUID,
    child: PersonalData | Erased | None,
    visible: Sequence[Entry],
    state: CaseSummary,
    directory: Directory,
    language: Language,
    zone: ZoneInfo,
) -> ArchiveDocument:
    """The archive document with its free text opened: the one way the query API and the
    archive delivery make it, so how texts are opened changes in one place. A document wants
    words where an erased text was, not a structure."""
    entries = await opener.open_texts(list(visible), erased_as=ERASED_TEXT[language])
    return document(case_id, child, entries, state, directory, language, zone)


def document(
    case_id: UUID,
    child: PersonalData | Erased | None,
    visible: Sequence[Entry],
    state: CaseSummary,
    directory: Directory,
    language: Language,
    zone: ZoneInfo,
) -> ArchiveDocument:
    """The archive document of the entries `visible` to the reader, in `language`."""
    words = _Words(language, zone, directory)
    decisions: list[Decision] = []
    measures: dict[UUID, Measure] = {}
    log: list[Line] = []
    opened_at = closed_at = None
    for entry in visible:
        if entry.type in BOOKKEEPING:
            continue
        event = decode(entry.stream, msgspec.json.encode(entry.event))
        by = words.who(entry.person, entry.role, entry.service)
        told = _told(event, words)
        if told is None:
            continue
        what, text = told
        log.append(Line(at=entry.occurred_at, by=by, what=what, text=text))
        if isinstance(event, case.ConcernRaised):
            opened_at = event.occurred_at
        elif isinstance(event, case.CaseClosed):
            closed_at = event.occurred_at
        elif isinstance(event, case.CaseReopened):
            closed_at = None
        decision = _decision(event, what, by, words)
        if decision is not None:
            decisions.append(decision)
        _measure(event, measures, by, words)
    return ArchiveDocument(
        case_id=case_id,
        language=language,
        title=words.say("title", case=str(case_id)),
        municipality=directory.municipality,
        child=child if isinstance(child, PersonalData) else None,
        erased=child if isinstance(child, Erased) else None,
        status=words.say(f"status.{state.status}"),
        level=state.level,
        level_name=None if state.level is None else words.level(state.level),
        unit=state.unit,
        unit_name=None if state.unit is None else words.unit(state.unit),
        opened_at=opened_at,
        closed_at=closed_at,
        decisions=decisions,
        measures=list(measures.values()),
        log=log,
    )


def markdown(doc: ArchiveDocument, zone: ZoneInfo, directory: Directory) -> str:
    """The document as Markdown, for the pupil's file."""
    words = _Words(doc.language, zone, directory)
    lines = [f"# {_md(doc.title)}", ""]
    facts = [(words.say("municipality"), doc.municipality)]
    if doc.child is not None:
        born = doc.child.birth_date
        child = doc.child.name + (f", {words.say('born', day=words.day(born))}" if born else "")
        facts.append((words.say("child"), child))
    elif doc.erased is not None:
        facts.append((words.say("child"), words.say("erased")))
    level = doc.level_name or words.say("level.unknown")
    facts += [(words.say("status"), f"{doc.status}, {level}")]
    if doc.unit_name is not None:
        facts.append((words.say("unit"), doc.unit_name))
    if doc.opened_at is not None:
        facts.append((words.say("opened"), words.moment(doc.opened_at)))
    if doc.closed_at is not None:
        facts.append((words.say("closed"), words.moment(doc.closed_at)))
    lines += [f"- **{_md(name)}:** {_md(value)}" for name, value in facts]
    lines += ["", f"## {words.say('decisions')}", ""]
    if not doc.decisions:
        lines += [words.say("none")]
    for d in doc.decisions:
        said = f"- **{_md(words.moment(d.at))}**: {_md(d.decision)} "
        said += _md(words.say("decided_by", who=d.decided_by.said))
        if d.with_whom:
            said += " " + _md(words.say("with_whom", people=", ".join(d.with_whom)))
        if d.why:
            said += f" {_md(words.say('why'))} «{_md(d.why)}»"
        lines.append(said)
    lines += ["", f"## {words.say('measures')}", ""]
    if not doc.measures:
        lines += [words.say("none"), ""]
    for m in doc.measures:
        lines += [f"### {_md(m.description)}", ""]
        planned = words.say(
            "measure.planned",
            who=m.planned_by.said,
            at=words.moment(m.planned_at),
            responsible=m.responsible,
            unit=m.unit,
            day=words.day(m.evaluation_date),
        )
        lines.append(_md(planned))
        for e in m.evaluations:
            said = f"- **{_md(words.moment(e.at))}**: {_md(e.outcome)} «{_md(e.notes)}»"
            said += f" ({_md(e.by.said)})"
            if e.next_evaluation is not None:
                said += " " + _md(words.say("next_evaluation", day=words.day(e.next_evaluation)))
            lines.append(said)
        if m.ended_at is not None:
            ended = words.say("measure.ended", at=words.moment(m.ended_at))
            lines.append(
                f"- {_md(ended)}" + (f" «{_md(m.ended_because)}»" if m.ended_because else "")
            )
        lines.append("")
    lines += [f"## {words.say('log')}", ""]
    for line in doc.log:
        said = f"- **{_md(words.moment(line.at))}**, {_md(line.by.said)}: {_md(line.what)}"
        if line.text:
            said += f" «{_md(line.text)}»"
        lines.append(said)
    return "\n".join(lines).rstrip("\n") + "\n"


class _Words:
    """The document's language: phrases, names of levels, units and roles, and dates."""

    def __init__(self, language: Language, zone: ZoneInfo, directory: Directory) -> None:
        self.language = language
        self.zone = zone
        self.directory = directory
        self._phrases = PHRASES[language]

    def say(self, key: str, **values: Any) -> str:
        return self._phrases[key].format(**values)

    def level(self, level: int) -> str:
        return self.say(f"level.{level}")

    def unit(self, unit: str) -> str:
        found = self.directory.unit(unit)
        return unit if found is None else found.name

    def units(self, units: Sequence[str]) -> str:
        return self.and_([self.unit(u) for u in units])

    def party(self, kind: str, person: str) -> str:
        return (
            f"{person} ({self.say(f'party.{kind}')})"
            if f"party.{kind}" in self._phrases
            else person
        )

    def who(self, person: str, role: str, service: str | None) -> Who:
        role_said = self._phrases.get(f"role.{role}", role)
        unit = None if service is None else self.unit(service)
        if role == "system":
            return Who(person=person, role=role_said, unit=unit, said=self.say("role.system"))
        said = f"{person} ({role_said}{', ' + unit if unit else ''})"
        return Who(person=person, role=role_said, unit=unit, said=said)

    def and_(self, items: Sequence[str]) -> str:
        if len(items) <= 1:
            return "".join(items)
        return f"{', '.join(items[:-1])} {self.say('and')} {items[-1]}"

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def day(self, value: date) -> str:
        month = self._phrases[f"month.{value.month}"]
        if self.language == "nb":
            return f"{value.day}. {month} {value.year}"
        return f"{value.day} {month} {value.year}"

    def moment(self, value: datetime) -> str:
        local = self.local(value)
        return self.say("moment", day=self.day(local.date()), time=f"{local:%H:%M}")


# What each event says, in words.

Told = tuple[str, str | None]  # the sentence, and what its author wrote


@singledispatch
def _told(event: Event, w: _Words) -> Told | None:
    return None  # a type this version does not know is left out, never dumped


@_told.register
def _(e: case.ConcernRaised, w: _Words) -> Told:
    return w.say("ConcernRaised", unit=w.unit(e.unit)), _text(e.concern)


@_told.register
def _(e: case.ConcernShared, w: _Words) -> Told:
    return w.say("ConcernShared", person=e.shared_with), _text(e.note)


@_told.register
def _(e: case.WonderingConversationHeld, w: _Words) -> Told:
    with_whom = [
        w.say(k)
        for k, held in (("guardians", e.with_guardians), ("the_child", e.with_child))
        if held
    ]
    key = "WonderingConversationHeld.with" if with_whom else "WonderingConversationHeld"
    return w.say(key, day=w.day(e.held_on), people=w.and_(with_whom)), _text(e.summary)


@_told.register
def _(e: case.ChildViewRecorded, w: _Words) -> Told:
    return w.say("ChildViewRecorded", how=w.say(f"how.{e.how}")), _text(e.view)


@_told.register
def _(e: case.BrightSpotNoted, w: _Words) -> Told:
    return w.say("BrightSpotNoted"), _text(e.note)


@_told.register
def _(e: case.LevelDecided, w: _Words) -> Told:
    return w.say("LevelDecided", level=w.level(e.level)), _text(e.reason)


@_told.register
def _(e: case.Escalated, w: _Words) -> Told:
    return w.say("Escalated", before=w.level(e.from_level), level=w.level(e.to_level)), _text(
        e.reason
    )


@_told.register
def _(e: case.DeEscalated, w: _Words) -> Told:
    return w.say("DeEscalated", before=w.level(e.from_level), level=w.level(e.to_level)), _text(
        e.reason
    )


@_told.register
def _(e: case.DecisionRefused, w: _Words) -> Told:
    return w.say("DecisionRefused"), e.reason


@_told.register
def _(e: case.ProblemDefined, w: _Words) -> Told:
    key = "ProblemDefined.with_guardians" if e.with_guardians else "ProblemDefined"
    return w.say(key), _text(e.description)


@_told.register
def _(e: case.MeasurePlanned, w: _Words) -> Told:
    said = w.say(
        "MeasurePlanned", person=e.responsible, unit=w.unit(e.service), day=w.day(e.evaluation_date)
    )
    return said, _text(e.description)


@_told.register
def _(e: case.MeasureEvaluated, w: _Words) -> Told:
    return w.say("MeasureEvaluated", outcome=w.say(f"outcome.{e.outcome}")), _text(e.notes)


@_told.register
def _(e: case.MeasureEnded, w: _Words) -> Told:
    return w.say("MeasureEnded"), _text(e.reason)


@_told.register
def _(e: case.ReferralSent, w: _Words) -> Told:
    return w.say("ReferralSent", unit=w.unit(e.to_service)), _text(e.purpose)


@_told.register
def _(e: case.AgencyJoined, w: _Words) -> Told:
    return w.say(f"AgencyJoined.{e.basis}", unit=w.unit(e.service)), None


@_told.register
def _(e: case.AgencyLeft, w: _Words) -> Told:
    return w.say(f"AgencyLeft.{e.reason}", unit=w.unit(e.service)), _text(e.note)


@_told.register
def _(e: case.BatonHolderAppointed, w: _Words) -> Told:
    return w.say("BatonHolderAppointed", person=e.holder, unit=w.unit(e.service)), None


@_told.register
def _(e: case.BatonHandoverOffered, w: _Words) -> Told:
    return w.say("BatonHandoverOffered", person=e.to_person, unit=w.unit(e.to_service)), _text(
        e.note
    )


@_told.register
def _(e: case.BatonHandedOver, w: _Words) -> Told:
    said = w.say(
        "BatonHandedOver",
        before=e.from_person,
        before_unit=w.unit(e.from_service),
        person=e.to_person,
        unit=w.unit(e.to_service),
    )
    return said, None


@_told.register
def _(e: case.BatonVacated, w: _Words) -> Told:
    return w.say("BatonVacated", person=e.previous_holder, unit=w.unit(e.service)), None


@_told.register
def _(e: case.CoordinatorAssigned, w: _Words) -> Told:
    return w.say("CoordinatorAssigned", person=e.coordinator, unit=w.unit(e.service)), None


@_told.register
def _(e: case.ResponsibilityGroupFormed, w: _Words) -> Told:
    members = [m.person + (f" ({w.unit(m.service)})" if m.service else "") for m in e.members]
    return w.say("ResponsibilityGroupFormed", people=w.and_(members)), None


@_told.register
def _(e: case.IndividualPlanRequested, w: _Words) -> Told:
    key = (
        "IndividualPlanRequested.guardian" if e.requested_by_guardian else "IndividualPlanRequested"
    )
    return w.say(key), _text(e.note)


@_told.register
def _(e: case.SystemMeasureProposed, w: _Words) -> Told:
    return w.say("SystemMeasureProposed", unit=w.unit(e.unit)), _text(e.description)


@_told.register
def _(e: case.ChildWelfareReportFiled, w: _Words) -> Told:
    said = w.say("ChildWelfareReportFiled", unit=w.unit(e.reported_to), provision=e.legal_basis)
    return said, _text(e.grounds)


@_told.register
def _(e: case.CaseClosed, w: _Words) -> Told:
    return w.say("CaseClosed", level=w.level(e.at_level)), _text(e.reason)


@_told.register
def _(e: case.CaseReopened, w: _Words) -> Told:
    return w.say("CaseReopened"), _text(e.reason)


@_told.register
def _(e: consent.ConsentGiven, w: _Words) -> Told:
    said = w.say(
        f"ConsentGiven.{e.evidence.form}",
        party=w.party(e.given_by.kind, e.given_by.person),
        services=w.units(e.services),
        purposes=w.and_([w.say(f"purpose.{p}") for p in e.purposes]),
        until=w.day(w.local(e.valid_until).date()),
    )
    return said, None


@_told.register
def _(e: consent.ConsentScopeChanged, w: _Words) -> Told:
    said = w.say(
        "ConsentScopeChanged",
        services=w.units(e.services),
        purposes=w.and_([w.say(f"purpose.{p}") for p in e.purposes]),
    )
    return said, None


@_told.register
def _(e: consent.ConsentWithdrawn, w: _Words) -> Told:
    if e.services:
        return w.say("ConsentWithdrawn.services", services=w.units(e.services)), _text(e.reason)
    return w.say("ConsentWithdrawn"), _text(e.reason)


@_told.register
def _(e: consent.ConsentExpired, w: _Words) -> Told:
    return w.say("ConsentExpired"), None


@_told.register
def _(e: consent.LegalBasisRecorded, w: _Words) -> Told:
    said = w.say("LegalBasisRecorded", unit=w.unit(e.service), provision=e.legal_basis)
    return said, _text(e.justification)


@_told.register
def _(e: meeting.MeetingScheduled, w: _Words) -> Told:
    said = w.say(
        "MeetingScheduled", kind=w.say(f"meeting.{e.meeting_type}"), at=w.moment(e.starts_at)
    )
    return said, None


@_told.register
def _(e: meeting.ParticipantInvited, w: _Words) -> Told:
    if e.service is not None:
        return w.say("ParticipantInvited.service", person=e.person, unit=w.unit(e.service)), None
    return w.say("ParticipantInvited", person=w.party(e.kind, e.person)), None


@_told.register
def _(e: meeting.MeetingRescheduled, w: _Words) -> Told:
    return w.say("MeetingRescheduled", at=w.moment(e.starts_at)), _text(e.reason)


@_told.register
def _(e: meeting.MeetingCancelled, w: _Words) -> Told:
    return w.say("MeetingCancelled"), _text(e.reason)


@_told.register
def _(e: meeting.MeetingHeld, w: _Words) -> Told:
    return w.say("MeetingHeld", people=w.and_(list(e.attended))), None


@_told.register
def _(e: meeting.MinutesRecorded, w: _Words) -> Told:
    return w.say("MinutesRecorded"), _text(e.minutes)


@_told.register
def _(e: meeting.DecisionRecorded, w: _Words) -> Told:
    level = None if e.to_level is None else w.level(e.to_level)
    return w.say(f"DecisionRecorded.{e.kind}", level=level), _text(e.reason)


@_told.register
def _(e: meeting.ActionItemAssigned, w: _Words) -> Told:
    return w.say("ActionItemAssigned", person=e.owner, day=w.day(e.due_on)), _text(e.description)


@_told.register
def _(e: meeting.ActionItemCompleted, w: _Words) -> Told:
    return w.say("ActionItemCompleted"), _text(e.note)


@_told.register
def _(e: meeting.FeedbackGiven, w: _Words) -> Told:
    return w.say("FeedbackGiven", rating=e.rating, heard=e.heard), _text(e.comment)


@_told.register
def _(e: notify.FollowUpBreakDetected, w: _Words) -> Told:
    said = w.say(f"FollowUpBreakDetected.{e.cause}", stage=w.say(f"stage.{e.stage}"))
    return said, _text(e.note)


_DECISIONS = (
    case.Escalated,
    case.DeEscalated,
    case.LevelDecided,
    case.CaseClosed,
    case.CaseReopened,
    case.DecisionRefused,
    meeting.DecisionRecorded,
)


def _decision(event: Event, what: str, by: Who, words: _Words) -> Decision | None:
    if not isinstance(event, _DECISIONS):
        return None
    level: int | None = None
    if isinstance(event, case.Escalated | case.DeEscalated):
        level = event.to_level
    elif isinstance(event, case.LevelDecided):
        level = event.level
    elif isinstance(event, case.CaseClosed):
        level = event.at_level
    participants = getattr(event, "participants", ())
    return Decision(
        at=event.occurred_at,
        decision=what,
        level=level,
        level_name=None if level is None else words.level(level),
        decided_by=by,
        with_whom=list(participants),
        why=_text(getattr(event, "reason", None)),
    )


def _measure(event: Event, measures: dict[UUID, Measure], by: Who, words: _Words) -> None:
    if isinstance(event, case.MeasurePlanned):
        measures[event.measure_id] = Measure(
            description=_text(event.description) or "",
            responsible=event.responsible,
            unit=words.unit(event.service),
            planned_at=event.occurred_at,
            planned_by=by,
            evaluation_date=event.evaluation_date,
        )
    elif isinstance(event, case.MeasureEvaluated) and event.measure_id in measures:
        planned = measures[event.measure_id]
        evaluation = Evaluation(
            at=event.occurred_at,
            outcome=words.say(f"outcome.{event.outcome}"),
            notes=_text(event.notes) or "",
            by=by,
            next_evaluation=event.next_evaluation_date,
        )
        measures[event.measure_id] = msgspec.structs.replace(
            planned, evaluations=[*planned.evaluations, evaluation]
        )
    elif isinstance(event, case.MeasureEnded) and event.measure_id in measures:
        measures[event.measure_id] = msgspec.structs.replace(
            measures[event.measure_id],
            ended_at=event.occurred_at,
            ended_because=_text(event.reason),
        )


def _md(text: str) -> str:
    """Text as Markdown shows it: on one line, with Markdown's own characters escaped."""
    flat = " ".join(text.split())
    return "".join(f"\\{c}" if c in _MARKDOWN else c for c in flat)


_MARKDOWN = frozenset("\\`*_{}[]<>#|!")


def _text(value: SealedText | str | None) -> str | None:
    """Free text as the document shows it: the API opened it before (an erased one is words);
    a sealed value never reaches a document in clear, nor as ciphertext."""
    if isinstance(value, SealedText):
        return "(sealed)"
    return value
