"""Facts about people that no request may assert: who a child's guardians are, how old the child
is, which units exist and who leads them.

They come from two sources of record, never from a request or a token's say-so:

- the population register (Folkeregisteret, CPR): a child, their birth date and the people with
  parental responsibility. `RegisteredChild` is one answer of the register, as the runtime's
  `Register` port gives it (`stafett_runtime.register`);
- the municipality directory: each unit (kindergarten, school, PPT, child welfare ...), the
  municipal service it belongs to, and its leader; and which legal provisions let a service take
  part in a case without consent. `Directory` is that file, as the runtime loads it.

A token says who someone is (person, role, service); these say what follows from that.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal
from uuid import UUID

import msgspec

from stafett_contracts.envelope import PersonRef, ServiceRef
from stafett_contracts.inputs import NationalId

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
Provision = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]  # "barnevernsloven § 2-1"


class RegisteredChild(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A child as the population register knows them.

    `child_id` is the child's pseudonym: the same in every case, and the only way events name the
    child. `person` is the id the identity provider gives the child, when the child signs in
    themselves. `guardians` are the person ids of those with parental responsibility.
    """

    child_id: UUID
    national_id: NationalId
    name: Name
    birth_date: date
    person: PersonRef | None = None
    guardians: tuple[PersonRef, ...] = ()

    def age_on(self, day: date) -> int:
        return age_on(self.birth_date, day)

    def is_guardian(self, person: str) -> bool:
        return person in self.guardians

    def is_the_child(self, person: str) -> bool:
        return self.person is not None and self.person == person


def age_on(birth_date: date, day: date) -> int:
    """Whole years of age on `day` (a child born on 29 February turns a year older on 1 March)."""
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return day.year - birth_date.year - before_birthday


class ServiceKind(StrEnum):
    """Which municipal service a unit belongs to (DOMAIN.md, "Why it exists")."""

    KINDERGARTEN = "kindergarten"
    SCHOOL = "school"
    HEALTH_CLINIC = "health_clinic"
    AFTER_SCHOOL = "after_school"
    PPT = "ppt"  # educational-psychological service
    CHILD_WELFARE = "child_welfare"  # barnevern
    CHILD_PSYCHIATRY = "child_psychiatry"  # BUP / ABUP
    FAMILY_CENTRE = "family_centre"
    NAV = "nav"
    POLICE = "police"

    @property
    def basic(self) -> bool:
        """A service that meets every child (kindergarten, school, health clinic, after-school
        care), as against the helper services behind them (PPT, child welfare, BUP ...)."""
        return self in _BASIC_SERVICES


_BASIC_SERVICES = frozenset(
    {
        ServiceKind.KINDERGARTEN,
        ServiceKind.SCHOOL,
        ServiceKind.HEALTH_CLINIC,
        ServiceKind.AFTER_SCHOOL,
    }
)


