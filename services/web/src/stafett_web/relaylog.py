"""The relay log in plain language: what happened, who did it, when, and why.

Each entry the projection shows is decoded into its contract event (`stafett_contracts`) and
told as one sentence in the reader's language, with the words its author wrote (a reason, a
note, a summary) beside it. What the services record for their own bookkeeping is not part of
the story and is left out: the case's notes of consent it learned from the consent service
(told once, by the consent service's own events), the meeting service's copy of the roster,
notifications and their delivery, reads (the access log tells those), and a service's record of
its own processing. Nothing is shown as
raw data: an entry of a type this version does not know is left out too, never dumped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from functools import singledispatch
from typing import Any

import msgspec

from stafett_contracts import case, consent, meeting, notify
from stafett_contracts.catalogue import EVENTS
from stafett_contracts.envelope import Event
from stafett_contracts.personal import Erased, SealedText
from stafett_web.i18n import Translator
from stafett_web.models import Entry, Words

# The services' bookkeeping: recorded, never part of the story a person reads.
SYSTEM_EVENTS = frozenset(
    {
        "ConsentNoted",  # the case's copy of ConsentGiven / ConsentScopeChanged
        "ConsentLapsed",  # the case's copy of ConsentWithdrawn / ConsentExpired
        "LegalBasisNoted",  # the case's copy of LegalBasisRecorded
        "CaseRosterNoted",  # the meeting service's copy of the case's roster
        "NotificationRequested",
        "NotificationSent",
        "NotificationFailed",
        "ReminderScheduled",
        "CalendarInvitationPrepared",
        "DeliveryAttempted",
        "DeliveryAttemptFailed",
        "CaseAccessed",  # reads: the access log tells them
        "ProcessingParked",  # a service's own handling of an event, for its operators
        "ParkedEventRetried",
        "GuidePublished",  # the municipality's configuration, of no case
        "ArchiveDelivered",  # the archive's copy: the access log and the operators tell it
        "ArchiveDeliveryFailed",
        "ChildErased",  # of the child, not of one case; the page says "erased" instead
    }
)

UnitName = Callable[[str | None], str]


class Line(msgspec.Struct, frozen=True, kw_only=True):
    """One thing that happened, as a person reads it: who did it is in the sentence."""

    at: datetime
    what: str
    text: Words | None = None  # what its author wrote: the reason, the note, the summary
    child_view: Words | None = None  # beside a decision: what the child thinks of it


class Said(msgspec.Struct, frozen=True, kw_only=True):
    what: str
    text: Words | None = None
    child_view: Words | None = None


def lines(entries: Iterable[Entry], t: Translator, unit: UnitName) -> list[Line]:
    """The entries a person reads, oldest first, in plain language."""
    told = []
    for entry in entries:
        if entry.type in SYSTEM_EVENTS:
            continue
        event = _decode(entry)
        if event is None:
            continue
        by = who(entry.person, entry.role, entry.service, t, unit)
        said = describe(event, t.knowing(who=by), unit)
        if said is None:
            continue
        told.append(
            Line(at=entry.occurred_at, what=said.what, text=said.text, child_view=said.child_view)
        )
    return told


def who(person: str, role: str, service: str | None, t: Translator, unit: UnitName) -> str:
    """A person as a log names them: their id, and their role or unit."""
    if role == "system":
        return t("who.system")
    if service:
        return t("who.staff", person=person, unit=unit(service))
    role_key = f"role.{role}"
    return t("who.person", person=person, role=t(role_key) if t.has(role_key) else role)


def basis(said: str | None, t: Translator) -> str:
    """Why someone may read the case, as the access rule says it, in the reader's words."""
    if not said:
        return ""
    kind = said.partition(" ")[0]
    if said in ("audit", "guardian", "the child", "own unit"):
        return t(f"basis.{said.replace(' ', '_')}")
    if kind == "consent":
        return t("basis.consent")
    for prefix, key in (("legal basis: ", "legal_basis"), ("report to child welfare: ", "report")):
        if said.startswith(prefix):
            return f"{t(f'basis.{key}')}: {said.removeprefix(prefix)}"
    return said


def level_name(level: int | None, t: Translator) -> str:
    if level is None or not 0 <= level <= 3:
        return t("level.unknown")
    return t(f"level.{level}")


