"""May service S see case C for purpose P at time T? Answered from the case's events alone.

A consent covers S for P at T when S and P are in the scope it had at T, T lies in
[valid_from, valid_until), and it had not been withdrawn wholly (or for S) at or before T.
A legal basis covers its service for any purpose from the moment it was recorded on: the
contract event names neither a purpose nor an end.

When several consents cover, the answer names the one that covers longest.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Literal
from uuid import UUID

import msgspec

from stafett_consent.domain.consent import Consent, Scope
from stafett_contracts.consent import LegalBasisRecorded, Purpose


class Basis(msgspec.Struct, frozen=True, kw_only=True):
    kind: Literal["consent", "legal_basis"]
    id: UUID
    detail: str  # who consented, or the legal basis named


class Access(msgspec.Struct, frozen=True, kw_only=True):
    allowed: bool
    basis: Basis | None = None
    until: datetime | None = None  # None with a basis: no end is known
    reason: str


def may_see(
    service: str,
    purpose: Purpose,
    at: datetime,
    consents: Sequence[Consent],
    legal_bases: Sequence[LegalBasisRecorded],
) -> Access:
    covering = [
        (until, consent)
        for consent in consents
        if (until := covered_until(consent, service, purpose, at)) is not None
    ]
    if covering:
        until, consent = max(covering, key=lambda pair: pair[0])
        party = f"{consent.given_by.kind} {consent.given_by.person}"
        return Access(
            allowed=True,
            basis=Basis(kind="consent", id=consent.id, detail=f"consent of {party}"),
            until=until,
            reason=f"consent of {party} covers {service} for {purpose}",
        )
    for basis in legal_bases:
        if basis.service == service and basis.occurred_at <= at:
            return Access(
                allowed=True,
                basis=Basis(kind="legal_basis", id=basis.aggregate_id, detail=basis.legal_basis),
                reason=f"shared with {service} under {basis.legal_basis}",
            )
    return Access(
        allowed=False, reason=f"no consent or legal basis covers {service} for {purpose} then"
    )


def covered_until(
    consent: Consent, service: str, purpose: Purpose, at: datetime
) -> datetime | None:
    """When the consent's cover of `service` for `purpose`, unbroken from `at`, ends; None if
    it does not cover them at `at`."""
    if at < consent.valid_from or (consent.withdrawn_at is not None and at >= consent.withdrawn_at):
        return None
    index = consent.scope_index_at(at)
    scope = consent.scopes[index]
    if not _names(scope, service, purpose) or at >= scope.valid_until:
        return None
    end = scope.valid_until
    for later in consent.scopes[index + 1 :]:
        if later.since >= end:
            break  # it had lapsed before this change
        if not _names(later, service, purpose):
            return later.since
        end = later.valid_until
    return end if consent.withdrawn_at is None else min(end, consent.withdrawn_at)


def _names(scope: Scope, service: str, purpose: Purpose) -> bool:
    return service in scope.services and purpose in scope.purposes
