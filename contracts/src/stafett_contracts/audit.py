"""The audit stream: every read of case data, in any service, recorded (DOMAIN.md rules 7, 9).

The envelope's actor is who read (person, role, service); the event says what, why, whether it
was granted, by which rule, and which service answered. A refused read is recorded too, so
guardians and auditors see attempts as well.
"""

from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

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
