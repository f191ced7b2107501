"""The envelope every event carries, and how an event is named on the wire.

An event is a frozen, keyword-only msgspec Struct. Its JSON is the Struct's plain JSON, with
`"type"` (the stable name) and `"schema_version"` first, so an integrator in any language reads
it with the published JSON Schema. Stored events are named by a topic such as
`case.ConcernRaised@1`: the owning context, the type and the version, never a Python path.

Evolution: add fields with defaults. A breaking change is a new class with the same `tag`, the
next `schema_version`, and an upcaster from the old one; the old class stays, so old events
still decode.
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Annotated, ClassVar, Literal
from uuid import UUID

import msgspec

from stafett_contracts.identity import Actor

# A reference to a person (an id from the identity provider) or a service/unit (an id from the
# municipality's register, such as "ppt" or "skole-lia"). Never a name.
PersonRef = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
ServiceRef = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[a-z0-9-]+$")]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]


class Event(msgspec.Struct, frozen=True, kw_only=True, tag_field="type", tag=True):
    """The envelope: what, where in which aggregate, when, who, and why (DOMAIN.md rule 9)."""

    CONTEXT: ClassVar[str]  # the owning service: "case", "consent", ...

    schema_version: Literal[1] = 1
    event_id: UUID
    aggregate_id: UUID
    aggregate_version: Annotated[int, msgspec.Meta(ge=1)]
    occurred_at: datetime
    actor: Actor
    correlation_id: Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
    causation_id: str | None = None  # the event or request that caused this one

    # The names the eventsourcing library reads (DomainEventProtocol).
    @property
    def originator_id(self) -> UUID:
        return self.aggregate_id

    @property
    def originator_version(self) -> int:
        return self.aggregate_version

    @property
    def timestamp(self) -> datetime:
        return self.occurred_at


def type_name(cls: type[Event]) -> str:
    tag = cls.__struct_config__.tag
    assert isinstance(tag, str), f"{cls.__name__} has no type name"
    return tag


@functools.cache  # msgspec resolves every annotation of the class to list its fields: slow
def version_of(cls: type[Event]) -> int:
    (field,) = (f for f in msgspec.structs.fields(cls) if f.name == "schema_version")
    assert isinstance(field.default, int)
    return field.default


@functools.cache  # asked for every event stored, read or projected
def topic_of(cls: type[Event]) -> str:
    """The stable name of an event type and version: `case.ConcernRaised@1`."""
    return f"{cls.CONTEXT}.{type_name(cls)}@{version_of(cls)}"
