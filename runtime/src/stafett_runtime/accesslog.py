"""The access log: every read of case data, and every refusal, appended to the AUDIT stream as
`CaseAccessed` by the service that answered it (DOMAIN.md rules 7 and 9).

Each record is an aggregate of its own (its id is the event id, version 1): a read is a fact that
is never changed, so no read waits for another. It is stored as every event is, with the store's
subjects and headers (`audit.events.<id>.CaseAccessed`), so the projection, `stafett verify` and
any integrator read it like every other stream; `Nats-Msg-Id` makes a retried publish land once.
Each record is signed with the service's key (`stafett_runtime.evidence`), as its events are, and
begins its own chain.

A read is answered only once its record is acknowledged: if the access log cannot be written,
nothing about the case is said (the caller gets 503).
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import msgspec
from opentelemetry import propagate

from stafett_contracts.access import Access
from stafett_contracts.audit import AuditEvent, CaseAccessed
from stafett_contracts.envelope import topic_of
from stafett_contracts.identity import Actor
from stafett_runtime import evidence
from stafett_runtime.jetstream.core import Connected, OutgoingMessage
from stafett_runtime.jetstream.layout import (
    MESSAGE_ID,
    ORIGINATOR_VERSION,
    TOPIC,
    StreamLayout,
)

AUDIT = StreamLayout(stream="AUDIT", prefix="audit")
_encode = msgspec.json.Encoder()


class AccessLog:
    """Appends `CaseAccessed` to AUDIT through a service's JetStream core."""

    def __init__(
        self,
        connected: Connected,
        served_by: str,
        replicas: int = 1,
        signing_key_file: str | None = None,
    ) -> None:
        self._connected = connected
        self._served_by = served_by
        self._replicas = replicas
        self._signing_key_file = signing_key_file
        self.signer: evidence.Signer | None = None

    async def open(self) -> None:
        """Make the AUDIT stream as the store makes every stream, if it is not there yet, and
        publish the key the records are signed with."""
        core = self._connected.core
        await core.ensure_stream(AUDIT, self._replicas)
        self.signer = evidence.load_signer(self._served_by, self._signing_key_file)
        await evidence.publish_key(core, self.signer, self._replicas)

    async def record(
        self,
        *,
        actor: Actor,
        case_id: UUID,
        what: str,
        purpose: str | None,
        access: Access,
        correlation_id: str,
    ) -> int:
        """Append one CaseAccessed for this decision; the stream sequence it got."""
        event_id = uuid4()
        event = CaseAccessed(
            event_id=event_id,
            aggregate_id=event_id,
            aggregate_version=1,
            occurred_at=datetime.now(UTC),
            actor=actor,
            correlation_id=correlation_id,
            case_id=case_id,
            what=what,
            purpose=(purpose or "").strip()[:10_000] or None,
            outcome="granted" if access.granted else "refused",
            basis=access.basis,
            refusal=access.refusal,
            rule=access.rule,
            served_by=self._served_by,
        )
        return await self.append(event)

    async def append(self, event: AuditEvent) -> int:
        """Append one record to AUDIT (a CaseAccessed, or the projection's ArchiveDelivered): an
        aggregate of its own at version 1, so a retried publish of it lands once; the stream
        sequence it got."""
        topic = topic_of(type(event))
        headers = {TOPIC: topic, ORIGINATOR_VERSION: "1", MESSAGE_ID: str(event.event_id)}
        propagate.inject(headers)
        subject = AUDIT.event_subject(event.aggregate_id, topic)
        payload = _encode.encode(event)
        if self.signer is not None:  # the first (and only) record of its aggregate
            headers, _ = self.signer.sign(subject, headers, payload, previous=evidence.GENESIS)
        message = OutgoingMessage(subject, payload, headers)
        return await self._connected.core.publish(AUDIT.stream, [message])
