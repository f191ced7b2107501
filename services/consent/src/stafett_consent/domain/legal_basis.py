"""Sharing without consent, recorded with its legal basis (DOMAIN.md rule 4).

The duty to report to child welfare overrides consent: any employee or unit leader records such
a sharing, and it is never blocked by the state of any consent. Each record is a small aggregate
of its own, with one event.
"""

from __future__ import annotations

from uuid import UUID

import msgspec

from stafett_contracts.consent import LegalBasisRecorded
from stafett_contracts.envelope import ServiceRef, Text
from stafett_contracts.identity import Role
from stafett_runtime.domain import Context, NotAllowed, envelope

_MAY_SHARE = {Role.EMPLOYEE, Role.UNIT_LEADER}


class RecordLegalBasis(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    case_id: UUID
    child_id: UUID
    service: ServiceRef  # the service the case is shared with
    legal_basis: Text  # e.g. "barnevernsloven § 13-2 (opplysningsplikt)"
    justification: Text


def record_legal_basis(
    command: RecordLegalBasis, context: Context, basis_id: UUID
) -> list[LegalBasisRecorded]:
    """The sharing as recorded by the acting employee, who is named as the one who shared."""
    if context.actor.role not in _MAY_SHARE:
        raise NotAllowed("only an employee or unit leader records sharing under a legal basis")
    return [
        LegalBasisRecorded(
            **envelope(context, basis_id, 1),
            case_id=command.case_id,
            child_id=command.child_id,
            service=command.service,
            legal_basis=command.legal_basis,
            justification=command.justification,
            shared_by=context.actor.person,
        )
    ]
