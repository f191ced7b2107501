"""The projection's audit stream: every read of case data, recorded (DOMAIN.md rules 7 and 9).

The envelope's actor is who read (person, role, service); the event says what, why and whether
it was granted. A refused read is recorded too, so guardians and auditors see attempts as well.
"""

from __future__ import annotations

from typing import ClassVar, Literal
from uuid import UUID

from stafett_contracts.envelope import Event, Text


class AuditEvent(Event, frozen=True, kw_only=True):
    CONTEXT: ClassVar[str] = "audit"


class CaseAccessed(AuditEvent, frozen=True, kw_only=True):
    case_id: UUID
    what: Text  # the read model or export read: "relay-log", "handover-packet", ...
    purpose: Text | None = None  # why: required of auditors, optional for others
    outcome: Literal["granted", "refused"]
    basis: Text | None = None  # what granted it (guardian, consent id, legal basis, audit)
    refusal: Text | None = None  # why it was refused
