"""The AsyncAPI 3 document of every event stream, made from the contracts alone.

One channel per event type, addressed `<service>.events.{aggregate_id}.<Type>` in the service's
stream (CASE, CONSENT, ...), so an integrator subscribes to exactly the events they need; one
`receive` operation per channel (integrators only read: each service alone writes its stream).
Messages carry a summary (the first paragraph of the event's docstring), the payload's JSON
Schema (with `date-time`, `date` and `uuid` formats: `stafett_contracts.export`), the headers
the store sets (the signing headers of `stafett_contracts.evidence` among them), and an example
made from the type (the same one the golden files hold). The two streams of the tamper evidence,
SIGNING_KEYS and CHECKPOINTS, have a channel each. The document is valid AsyncAPI 3.0.0: a test
validates it against the specification's JSON Schema.

    python -m stafett_contracts.asyncapi     prints it (`stafett docs` writes docs/asyncapi.json)
"""

from __future__ import annotations

import inspect
import json
import sys
from dataclasses import dataclass
from typing import Any

import msgspec

from stafett_contracts.catalogue import BY_SERVICE, EVENTS
from stafett_contracts.envelope import Event, topic_of, type_name
from stafett_contracts.evidence import (
    CHECKPOINTS,
    GENESIS,
    PREFIX,
    PREVIOUS,
    SIGNATURE,
    SIGNER,
    SIGNING_KEYS,
    CheckpointRecord,
    PublicKeyRecord,
)
from stafett_contracts.export import example_of, schema_components

REF = "#/components/schemas/{name}"
STREAM_NOTES = {
    "case": "the relay log of each case (aggregate: Case)",
    "consent": "consents and legal bases (aggregate: Consent, one per case and consenting party)",
    "meeting": "meetings of a case (aggregate: Meeting)",
    "notify": "notifications and follow-up breaks (aggregate: Notification)",
    "audit": "who read which case, when and why (written by the projection)",
}
SIGNED = {
    SIGNER: {
        "type": "string",
        "description": (
            f"`<service>/<key id>`: the key that signed the message, published in {SIGNING_KEYS}"
        ),
    },
    SIGNATURE: {
        "type": "string",
        "description": (
            "base64 Ed25519 signature of the message's digest: SHA-256 over the subject, the "
            "headers that say what the message is and the payload (`stafett verify` checks it)"
        ),
    },
}
HEADERS = {
    "type": "object",
    "properties": {
        **SIGNED,
        PREVIOUS: {
            "type": "string",
            "description": (
                "the digest of the previous message of the same aggregate (64 zeros for its "
                "first): the aggregate's chain, so a deleted or altered event shows"
            ),
        },
        "Es-Topic": {
            "type": "string",
            "description": "the exact event type and version, e.g. case.ConcernRaised@1",
        },
        "Es-Originator-Version": {
            "type": "string",
            "description": "the aggregate's version after this event (1, 2, ...)",
        },
        "traceparent": {
            "type": "string",
            "description": "W3C trace context of the request that caused the event",
        },
    },
    "required": ["Es-Topic", "Es-Originator-Version", SIGNER, PREVIOUS, SIGNATURE],
}


@dataclass(frozen=True)
class _EvidenceStream:
    stream: str
    address: str
    parameters: tuple[str, ...]
    record: type[msgspec.Struct]
    headers: dict[str, Any] | None
    description: str
    example: dict[str, Any]


EVIDENCE = {
    "keys": _EvidenceStream(
        stream=SIGNING_KEYS,
        address=f"{PREFIX}.keys.{{service}}.{{key_id}}",
        parameters=("service", "key_id"),
        record=PublicKeyRecord,
        headers=None,  # what the signatures are checked with is not itself signed
        description=(
            "Each service's public signing keys, one record per key, written once (guarded) "
            "before anything is signed with it."
        ),
        example={
            "service": "case",
            "key_id": "3f2a9c1d0b7e4a66",
            "algorithm": "Ed25519",
            "public_key": "Q2FzZSBzZXJ2aWNlJ3MgcHVibGljIGtleSwgMzIgYnl0ZXM=",
            "published_at": "2025-01-06T08:00:00+00:00",
        },
    ),
    "checkpoints": _EvidenceStream(
        stream=CHECKPOINTS,
        address=f"{PREFIX}.checkpoints.{{service}}.{{stream}}",
        parameters=("service", "stream"),
        record=CheckpointRecord,
        headers={"type": "object", "properties": SIGNED, "required": list(SIGNED)},
        description=(
            "Each service's signed checkpoints of the stream it owns, every minute and on a "
            "clean stop: its last sequence and the running hash of every message up to it, so a "
            "stream cut back or altered before a checkpoint no longer matches it."
        ),
        example={
            "stream": "CASE",
            "last_seq": 1042,
            "hash": "9b" * 32,
            "service": "case",
            "at": "2025-01-06T09:00:00Z",
        },
    ),
}


