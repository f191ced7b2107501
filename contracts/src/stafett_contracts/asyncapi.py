"""The AsyncAPI 3 document of every event stream, made from the contracts alone.

One channel per event type, addressed `<service>.events.{aggregate_id}.<Type>` in the service's
stream (CASE, CONSENT, ...), so an integrator subscribes to exactly the events they need; one
`receive` operation per channel (integrators only read: each service alone writes its stream).
Messages carry a summary (the first paragraph of the event's docstring), the payload's JSON
Schema (with `date-time`, `date` and `uuid` formats: `stafett_contracts.export`), the headers
the store sets, and an example made from the type (the same one the golden files hold). The
document is valid AsyncAPI 3.0.0: a test validates it against the specification's JSON Schema.

    python -m stafett_contracts.asyncapi     prints it (`stafett docs` writes docs/asyncapi.json)
"""

from __future__ import annotations

import inspect
import json
import sys
from typing import Any

import msgspec

from stafett_contracts.catalogue import BY_SERVICE, EVENTS
from stafett_contracts.envelope import Event, topic_of, type_name
from stafett_contracts.export import example_of, schema_components

REF = "#/components/schemas/{name}"
STREAM_NOTES = {
    "case": "the relay log of each case (aggregate: Case)",
    "consent": "consents and legal bases (aggregate: Consent, one per case and consenting party)",
    "meeting": "meetings of a case (aggregate: Meeting)",
    "notify": "notifications and follow-up breaks (aggregate: Notification)",
    "audit": "who read which case, when and why (written by the projection)",
}
HEADERS = {
    "type": "object",
    "properties": {
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
    "required": ["Es-Topic", "Es-Originator-Version"],
}


def document() -> dict[str, Any]:
    schemas, components = schema_components(list(EVENTS.values()), ref_template=REF)
    del schemas  # each is a $ref into components
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
                "headers": {"Es-Topic": topic_of(cls), "Es-Originator-Version": "1"},
                "payload": msgspec.to_builtins(example_of(cls)),
            }
        ],
    }


def render() -> str:
    return json.dumps(document(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    sys.stdout.write(render())
