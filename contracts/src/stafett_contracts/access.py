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
| someone of another unit in the directory, while a consent, a legal basis or a report to child welfare covers that unit | the case | the entries from the periods it was covered (rules 1, 3); under a legal basis or a report, also what came before (rule 4); who the child is, unless the unit is covered only for a TVIST discussion |
| anyone else | nothing | |

A reader may name a consent purpose (`cooperation`, `tvist`, `referral`): then only consents
given for that purpose count. An auditor's purpose is free text and is required.
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Protocol, TypeVar

import msgspec

from stafett_contracts.casefile import CaseFile, Period
from stafett_contracts.consent import Purpose
from stafett_contracts.identity import STAFF, Actor, Role
from stafett_contracts.people import Directory, RegisteredChild

CONSENT_PURPOSES = frozenset(str(p) for p in Purpose)
ANONYMOUS_PURPOSES = frozenset({str(Purpose.TVIST)})  # a TVIST discussion needs no name

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

    def shows(self, at: datetime) -> bool:
        """Whether an entry made at `at` may be shown."""
        return self.granted and (self.whole_case or any(p.shows(at) for p in self.periods))


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
    )


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
    return [e for e in entries if access.shows(e.occurred_at)]


def overrides(case: CaseFile) -> Sequence[Period]:
    """The periods a service took part without consent: legal bases and reports (rule 4)."""
    return tuple(p for p in case.periods if p.basis != "consent")
