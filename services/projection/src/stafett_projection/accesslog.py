"""The projection's own stream, AUDIT: every read of case data, as CaseAccessed (rules 7 and 9).

Each record is an aggregate of its own (id: the event id, version 1): a read is a fact that is
never changed, so no read ever waits for another. The subject follows the store's layout
(`audit.events.<id>.CaseAccessed`) with its headers, so the eventsourcing recorders and any
integrator read it like every other stream; `Nats-Msg-Id` makes a retried publish land once.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

import msgspec
from nats.aio.client import Client
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig
from nats.js.errors import NotFoundError
from opentelemetry import propagate

from stafett_contracts.audit import CaseAccessed
from stafett_contracts.envelope import topic_of
from stafett_contracts.identity import Actor

STREAM = "AUDIT"
_encode = msgspec.json.Encoder()


async def ensure_stream(nc: Client) -> None:
    js = nc.jetstream()
    try:
        await js.stream_info(STREAM)
    except NotFoundError:
        try:
            await js.add_stream(
                StreamConfig(
                    name=STREAM,
                    subjects=["audit.events.>", "audit.tracking.>"],
                    storage=StorageType.FILE,
                    retention=RetentionPolicy.LIMITS,
                    discard=DiscardPolicy.NEW,
                    allow_direct=True,
                    deny_delete=True,
                    deny_purge=True,
                )
            )
        except Exception:
            await js.stream_info(STREAM)  # another process made it meanwhile


async def record(
    nc: Client,
    *,
    actor: Actor,
    case_id: UUID,
    what: str,
    purpose: str | None,
    granted: bool,
    basis: str | None,
    refusal: str | None,
    correlation_id: str,
) -> int:
    """Append one CaseAccessed; the stream sequence it got."""
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
        purpose=purpose or None,
        outcome="granted" if granted else "refused",
        basis=basis,
        refusal=refusal,
    )
    headers = {
        "Es-Topic": topic_of(CaseAccessed),
        "Es-Originator-Version": "1",
        "Nats-Msg-Id": str(event_id),
    }
    propagate.inject(headers)
    ack = await nc.jetstream().publish(
        f"audit.events.{event_id}.CaseAccessed", _encode.encode(event), headers=headers
    )
    return ack.seq
