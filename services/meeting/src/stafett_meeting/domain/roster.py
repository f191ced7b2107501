"""The roster of a case: who takes part in it, and under what, as `GET /cases/{id}/roster` shows.

It is a view of the case as the case's events tell it now (`stafett_contracts.casefile`, the
one fold of a case), never a fold of its own: the case's unit and level, whether it is closed,
the services on it, the baton holder and coordinator, the consents with the services they still
cover, and the services that take part on a legal basis. The meeting's rules ask the case
itself (who decides, which services are covered); a client reads the roster to see what they
will answer.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import msgspec

from stafett_contracts.casefile import CaseFile, Post
from stafett_contracts.meeting import CoveringConsent, StaffPost


class Roster(msgspec.Struct, frozen=True, kw_only=True):
    case_id: UUID
    version: int = 0  # the case's
    raised_at: datetime  # when the case began: no date of its meetings lies before it
    unit: str
    level: int = 0
    closed: bool = False
    services: tuple[str, ...] = ()
    holder: StaffPost | None = None
    coordinator: StaffPost | None = None
    consents: tuple[CoveringConsent, ...] = ()
    legal_bases: tuple[str, ...] = ()


def roster_of(case: CaseFile) -> Roster:
    consents = (
        CoveringConsent(
            consent_id=consent_id,
            services=tuple(s for s in noted.services if s not in noted.lapsed),
            purposes=noted.purposes,
            valid_from=noted.valid_from,
            valid_until=noted.valid_until,
        )
        for consent_id, noted in case.consents.items()
    )
    return Roster(
        case_id=case.id,
        version=case.version,
        raised_at=case.raised_at,
        unit=case.unit,
        level=case.level,
        closed=case.closed,
        services=case.services,
        holder=_post(case.holder),
        coordinator=_post(case.coordinator),
        consents=tuple(consent for consent in consents if consent.services),
        legal_bases=tuple(case.legal_bases),
    )


def _post(post: Post | None) -> StaffPost | None:
    return None if post is None else StaffPost(person=post.person, service=post.service)