def document() -> dict[str, Any]:
    schemas, components = schema_components(list(EVENTS.values()), ref_template=REF)
    del schemas  # each is a $ref into components
    records = [evidence.record for evidence in EVIDENCE.values()]
    components.update(msgspec.json.schema_components(records, ref_template=REF)[1])
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}
    for service, events in BY_SERVICE.items():
        stream = service.upper()
        for cls in sorted(events, key=topic_of):
            name = type_name(cls)
            key = f"{service}.{name}"
            messages[key] = _message(cls)
            channels[key] = {
                "address": f"{service}.events.{{aggregate_id}}.{name}",
                "title": f"{name} ({stream} stream)",
                "description": (
                    f"Stream {stream}: {STREAM_NOTES.get(service, service)}. Subscribe to "
                    f"`{service}.events.*.{name}` for every {name}, to "
                    f"`{service}.events.<id>.*` for everything of one aggregate, or to "
                    f"`{service}.events.>` for the whole stream."
                ),
                "parameters": {
                    "aggregate_id": {"description": "the aggregate's id (a UUID)"},
                },
                "messages": {name: {"$ref": f"#/components/messages/{key}"}},
            }
            operations[f"receive.{key}"] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{key}"},
                "summary": _summary(cls),
                "messages": [{"$ref": f"#/channels/{key}/messages/{name}"}],
            }
    for purpose, evidence in EVIDENCE.items():
        key = f"evidence.{purpose}"
        messages[key] = _evidence_message(purpose)
        channels[key] = {
            "address": evidence.address,
            "title": f"{evidence.stream} stream",
            "description": f"Stream {evidence.stream}: {evidence.description}",
            "parameters": {
                name: {"description": f"the {name.replace('_', ' ')}"}
                for name in evidence.parameters
            },
            "messages": {purpose: {"$ref": f"#/components/messages/{key}"}},
        }
        operations[f"receive.{key}"] = {
            "action": "receive",
            "channel": {"$ref": f"#/channels/{key}"},
            "summary": evidence.description,
            "messages": [{"$ref": f"#/channels/{key}/messages/{purpose}"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Stafett events",
            "version": "1",
            "description": (
                "Every event Stafett stores, one JetStream stream per service. The stream is the "
                "record: read it with a consumer (ordered, or durable to resume), from the start "
                "or from any sequence. Payloads are plain JSON with the envelope (event id, "
                "aggregate id and version, time, actor, correlation and causation ids). Fields "
                "are only ever added, with defaults; a breaking change is a new schema_version."
            ),
        },
        "defaultContentType": "application/json",
        "servers": {
            "embedded": {
                "host": "127.0.0.1:14222",
                "protocol": "nats",
                "description": "the nats-server that `stafett up` runs (STAFETT_NATS_PORT)",
            }
        },
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": components},
    }


def _summary(cls: type[Event]) -> str:
    """The first paragraph of the event's own docstring (every event has one: a test says so),
    never one it inherits."""
    own = cls.__dict__.get("__doc__")
    if not own:
        raise ValueError(f"{type_name(cls)} has no docstring to summarise it")
    return inspect.cleandoc(own).split("\n\n")[0].replace("\n", " ")


def _message(cls: type[Event]) -> dict[str, Any]:
    name = type_name(cls)
    return {
        "name": name,
        "title": name,
        "summary": _summary(cls),
        "contentType": "application/json",
        "headers": HEADERS,
        "payload": {"$ref": REF.format(name=cls.__name__)},
        "examples": [
            {
                "name": "example",
                "headers": {
                    "Es-Topic": topic_of(cls),
                    "Es-Originator-Version": "1",
                    SIGNER: f"{topic_of(cls).split('.')[0]}/3f2a9c1d0b7e4a66",
                    PREVIOUS: GENESIS,  # the aggregate's first event
                    SIGNATURE: "c2lnbmF0dXJlIG9mIHRoZSBkaWdlc3Q=",
                },
                "payload": msgspec.to_builtins(example_of(cls)),
            }
        ],
    }


def _evidence_message(purpose: str) -> dict[str, Any]:
    evidence = EVIDENCE[purpose]
    record = evidence.record
    message: dict[str, Any] = {
        "name": record.__name__,
        "title": record.__name__,
        "summary": inspect.cleandoc(record.__doc__ or "").split("\n\n")[0].replace("\n", " "),
        "contentType": "application/json",
        "payload": {"$ref": REF.format(name=record.__name__)},
        "examples": [{"name": "example", "payload": evidence.example}],
    }
    if evidence.headers is not None:
        message["headers"] = evidence.headers
    return message


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
