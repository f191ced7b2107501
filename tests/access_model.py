"""A small reference model of who may see what of a case, written from DOMAIN.md alone.

It shares no code with the services or with `stafett_contracts.access`: it keeps, per case, the
consents as the test gave them (their scopes over time, their ends), the legal bases and
reports, and answers "may this viewer read, and which moments of the case may they see?" in the
plainest terms. The property test compares every read endpoint of every service against it.

DOMAIN.md, as this model reads it:
- rule 7: a guardian of the child sees the whole case, with or without consent;
- the child consents alone, and reads, from 15 (the configured age);
- rule 1: a service may see a case only under a consent that covers it, or a legal basis; the
  unit where the worry arose keeps its own record;
- rule 3: from the instant consent is withdrawn (or ends) the service loses access; nothing new
  flows to it; what it saw before stays in the history;
- rule 4: a report to child welfare overrides consent; child welfare assesses it on what the
  case knew;
- rule 5 and issue 18: at a transition (kindergarten to school) the receiving unit, under the
  guardians' consent to the handover, sees what was tried before it came in (measures, their
  evaluations, decisions, action items), and nothing else from before;
- auditors read everything, stating a purpose; administrators configure, they read no case.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

READING_AGE = 15
FOREVER = None
TVIST = "tvist"
HANDOVER = "handover"
CONSENT_PURPOSES = ("cooperation", "tvist", "referral", HANDOVER)
# What a handover carries from before the receiver's consent, by event type.
PACKET = frozenset(
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


@dataclass
class Scope:
    since: datetime
    services: frozenset[str]
    purposes: frozenset[str]


@dataclass
class ModelConsent:
    """A consent's scopes in the order they began (a scope change, or a withdrawal for some of
    its services, begins a new one), and when it was wholly withdrawn."""

    consent_id: str
    valid_from: datetime
    valid_until: datetime
    scopes: list[Scope]
    withdrawn_at: datetime | None = None

    @property
    def scope(self) -> Scope:
        return self.scopes[-1]

    def windows(self, service: str) -> list[tuple[datetime, datetime, frozenset[str]]]:
        """When this consent covered `service`, and for which purposes."""
        found = []
        for index, scope in enumerate(self.scopes):
            if service not in scope.services:
                continue
            start = max(scope.since, self.valid_from) if index else self.valid_from
            next_begins = self.scopes[index + 1].since if index + 1 < len(self.scopes) else None
            finish = min(t for t in (next_begins, self.valid_until, self.withdrawn_at) if t)
            if start < finish:
                found.append((start, finish, scope.purposes))
        return found


@dataclass
class ModelCase:
    case_id: str
    unit: str
    child_guardians: frozenset[str]
    child_person: str
    child_born: date
    consents: list[ModelConsent] = field(default_factory=list)
    overrides: list[tuple[str, datetime]] = field(default_factory=list)  # service, since


@dataclass(frozen=True)
class Viewer:
    person: str
    role: str
    service: str | None = None


@dataclass(frozen=True)
class Expected:
    granted: bool
    whole: bool = False
    windows: tuple[tuple[datetime | None, datetime | None], ...] = ()  # None: unbounded
    identity: bool = False
    handover: bool = False  # the packet's entries, whenever they were made

    def shows(self, at: datetime, kind: str | None = None) -> bool:
        if not self.granted:
            return False
        if self.whole or (self.handover and kind in PACKET):
            return True
        return any(
            (start is None or start <= at) and (end is None or at < end)
            for start, end in self.windows
        )


def expect(
    case: ModelCase, viewer: Viewer, now: datetime, purpose: str | None, units: set[str]
) -> Expected:
    if viewer.role == "auditor":
        return Expected(bool(purpose and purpose.strip()), whole=True, identity=True)
    if viewer.role == "guardian":
        mine = viewer.person in case.child_guardians
        return Expected(mine, whole=mine, identity=mine)
    if viewer.role == "child":
        old_enough = _age(case.child_born, now.date()) >= READING_AGE
        mine = viewer.person == case.child_person and old_enough
        return Expected(mine, whole=mine, identity=mine)
    if viewer.role not in ("employee", "unit_leader") or viewer.service not in units:
        return Expected(False)
    if viewer.service == case.unit:
        return Expected(True, whole=True, identity=True)
    windows: list[tuple[datetime | None, datetime | None]] = []
    named_now = False
    anonymous_only = True
    handover = False
    for_handover = purpose not in CONSENT_PURPOSES or purpose == HANDOVER  # no other named
    for consent in case.consents:
        for start, finish, purposes in consent.windows(viewer.service):
            if purpose in CONSENT_PURPOSES and purpose not in purposes:
                continue
            windows.append((start, finish))
            if start <= now < finish:
                named_now = True
                anonymous_only &= purposes <= {TVIST}
                handover |= HANDOVER in purposes and for_handover
    for service, since in case.overrides:
        if service == viewer.service:
            windows.append((None, None))  # what came before, and from then on
            if since <= now:
                named_now, anonymous_only = True, False
    if not named_now:
        return Expected(False)
    return Expected(True, windows=tuple(windows), identity=not anonymous_only, handover=handover)


def _age(born: date, day: date) -> int:
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))
