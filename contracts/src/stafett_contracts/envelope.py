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
import msgspec.inspect as mi

from stafett_contracts.identity import Actor
from stafett_contracts.personal import SealedText

# A reference to a person (an id from the identity provider) or a service/unit (an id from the
# municipality's register, such as "ppt" or "skole-lia"). Never a name.
PersonRef = Annotated[str, msgspec.Meta(min_length=1, max_length=128)]
ServiceRef = Annotated[str, msgspec.Meta(min_length=1, max_length=128, pattern=r"^[a-z0-9-]+$")]
Text = Annotated[str, msgspec.Meta(min_length=1, max_length=10_000)]
# Free text about a child or family (a concern, a note, minutes, a reason): sealed under the
# child's key (`SealedText`), so erasing the key erases it (DOMAIN.md rules 8 and 10). The clear
# string is there only for events written before free text was sealed: every service seals at
# its API boundary (`Kernel.seal_texts`), and `clear_private_text` names any left in clear.
PrivateText = Annotated[
    SealedText | Text,
    msgspec.Meta(
        description="free text about a child or family, sealed under the child's key "
        "(SealedText); a plain string only in events written before free text was sealed",
        extra_json_schema={"x-sealed": True},
    ),
]


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


def clear_private_text(value: msgspec.Struct) -> list[str]:
    """The fields of `value` (however deep) that hold free text in clear where the contract says
    `PrivateText`: what a new event must never carry."""
    found: list[str] = []
    for name in private_fields(type(value)):
        held = getattr(value, name)
        items = held if isinstance(held, tuple | list) else (held,)
        if any(isinstance(item, str) for item in items):
            found.append(f"{type(value).__name__}.{name}")
    for name in value.__struct_fields__:
        held = getattr(value, name)
        for item in held if isinstance(held, tuple | list) else (held,):
            if isinstance(item, msgspec.Struct) and not isinstance(item, SealedText):
                found += clear_private_text(item)
    return found


@functools.cache
def private_fields(cls: type[msgspec.Struct]) -> frozenset[str]:
    """The fields of `cls` marked `"x-sealed"`: free text about a child (alone, optional, or
    in a tuple or list)."""
    info = mi.type_info(cls)
    assert isinstance(info, mi.StructType)
    return frozenset(f.name for f in info.fields if _is_private(f.type))


def _is_private(t: mi.Type) -> bool:
    match t:
        case mi.Metadata():
            return (t.extra_json_schema or {}).get("x-sealed") is True or _is_private(t.type)
        case mi.UnionType():
            return any(_is_private(member) for member in t.types)
        case mi.VarTupleType() | mi.ListType():
            return _is_private(t.item_type)
    return False