class Unit(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One unit of the municipality: a kindergarten, a school, the PPT office ..."""

    name: Name
    kind: ServiceKind
    leader: PersonRef  # the person id of the unit's leader (styrer, rektor, enhetsleder)


# Provisions that let a service take part in a case without consent, and the kinds of service
# each empowers. The municipality's directory may add to them; these are the national ones.
DEFAULT_LEGAL_BASES: dict[str, tuple[ServiceKind, ...]] = {
    "barnevernsloven § 2-1": (ServiceKind.CHILD_WELFARE,),  # child welfare's investigation
    "barnevernsloven § 2-2": (ServiceKind.CHILD_WELFARE,),  # examining a report of concern
    "helsepersonelloven § 33": (ServiceKind.HEALTH_CLINIC,),  # health staff's duty to report
    "opplæringslova § 5-4": (ServiceKind.PPT,),  # PPT's expert assessment
}


# DOMAIN.md rule 10 asks for a set period and names none: this is Stafett's default, for the
# municipality to change. The archive (the pupil's file) keeps the record; this is how long
# Stafett itself keeps a closed case's personal data after that.
DEFAULT_CLOSED_CASE_YEARS = 5


class Retention(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How long the municipality keeps a child's closed cases before their personal data is
    shredded (DOMAIN.md rule 10): counted from the last of the child's cases to close, and only
    once each closed case is delivered to the archive. 0 shreds as soon as that is done."""

    closed_case_years: Annotated[int, msgspec.Meta(ge=0, le=100)] = DEFAULT_CLOSED_CASE_YEARS


Days = Annotated[int, msgspec.Meta(ge=1, le=3650)]
DaysAfter = Annotated[int, msgspec.Meta(ge=0, le=3650)]  # 0: from the day after


class LevelDeadlines(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The deadlines a municipality sets otherwise at one level; those not given are its own."""

    inactivity_days: Days | None = None
    evaluation_overdue_days: DaysAfter | None = None
    minutes_days: Days | None = None
    escalation_days: Days | None = None


class Deadlines(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """How long is too long, in days (DOMAIN.md rule 6): each deadline missed is a follow-up
    break, told to the baton holder (the unit leader when there is none) and, if still nothing
    is done `escalation_days` later, to the unit leader. The seeds' action guides say who acts
    at each step but set no numbers: these defaults are Stafett's, for the municipality to set.
    `levels` sets any of the last four otherwise at one level (0-3)."""

    decision_days: Days = 28  # level 0: decide (close, or go on) within this of the concern
    evaluation_overdue_days: DaysAfter = 0  # a measure not evaluated this long after its date
    inactivity_days: Days = 14  # a case with nothing recorded on it for this long
    minutes_days: Days = 7  # a meeting held without minutes for this long
    escalation_days: Days = 7  # still nothing this long after the first: the unit leader
    reminder_lead_days: Days = 3  # a reminder this long before an evaluation or due date
    levels: dict[Literal["0", "1", "2", "3"], LevelDeadlines] = {}

    def at_level(self, level: int) -> Deadlines:
        """The deadlines in force at `level`: the municipality's, with that level's own."""
        own = {int(key): given for key, given in self.levels.items()}.get(level)
        if own is None:
            return self
        given = {f: getattr(own, f) for f in own.__struct_fields__ if getattr(own, f) is not None}
        return msgspec.structs.replace(self, **given)


class Directory(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The municipality directory: its units by id (the `service` a token names), the legal
    provisions that let a kind of service take part in a case without consent, how long
    closed cases are kept (`retention`), and the deadlines of follow-up (`deadlines`)."""

    municipality: Name = "Stafett"
    units: dict[ServiceRef, Unit] = {}
    legal_bases: dict[Provision, tuple[ServiceKind, ...]] = {}
    retention: Retention = Retention()
    deadlines: Deadlines = Deadlines()

    def unit(self, service: str | None) -> Unit | None:
        return None if service is None else self.units.get(service)

    def leads(self, person: str, service: str | None) -> bool:
        """Whether `person` leads the unit `service`, as the directory says."""
        unit = self.unit(service)
        return unit is not None and unit.leader == person

    def leader_of(self, service: str | None) -> str | None:
        unit = self.unit(service)
        return None if unit is None else unit.leader

    def kind_of(self, service: str | None) -> ServiceKind | None:
        unit = self.unit(service)
        return None if unit is None else unit.kind

    def takes_over(self, owner: str, receiver: str) -> bool:
        """Whether a baton handed to `receiver` moves the case to it from the unit that owns it:
        a transition between units of the same kind of service (kindergarten to school: both
        basic services), never a handover or referral to a helper service (PPT, child welfare,
        BUP ...) while a basic service owns the case, nor to a unit the directory does not know."""
        owner_kind, receiver_kind = self.kind_of(owner), self.kind_of(receiver)
        if owner == receiver or owner_kind is None or receiver_kind is None:
            return False
        return owner_kind.basic == receiver_kind.basic

    def empowers(self, provision: str, service: str) -> bool:
        """Whether the provision lets `service` take part in a case without consent."""
        kind = self.kind_of(service)
        kinds = {**DEFAULT_LEGAL_BASES, **self.legal_bases}.get(provision, ())
        return kind is not None and kind in kinds

    def provisions_for(self, service: str) -> list[str]:
        """The provisions `service` may name, in order (for a refusal that says what would do)."""
        kind = self.kind_of(service)
        table = {**DEFAULT_LEGAL_BASES, **self.legal_bases}
        return sorted(p for p, kinds in table.items() if kind in kinds)

    def of_kind(self, kind: ServiceKind) -> list[str]:
        return sorted(s for s, unit in self.units.items() if unit.kind == kind)
