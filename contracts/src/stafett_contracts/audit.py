"""The audit stream: every read of case data, in any service, recorded (DOMAIN.md rules 7, 9).

The envelope's actor is who read (person, role, service); the event says what, why, whether it
was granted, by which rule, and which service answered. A refused read is recorded too, so
guardians and auditors see attempts as well.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, ClassVar, Literal
from uuid import UUID

import msgspec

from stafett_contracts.envelope import Event, ServiceRef, Text


class AuditEvent(Event, frozen=True, kw_only=True):
    CONTEXT: ClassVar[str] = "audit"


class CaseAccessed(AuditEvent, frozen=True, kw_only=True):
    """Someone read case data, or was refused: what, why, by which rule, and which service
    answered."""

    case_id: UUID
    what: Text  # the read model or export read: "relay-log", "handover-packet", ...
    purpose: Text | None = None  # why: required of auditors, optional for others
    outcome: Literal["granted", "refused"]
    basis: Text | None = None  # what granted it (guardian, consent id, legal basis, audit)
    refusal: Text | None = None  # why it was refused
    rule: Text | None = None  # the access rule that decided (stafett_contracts.access)
    served_by: ServiceRef | None = None  # the service that answered the read


class ArchiveDelivered(AuditEvent, frozen=True, kw_only=True):
    """A closed case's archive document was delivered to the municipality's archive (DOMAIN.md
    rule 10): the case as of `case_version`, its closing. Recorded by the projection, which
    made and delivered it; a child is shredded only once each of its closed cases has one."""

    case_id: UUID
    case_version: Annotated[int, msgspec.Meta(ge=1)]  # the version of the case delivered
    child_id: UUID
    archive: Literal["folder", "http"]  # where it went: a folder, or an archive's HTTP API
    reference: Text | None = None  # the archive's own id of what it received, if it gives one
    sha256: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}$")]  # of the payload delivered


class ArchiveDeliveryFailed(AuditEvent, frozen=True, kw_only=True):
    """An attempt to deliver a closed case's archive document failed, and is tried again from
    `next_attempt_at`. Recorded by the projection so that whoever reads the streams sees a
    delivery that keeps failing (`stafett status`), also across its restarts. `error` says what
    the archive did, never what the document holds."""

    case_id: UUID
    case_version: Annotated[int, msgspec.Meta(ge=1)]  # the version of the case being delivered
    child_id: UUID
    archive: Literal["folder", "http"]
    error: Annotated[str, msgspec.Meta(min_length=1, max_length=1_000)]
    next_attempt_at: datetime
