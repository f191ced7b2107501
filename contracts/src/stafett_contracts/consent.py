"""Events of consent: the Consent aggregate, one per case and consenting party.

Consent is given to services, not to persons, for purposes, for a time, with evidence
(DOMAIN.md rules 1-4). Sharing without consent is recorded with its legal basis.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal
from uuid import UUID

import msgspec

from stafett_contracts.envelope import Event, PersonRef, PrivateText, ServiceRef, Text


class ConsentEvent(Event, frozen=True, kw_only=True):
    CONTEXT: ClassVar[str] = "consent"


class Purpose(StrEnum):
    COOPERATION = "cooperation"  # services work together on the case
    TVIST = "tvist"  # discussion in the interdisciplinary team (own consent)
    REFERRAL = "referral"  # a referral to a named service
    # A transition between units (kindergarten to school): the receiving unit takes the case
    # over, and sees what was tried before it (the handover packet; `stafett_contracts.access`).
    HANDOVER = "handover"


# The purposes of a consent that let a service take part in a case (join it, hold its baton,
# meet about it), and those that let a service be referred to.
TAKING_PART = (Purpose.COOPERATION, Purpose.REFERRAL, Purpose.HANDOVER)
REFERRED_TO = (Purpose.REFERRAL,)


class Party(msgspec.Struct, frozen=True, kw_only=True):
    """Who consents: a guardian, or the child at or over the age threshold."""

    kind: Literal["guardian", "child"]
    person: PersonRef


class Evidence(msgspec.Struct, frozen=True, kw_only=True):
    """Written consent: the document and its hash. Oral: the employee who recorded it."""

    form: Literal["written", "oral"]
    document_ref: str | None = None
    document_sha256: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")] | None = None
    recorded_by: PersonRef | None = None


Services = Annotated[tuple[ServiceRef, ...], msgspec.Meta(min_length=1)]
Purposes = Annotated[tuple[Purpose, ...], msgspec.Meta(min_length=1)]


class ConsentGiven(ConsentEvent, frozen=True, kw_only=True):
    """A guardian (or the child over the age threshold) consented: to which services, for
    which purposes, from when until when, and the evidence (rule 2)."""

    case_id: UUID
    child_id: UUID
    given_by: Party
    services: Services
    purposes: Purposes
    valid_from: datetime
    valid_until: datetime
    evidence: Evidence


class ConsentScopeChanged(ConsentEvent, frozen=True, kw_only=True):
    """A consent now covers these services and purposes (and, if given, a new end)."""

    services: Services
    purposes: Purposes
    valid_until: datetime | None = None  # None keeps the current end


class ConsentWithdrawn(ConsentEvent, frozen=True, kw_only=True):
    """Wholly (no services named) or for the services named; from this instant (rule 3)."""

    services: tuple[ServiceRef, ...] = ()
    reason: PrivateText | None = None


class ConsentExpired(ConsentEvent, frozen=True, kw_only=True):
    """A consent reached its end: it covers nothing from then on."""

    expired_at: datetime


class LegalBasisRecorded(ConsentEvent, frozen=True, kw_only=True):
    """Sharing without consent, such as the duty to report to child welfare (rule 4)."""

    case_id: UUID
    child_id: UUID
    service: ServiceRef
    legal_basis: Text
    justification: PrivateText
    shared_by: PersonRef
