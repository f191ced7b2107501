"""Who may read a child's case, and what of it: the one access rule (DOMAIN.md rules 1-4, 7, 9).

Every service that serves anything about a case asks `read_access` before it says a word, and
shows only what the answer allows. Nothing here reads a request: the case comes from its events
(`stafett_contracts.casefile`), the child's guardians and birth date from the population register,
the units and their leaders from the municipality directory, and who asks from a verified token.

| who asks | may read | and sees |
|---|---|---|
| an auditor who states a purpose | any case | every entry, and who the child is |
| a guardian of the child, as the register says | the child's cases | every entry, and who the child is (rule 7) |
| the child, from the reading age by the register's birth date | their own cases | every entry, and who they are |
| someone of the unit where the worry arose | its cases | every entry, and who the child is: it is the unit's own record |
| someone of another unit in the directory, while a consent, a legal basis or a report to child welfare covers that unit | the case | the entries from the periods it was covered (rules 1, 3); under a legal basis or a report, also what came before (rule 4); under a consent for a handover, also the handover packet's entries from before (`HANDOVER_ENTRIES`) and the case's state now; who the child is, unless the unit is covered only for a TVIST discussion |
| anyone else | nothing | |

A reader may name a consent purpose (`cooperation`, `tvist`, `referral`, `handover`): then only
consents given for that purpose count. An auditor's purpose is free text and is required.

A handover (kindergarten to school) exists to carry what was tried before the receiving unit came
in, and nothing else: under the guardians' consent to the transition (purpose `handover`), the
receiver sees, from the whole case, the measures and their evaluations, the decisions on the
level (and a meeting's decisions), the action items, and the case's state now (level, unit, baton
holder, coordinator, open measures: `state_shown`); of what came before its consent, nothing more.
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar
from uuid import UUID

import msgspec

from stafett_contracts.case import CaseEvent
from stafett_contracts.casefile import CaseFile, CaseSummary, Period, fold, says_level, summarise
from stafett_contracts.consent import Purpose
from stafett_contracts.identity import STAFF, Actor, Role
from stafett_contracts.people import Directory, RegisteredChild

CONSENT_PURPOSES = frozenset(str(p) for p in Purpose)
ANONYMOUS_PURPOSES = frozenset({str(Purpose.TVIST)})  # a TVIST discussion needs no name

# What a receiving unit sees of the case from before its consent to a handover: what was tried,
# how it went, what was decided and what is still to be done (the handover packet), by event type.
HANDOVER_ENTRIES = frozenset(
    {
        "MeasurePlanned",
        "MeasureEvaluated",
        "MeasureEnded",
        "LevelDecided",
        "Escalated",
        "DeEscalated",
        "DecisionRecorded",
        "ActionItemAssigned",
        "ActionItemCompleted",
    }
)

# The rules, as a decision names them.
AUDITOR_STATES_PURPOSE = "auditor-states-purpose"
GUARDIAN_OF_THE_CHILD = "guardian-of-the-child"
CHILD_READS_FROM_AGE = "child-reads-from-age"
OWN_UNIT = "own-unit"
UNIT_IN_DIRECTORY = "unit-in-directory"
COVERED_NOW = "covered-now"
ROLE_READS_NO_CASES = "role-reads-no-cases"


class ReadRules(msgspec.Struct, frozen=True, kw_only=True):
    """What a municipality configures: from which age a child reads their own case."""

    child_reads_from_age: int = 15


class Access(msgspec.Struct, frozen=True, kw_only=True):
    """The answer: granted or refused, by which rule, on what basis, and what may be shown."""

    granted: bool
    rule: str
    basis: str | None = None  # what grants it: "guardian", "consent <id>", "legal basis: ..."
    refusal: str | None = None  # why not, in words
    whole_case: bool = False  # every entry; otherwise those `periods` show
    periods: tuple[Period, ...] = ()
    identity: bool = False  # the child's name, birth date and national id
    handover: bool = False  # a receiving unit: the handover packet's entries from any time

    def shows(self, at: datetime, kind: str | None = None) -> bool:
        """Whether an entry made at `at`, of event type `kind`, may be shown."""
        if not self.granted:
            return False
        if self.whole_case or any(p.shows(at) for p in self.periods):
            return True
        return self.handover and kind in HANDOVER_ENTRIES


def read_access(
    case: CaseFile,
    actor: Actor,
    *,
    child: RegisteredChild | None,
    directory: Directory,
    now: datetime,
    purpose: str | None = None,
    rules: ReadRules | None = None,
) -> Access:
    """May `actor` read `case` now, and what of it? `child` is the register's record of the
    case's child (None if the register does not know them)."""
    rules = rules or ReadRules()
    match actor.role:
        case Role.AUDITOR:
            if not (purpose or "").strip():
                return _refused(AUDITOR_STATES_PURPOSE, "an auditor must state a purpose")
            return _everything(AUDITOR_STATES_PURPOSE, "audit")
        case Role.GUARDIAN:
            if child is not None and child.is_guardian(actor.person):
                return _everything(GUARDIAN_OF_THE_CHILD, "guardian")
            return _refused(
                GUARDIAN_OF_THE_CHILD, "the register names no such guardian of the case's child"
            )
        case Role.CHILD:
            return _as_the_child(actor, child, now, rules)
        case role if role in STAFF:
            return _as_staff(case, actor, directory, now, purpose)
        case _:
            return _refused(ROLE_READS_NO_CASES, f"the role {actor.role} does not read cases")