def _decode(entry: Entry) -> Event | None:
    version = entry.event.get("schema_version", 1)
    cls = EVENTS.get(f"{entry.stream.lower()}.{entry.type}@{version}")
    if cls is None:
        return None
    try:
        return msgspec.convert(_erased_as_sealed(entry.event), cls)
    except msgspec.ValidationError:
        return None


# The projection answers free text opened, or as `Erased` once the child is erased. The contract
# types free text as sealed or a string (`PrivateText`), so an erased text stands in the decoded
# event as this sealed value, which the web cannot open: `words` tells it as erased.
_ERASED = SealedText(child_id="erased", nonce="", ciphertext="")
_ERASED_JSON = msgspec.to_builtins(_ERASED)


def _erased_as_sealed(value: Any) -> Any:
    if isinstance(value, dict):
        if value.get("erased") is True:
            return _ERASED_JSON
        return {key: _erased_as_sealed(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_erased_as_sealed(item) for item in value]
    return value


def words(text: SealedText | str | None) -> Words | None:
    """A text of an event as the reader is told it: opened by the projection (a string), or
    still sealed, which it is only when the child's key is gone: erased."""
    return Erased() if isinstance(text, SealedText) else text


def _people(people: Iterable[str]) -> str:
    return ", ".join(people)


@singledispatch
def describe(event: Event, t: Translator, unit: UnitName) -> Said | None:
    """The sentence that tells `event`; None for what is not told."""
    return None


# The case


@describe.register
def _(e: case.ConcernRaised, t: Translator, unit: UnitName) -> Said:
    return Said(what=t("log.ConcernRaised", unit=unit(e.unit)), text=words(e.concern))


@describe.register
def _(e: case.ConcernShared, t: Translator, unit: UnitName) -> Said:
    return Said(what=t("log.ConcernShared", person=e.shared_with), text=words(e.note))


@describe.register
def _(e: case.WonderingConversationHeld, t: Translator, unit: UnitName) -> Said:
    with_whom = [
        *([t("log.with_guardians")] if e.with_guardians else []),
        *([t("log.with_child")] if e.with_child else []),
    ]
    return Said(
        what=t(
            "log.WonderingConversationHeld",
            day=t.day(e.held_on),
            with_whom=", ".join(with_whom) or "-",
        ),
        text=words(e.summary),
    )


@describe.register
def _(e: case.ChildViewRecorded, t: Translator, unit: UnitName) -> Said:
    return Said(what=t("log.ChildViewRecorded", how=t(f"how.{e.how}")), text=words(e.view))


@describe.register
def _(e: case.BrightSpotNoted, t: Translator, unit: UnitName) -> Said:
    return Said(what=t("log.BrightSpotNoted"), text=words(e.note))


@describe.register
def _(e: case.LevelDecided, t: Translator, unit: UnitName) -> Said:
    return Said(
        what=t("log.LevelDecided", level=level_name(e.level, t)),
        text=words(e.reason),
        child_view=words(e.child_view),
    )


@describe.register
def _(e: case.Escalated, t: Translator, unit: UnitName) -> Said:
    return Said(
        what=t(
            "log.Escalated", level=level_name(e.to_level, t), before=level_name(e.from_level, t)
        ),
        text=words(e.reason),
        child_view=words(e.child_view),
    )


@describe.register
def _(e: case.DeEscalated, t: Translator, unit: UnitName) -> Said:
    return Said(
        what=t(
            "log.DeEscalated", level=level_name(e.to_level, t), before=level_name(e.from_level, t)
        ),
        text=words(e.reason),
        child_view=words(e.child_view),
    )


@describe.register
def _(e: case.DecisionRefused, t: Translator, unit: UnitName) -> Said:
    return Said(what=t("log.DecisionRefused"), text=words(e.reason))


@describe.register
def _(e: case.ProblemDefined, t: Translator, unit: UnitName) -> Said:
    key = "log.ProblemDefined.with_guardians" if e.with_guardians else "log.ProblemDefined"
    return Said(what=t(key), text=words(e.description))


@describe.register
def _(e: case.MeasurePlanned, t: Translator, unit: UnitName) -> Said:
    what = t(
        "log.MeasurePlanned",
        person=e.responsible,
        unit=unit(e.service),
        day=t.day(e.evaluation_date),
    )
    return Said(what=what, text=words(e.description))


@describe.register
def _(e: case.MeasureEvaluated, t: Translator, unit: UnitName) -> Said:
    return Said(
        what=t("log.MeasureEvaluated", outcome=t(f"outcome.{e.outcome}")), text=words(e.notes)
    )


@describe.register
def _(e: case.MeasureEnded, t: Translator, unit: UnitName) -> Said:
    return Said(what=t("log.MeasureEnded"), text=words(e.reason))


@describe.register
def _(e: case.ReferralSent, t: Translator, unit: UnitName) -> Said:
    return Said(what=t("log.ReferralSent", unit=unit(e.to_service)), text=words(e.purpose))


@describe.register
def _(e: case.AgencyJoined, t: Translator, unit: UnitName) -> Said:
    return Said(what=t(f"log.AgencyJoined.{e.basis}", unit=unit(e.service)))


@describe.register
def _(e: case.AgencyLeft, t: Translator, unit: UnitName) -> Said:
    return Said(what=t(f"log.AgencyLeft.{e.reason}", unit=unit(e.service)), text=words(e.note))


@describe.register
def _(e: case.BatonHolderAppointed, t: Translator, unit: UnitName) -> Said:
    return Said(what=t("log.BatonHolderAppointed", person=e.holder, unit=unit(e.service)))


@describe.register
def _(e: case.BatonHandoverOffered, t: Translator, unit: UnitName) -> Said:
    what = t("log.BatonHandoverOffered", person=e.to_person, unit=unit(e.to_service))
    return Said(what=what, text=words(e.note))


@describe.register
def _(e: case.BatonHandedOver, t: Translator, unit: UnitName) -> Said:
    return Said(what=t("log.BatonHandedOver", person=e.to_person, unit=unit(e.to_service)))


@describe.register
def _(e: case.BatonVacated, t: Translator, unit: UnitName) -> Said:
    return Said(what=t("log.BatonVacated", person=e.previous_holder, unit=unit(e.service)))


@describe.register
def _(e: case.CoordinatorAssigned, t: Translator, unit: UnitName) -> Said:
    return Said(what=t("log.CoordinatorAssigned", person=e.coordinator, unit=unit(e.service)))


@describe.register
def _(e: case.ResponsibilityGroupFormed, t: Translator, unit: UnitName) -> Said:
    members = _people(m.person for m in e.members)
    return Said(what=t("log.ResponsibilityGroupFormed", people=members))


@describe.register
def _(e: case.IndividualPlanRequested, t: Translator, unit: UnitName) -> Said:
    key = (
        "log.IndividualPlanRequested.guardian"
        if e.requested_by_guardian
        else ("log.IndividualPlanRequested")
    )
    return Said(what=t(key), text=words(e.note))


@describe.register
def _(e: case.SystemMeasureProposed, t: Translator, unit: UnitName) -> Said:
    return Said(what=t("log.SystemMeasureProposed", unit=unit(e.unit)), text=words(e.description))


@describe.register
def _(e: case.ChildWelfareReportFiled, t: Translator, unit: UnitName) -> Said:
    what = t("log.ChildWelfareReportFiled", unit=unit(e.reported_to), provision=e.legal_basis)
    return Said(what=what, text=words(e.grounds))


@describe.register
def _(e: case.CaseClosed, t: Translator, unit: UnitName) -> Said:
    return Said(
        what=t("log.CaseClosed", level=level_name(e.at_level, t)),
        text=words(e.reason),
        child_view=words(e.child_view),
    )


@describe.register
def _(e: case.CaseReopened, t: Translator, unit: UnitName) -> Said:
    return Said(what=t("log.CaseReopened"), text=words(e.reason))


# Consent


def _services(services: Iterable[str], unit: UnitName) -> str:
    return ", ".join(unit(s) for s in services)


def _purposes(purposes: Iterable[str], t: Translator) -> str:
    return ", ".join(t(f"purpose.{p}") for p in purposes)


@describe.register
def _(e: consent.ConsentGiven, t: Translator, unit: UnitName) -> Said:
    what = t(
        f"log.ConsentGiven.{e.evidence.form}",
        party=e.given_by.person,
        services=_services(e.services, unit),
        purposes=_purposes(e.purposes, t),
        until=t.day(e.valid_until),
    )
    return Said(what=what)


@describe.register
def _(e: consent.ConsentScopeChanged, t: Translator, unit: UnitName) -> Said:
    what = t(
        "log.ConsentScopeChanged",
        services=_services(e.services, unit),
        purposes=_purposes(e.purposes, t),
    )
    return Said(what=what)


@describe.register
def _(e: consent.ConsentWithdrawn, t: Translator, unit: UnitName) -> Said:
    if e.services:
        return Said(
            what=t("log.ConsentWithdrawn.services", services=_services(e.services, unit)),
            text=words(e.reason),
        )
    return Said(what=t("log.ConsentWithdrawn"), text=words(e.reason))


@describe.register
def _(e: consent.ConsentExpired, t: Translator, unit: UnitName) -> Said:
    return Said(what=t("log.ConsentExpired"))


@describe.register
def _(e: consent.LegalBasisRecorded, t: Translator, unit: UnitName) -> Said:
    what = t("log.LegalBasisRecorded", unit=unit(e.service), provision=e.legal_basis)
    return Said(what=what, text=words(e.justification))


# Meetings


@describe.register
def _(e: meeting.MeetingScheduled, t: Translator, unit: UnitName) -> Said:
    what = t("log.MeetingScheduled", kind=t(f"meeting.{e.meeting_type}"), when=t.when(e.starts_at))
    return Said(what=what)


@describe.register
def _(e: meeting.ParticipantInvited, t: Translator, unit: UnitName) -> Said:
    if e.kind == "service":
        return Said(what=t("log.ParticipantInvited.service", person=e.person, unit=unit(e.service)))
    return Said(what=t("log.ParticipantInvited", person=e.person, role=t(f"role.{e.kind}")))


@describe.register
def _(e: meeting.MeetingRescheduled, t: Translator, unit: UnitName) -> Said:
    return Said(what=t("log.MeetingRescheduled", when=t.when(e.starts_at)), text=words(e.reason))


@describe.register
def _(e: meeting.MeetingCancelled, t: Translator, unit: UnitName) -> Said:
    return Said(what=t("log.MeetingCancelled"), text=words(e.reason))


@describe.register
def _(e: meeting.MeetingHeld, t: Translator, unit: UnitName) -> Said:
    return Said(what=t("log.MeetingHeld", people=_people(e.attended)))


@describe.register
def _(e: meeting.MinutesRecorded, t: Translator, unit: UnitName) -> Said:
    return Said(what=t("log.MinutesRecorded"), text=words(e.minutes))


@describe.register
def _(e: meeting.DecisionRecorded, t: Translator, unit: UnitName) -> Said:
    if e.kind == "move_to_level":
        return Said(
            what=t("log.DecisionRecorded.move", level=level_name(e.to_level, t)),
            text=words(e.reason),
            child_view=words(e.child_view),
        )
    return Said(
        what=t(f"log.DecisionRecorded.{e.kind}"),
        text=words(e.reason),
        child_view=words(e.child_view),
    )


@describe.register
def _(e: meeting.ActionItemAssigned, t: Translator, unit: UnitName) -> Said:
    what = t("log.ActionItemAssigned", person=e.owner, day=t.day(e.due_on))
    return Said(what=what, text=words(e.description))


@describe.register
def _(e: meeting.ActionItemCompleted, t: Translator, unit: UnitName) -> Said:
    return Said(what=t("log.ActionItemCompleted"), text=words(e.note))


@describe.register
def _(e: meeting.FeedbackGiven, t: Translator, unit: UnitName) -> Said:
    what = t("log.FeedbackGiven", rating=e.rating, heard=e.heard)
    return Said(what=what, text=words(e.comment))


# Follow-up


@describe.register
def _(e: notify.FollowUpBreakDetected, t: Translator, unit: UnitName) -> Said:
    what = t(f"log.FollowUpBreakDetected.{e.cause}", stage=t(f"break.stage.{e.stage}"))
    return Said(what=what, text=words(e.note))
