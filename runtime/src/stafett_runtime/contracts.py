"""Storing contract events: their plain JSON in the stream, named by their stable topic.

The eventsourcing library maps domain events to stored events through a Mapper. This one stores
a contract Struct (stafett_contracts) as exactly its msgspec JSON, under its topic
(`case.ConcernRaised@1`), and decodes it back by that topic, so the bytes in the stream are
what the published JSON Schema describes and no Python path leaks onto the wire.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec
from eventsourcing.application import Application
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import Mapper, StoredEvent, Transcoder
from eventsourcing.projection import EventSourcedProjection
from eventsourcing.utils import get_topic

from stafett_contracts.catalogue import EVENTS
from stafett_contracts.envelope import Event, topic_of

_encoder = msgspec.json.Encoder()
_decoders = {topic: msgspec.json.Decoder(cls) for topic, cls in EVENTS.items()}


class UnknownEventTypeError(LookupError):
    pass


class ContractMapper(Mapper[Any]):
    def to_stored_event(self, domain_event: DomainEventProtocol[Any]) -> StoredEvent:
        if not isinstance(domain_event, Event):
            raise TypeError(f"{type(domain_event).__name__} is not a contract event")
        state = _encoder.encode(domain_event)
        if self.compressor:
            state = self.compressor.compress(state)
        if self.cipher:
            state = self.cipher.encrypt(state)
        return StoredEvent(
            originator_id=domain_event.aggregate_id,
            originator_version=domain_event.aggregate_version,
            topic=topic_of(type(domain_event)),
            state=state,
        )

    def to_domain_event(self, stored_event: StoredEvent) -> Event:
        state = stored_event.state
        if self.cipher:
            state = self.cipher.decrypt(state)
        if self.compressor:
            state = self.compressor.decompress(state)
        return decode_event(stored_event.topic, state)


def decode_event(topic: str, data: bytes) -> Event:
    """The contract event stored under `topic` (the `Es-Topic` header) as `data`."""
    decoder = _decoders.get(topic)
    if decoder is None:
        raise UnknownEventTypeError(f"no contract for event type {topic!r}")
    event: Event = decoder.decode(data)
    return event


class _NoTranscoder(Transcoder):
    """The contract mapper encodes with msgspec; the library's JSON transcoder is not used."""

    def encode(self, obj: Any) -> bytes:
        raise NotImplementedError("contract events are encoded by ContractMapper")

    def decode(self, data: bytes) -> Any:
        raise NotImplementedError("contract events are decoded by ContractMapper")


# The environment that makes an application store and read contract events.
CONTRACT_ENV = {
    "MAPPER_TOPIC": get_topic(ContractMapper),
    "TRANSCODER_TOPIC": get_topic(_NoTranscoder),
}


class ContractApplication(Application[Any]):
    """An application whose events are contract Structs, stored as their plain JSON."""

    env: ClassVar[dict[str, str]] = CONTRACT_ENV


class ContractProcessApplication(EventSourcedProjection[Any]):
    """A process application (policy) over contract events, in and out.

    Read its upstream with `Upstream.named(name, {**env, **CONTRACT_ENV})`.
    """

    env: ClassVar[dict[str, str]] = CONTRACT_ENV
