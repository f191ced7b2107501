"""Who may read a case, and which of its entries: decided from events, at the moment of the query.

| who | sees |
|---|---|
| a guardian who gave consent on the case (or the child, when it consented itself) | the whole case (rule 7) |
| someone of the unit where the worry arose | the whole case: it is the unit's own record, nothing was shared |
| someone of another service | only while a consent or a recorded legal basis covers the service now, and only entries from the periods it was covered (rules 1 and 3); naming a consent purpose (`purpose=tvist`) counts only consents given for it |
| an auditor | everything, once a purpose is stated (422 without) |
| anyone else | nothing (403) |

Every decision, granted or refused, is recorded as CaseAccessed by the API.
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

import msgspec

from stafett_contracts.consent import Purpose
from stafett_contracts.identity import Actor, Role

WORKS_IN_A_SERVICE = (Role.EMPLOYEE, Role.UNIT_LEADER)


CONSENT_PURPOSES = frozenset(str(p) for p in Purpose)


class Period(msgspec.Struct, frozen=True):
    """From `start` up to, not including, `finish` (None: open-ended). ISO text, UTC."""

    start: str
    finish: str | None
    basis: str
    purposes: frozenset[str] | None = None  # a consent's purposes; None: a legal basis

    def serves(self, purpose: str | None) -> bool:
        """A reader who names a consent purpose is covered only by consents given for it."""
        if purpose not in CONSENT_PURPOSES or self.purposes is None:
            return True
        return purpose in self.purposes

    def holds(self, moment: str) -> bool:
        return self.start <= moment and (self.finish is None or moment < self.finish)


class CaseFacts(msgspec.Struct, frozen=True, kw_only=True):
    """What the rules need to know about one case, read from the read models."""

    case_id: str
    raised_unit: str
    raised_at: str
    guardians: frozenset[str]
    children: frozenset[str]
    coverage: dict[str, tuple[Period, ...]]  # by service


class Decision(msgspec.Struct, frozen=True, kw_only=True):
    granted: bool
    basis: str | None = None
    refusal: str | None = None
    periods: tuple[Period, ...] | None = None  # None: every entry

    def shows(self, occurred_at: str) -> bool:
        return self.periods is None or any(p.holds(occurred_at) for p in self.periods)


def decide(facts: CaseFacts, actor: Actor, now: str, purpose: str | None) -> Decision:
    if actor.role == Role.AUDITOR:
        if not purpose:
            return Decision(granted=False, refusal="an auditor must state a purpose")
        return Decision(granted=True, basis="audit")
    if actor.role == Role.GUARDIAN:
        if actor.person in facts.guardians:
            return Decision(granted=True, basis="guardian")
        return Decision(granted=False, refusal="not a guardian who consented on this case")
    if actor.role == Role.CHILD:
        if actor.person in facts.children:
            return Decision(granted=True, basis="the child, who consented")
        return Decision(granted=False, refusal="not the child of this case")
    if actor.role not in WORKS_IN_A_SERVICE or actor.service is None:
        return Decision(granted=False, refusal=f"the role {actor.role} does not read cases")
    if actor.service == facts.raised_unit:
        return Decision(granted=True, basis="own unit")
    periods = tuple(p for p in facts.coverage.get(actor.service, ()) if p.serves(purpose))
    current = [p for p in periods if p.holds(now)]
    if not current:
        for_what = f" for the purpose {purpose}" if purpose in CONSENT_PURPOSES else ""
        return Decision(
            granted=False,
            refusal=f"no consent or legal basis covers the service {actor.service}{for_what} now",
        )
    return Decision(granted=True, basis=current[0].basis, periods=periods)