def _as_the_child(
    actor: Actor, child: RegisteredChild | None, now: datetime, rules: ReadRules
) -> Access:
    if child is None or not child.is_the_child(actor.person):
        return _refused(CHILD_READS_FROM_AGE, "the register does not name you as the case's child")
    if child.age_on(now.date()) < rules.child_reads_from_age:
        return _refused(
            CHILD_READS_FROM_AGE,
            f"a child reads their own case from the age of {rules.child_reads_from_age}",
        )
    return _everything(CHILD_READS_FROM_AGE, "the child")


def _as_staff(
    case: CaseFile, actor: Actor, directory: Directory, now: datetime, purpose: str | None
) -> Access:
    service = actor.service
    if service is None or directory.unit(service) is None:
        return _refused(UNIT_IN_DIRECTORY, f"the unit {service} is not in the directory")
    if service == case.unit:
        return _everything(OWN_UNIT, "own unit")
    named = (purpose,) if purpose in CONSENT_PURPOSES else tuple(CONSENT_PURPOSES)
    periods = tuple(p for p in case.periods_of(service) if p.serves(named))
    current = [p for p in periods if p.holds(now)]
    if not current:
        for_what = f" for {purpose}" if purpose in CONSENT_PURPOSES else ""
        return _refused(
            COVERED_NOW, f"no consent, legal basis or report covers {service}{for_what} now"
        )
    return Access(
        granted=True,
        rule=COVERED_NOW,
        basis=_basis(current[0]),
        periods=periods,
        identity=any(_names_the_child(p) for p in current),
        handover=str(Purpose.HANDOVER) in named and any(_hands_over(p) for p in current),
    )


def _hands_over(period: Period) -> bool:
    return period.basis == "consent" and str(Purpose.HANDOVER) in period.purposes


def _names_the_child(period: Period) -> bool:
    return period.basis != "consent" or not set(period.purposes) <= ANONYMOUS_PURPOSES


def _basis(period: Period) -> str:
    match period.basis:
        case "consent":
            return f"consent {period.ref}"
        case "legal_basis":
            return f"legal basis: {period.ref}"
        case _:
            return f"report to child welfare: {period.ref}"


def _everything(rule: str, basis: str) -> Access:
    return Access(granted=True, rule=rule, basis=basis, whole_case=True, identity=True)


def _refused(rule: str, why: str) -> Access:
    return Access(granted=False, rule=rule, refusal=why)


class Dated(Protocol):
    @property
    def occurred_at(self) -> datetime: ...


D = TypeVar("D", bound=Dated)


def visible(access: Access, entries: Iterable[D]) -> list[D]:
    """The entries `access` lets its reader see, in the order given."""
    return [e for e in entries if access.shows(e.occurred_at, _kind(e))]


def _kind(entry: object) -> str:
    """An entry's event type: a read model's entry names it, an event is it."""
    kind = getattr(entry, "type", None)
    return kind if isinstance(kind, str) else type(entry).__name__


def case_shown(access: Access, case_id: UUID, events: Iterable[CaseEvent]) -> CaseFile:
    """The case file as `access` lets its reader know it, from `events` (the case's, in order):
    folded from those it shows; for a receiving unit at a handover, with the case's state as it
    stands from all of them (level, unit, baton holder, coordinator, services, measures, where
    it is in its guide), since that is what the handover hands over. Nothing else from before
    the reader's consent (the concern, consents, periods) is in it."""
    events = list(events)
    unknown = CaseFile.unknown(case_id)
    shown = fold(visible(access, events), start=unknown) or unknown
    if not access.handover:
        return shown
    now = fold(events, start=unknown) or unknown
    return msgspec.structs.replace(
        shown,
        level=now.level,
        closed=now.closed,
        unit=now.unit,
        holder=now.holder,
        offer=now.offer,
        coordinator=now.coordinator,
        services=now.services,
        measures=now.measures,
        guides=now.guides,
        at_level=now.at_level,
        handed_to=now.handed_to,
    )


def state_shown(access: Access, case_id: UUID, events: Iterable[CaseEvent]) -> CaseSummary:
    """The case's state as `access` lets its reader know it (`case_shown`), summarised; the level
    is known from an entry that tells it, or, at a handover, from the case as it stands."""
    events = list(events)
    shown = visible(access, events)
    if not (events if access.handover else shown):
        return CaseSummary()
    knows_level = access.handover or says_level(shown)
    return summarise(case_shown(access, case_id, events), knows_level=knows_level)


def overrides(case: CaseFile) -> Sequence[Period]:
    """The periods a service took part without consent: legal bases and reports (rule 4)."""
    return tuple(p for p in case.periods if p.basis != "consent")
