"""Taking part in a case without consent, under a legal basis (DOMAIN.md rule 4).

Some services take part in a child's case whatever consent says: child welfare investigating a
report, health staff under their duty to report, PPT making an expert assessment. Such a unit
records the provision it acts under, for itself, and from that moment it is covered (the case
service notes it; the access rule lets it see the case, what came before included). Each record
is a small aggregate of its own, with one event.

Who may record one (403, `NotAllowed`, naming the rule), decided from the token and the
municipality directory, never from the request:
- only someone of the unit named, for that unit itself (`legal-basis-for-own-service`);
- only naming a provision the directory says empowers that unit's kind of service
  (`law-empowers-the-service`; the refusal lists the provisions the unit may name).

The case must exist, and its child is the case's child (`Facts`), never a field of the request.
`record_legal_basis(state, command, context)` decides it, as every decision is made
(`stafett_runtime.commands`); the state is always None, as each record is new.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec

from stafett_consent.domain.facts import Facts
from stafett_contracts.consent import LegalBasisRecorded
from stafett_contracts.identity import STAFF
from stafett_contracts.inputs import PrivateFreeText, ShortText, UnitId
from stafett_runtime.domain import Context, NotAllowed, envelope

# The rules, named as a refusal names them (NotAllowed.rule).
LEGAL_BASIS_FOR_OWN_SERVICE = "legal-basis-for-own-service"
LAW_EMPOWERS_THE_SERVICE = "law-empowers-the-service"


class RecordLegalBasis(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """What a client sends, in the bounded shapes of `stafett_contracts.inputs`."""

    case_id: UUID
    service: UnitId  # the unit taking part: the recording person's own
    legal_basis: ShortText  # the provision, as the directory names it: "barnevernsloven § 2-1"
    justification: PrivateFreeText  # sealed by the API before any rule sees it


class LegalBasisContext(Context, frozen=True, kw_only=True):
    """A legal basis command's context: the new record's id (the application makes it) and the
    facts of its case."""

    basis_id: UUID
    facts: Facts

    @classmethod
    def of(cls, context: Context, *, basis_id: UUID, facts: Facts) -> LegalBasisContext:
        return cls(**msgspec.structs.asdict(context), basis_id=basis_id, facts=facts)


def evolve(state: LegalBasisRecorded | None, event: Any) -> LegalBasisRecorded | None:
    """A legal basis is its one event; a consent's events are no legal basis's."""
    return event if isinstance(event, LegalBasisRecorded) else state


def record_legal_basis(
    _: LegalBasisRecorded | None, command: RecordLegalBasis, context: LegalBasisContext
) -> list[LegalBasisRecorded]:
    """The unit's legal basis, recorded by the acting person, who is named as the one who shared."""
    actor = context.actor
    if actor.role not in STAFF or actor.service != command.service:
        raise NotAllowed(
            f"only someone of {command.service} records a legal basis for it",
            rule=LEGAL_BASIS_FOR_OWN_SERVICE,
        )
    directory = context.directory
    if not directory.empowers(command.legal_basis, command.service):
        may_name = directory.provisions_for(command.service)
        raise NotAllowed(
            f"the directory says {command.legal_basis!r} does not empower {command.service}; "
            + (
                f"it may name: {', '.join(may_name)}"
                if may_name
                else "no provision empowers it (is it a unit in the directory?)"
            ),
            rule=LAW_EMPOWERS_THE_SERVICE,
        )
    return [
        LegalBasisRecorded(
            **envelope(context, context.basis_id, 1),
            case_id=command.case_id,
            child_id=context.facts.case.child_id,
            service=command.service,
            legal_basis=command.legal_basis,
            justification=command.justification,
            shared_by=actor.person,
        )
    ]
