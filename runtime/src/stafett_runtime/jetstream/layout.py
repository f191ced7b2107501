"""Where things live in JetStream: stream names, subjects and headers.

One stream per application (and one more per extra purpose, e.g. snapshots). Inside the
application's stream:

    <prefix>.events.<aggregate>.<EventType>   one domain event
    <prefix>.tracking.<upstream>              how far this application has processed <upstream>

so a consumer can follow one aggregate (`case.events.<id>.*`), one event type across all
aggregates (`case.events.*.ConcernRaised`), or everything (`case.events.>`). Tracking records
share the stream because JetStream's atomic batch spans one stream only, and a process
application must write its events and its position in one batch.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from uuid import UUID

# The headers every stored event carries (and a tracking record, the last two).
TOPIC = "Es-Topic"  # the event's type and version: case.ConcernRaised@1
ORIGINATOR_ID = "Es-Originator-Id"  # a string aggregate id (a UUID is read from the subject)
ORIGINATOR_VERSION = "Es-Originator-Version"
APPLICATION_NAME = "Es-Application-Name"
NOTIFICATION_ID = "Es-Notification-Id"
# JetStream's own: optimistic concurrency per subject, and deduplication of a retried publish.
EXPECTED_SEQUENCE = "Nats-Expected-Last-Subject-Sequence"
EXPECTED_SUBJECT = "Nats-Expected-Last-Subject-Sequence-Subject"
MESSAGE_ID = "Nats-Msg-Id"

_SAFE_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
_UNSAFE_CHARS = re.compile(r"[^A-Za-z0-9_-]")


def token(value: str) -> str:
    """An injective mapping of any string to one NATS subject token.

    Safe strings stand as they are; anything else is base64url-encoded behind a `~`, a character
    that safe tokens never contain.
    """
    if _SAFE_TOKEN.fullmatch(value):
        return value
    encoded = base64.urlsafe_b64encode(value.encode()).rstrip(b"=").decode()
    return "~" + encoded


def type_token(topic: str) -> str:
    """The event type's short name in a subject, without module or version.

    `pkg.domain:Case.ConcernRaised` and `case.ConcernRaised@2` both give `ConcernRaised`, so a
    subscription by type outlives a new version. Only used to narrow subscriptions; the exact
    topic travels in a header, so two types that share a short name are still told apart.
    """
    name = topic.split("@", 1)[0].rsplit(":", 1)[-1].rsplit(".", 1)[-1]
    return _UNSAFE_CHARS.sub("_", name) or "_"


def id_token(originator_id: UUID | str) -> str:
    return str(originator_id) if isinstance(originator_id, UUID) else token(originator_id)


def default_names(application_name: str) -> tuple[str, str]:
    """Stream name and subject prefix derived from an application name: `Case` -> CASE, case."""
    base = _UNSAFE_CHARS.sub("_", application_name).strip("_") or "events"
    return base.upper(), base.lower()


@dataclass(frozen=True)
class StreamLayout:
    """The names of one stream and the subjects in it."""

    stream: str
    prefix: str
    purpose: str = "events"

    @property
    def subjects(self) -> list[str]:
        if self.purpose == "events":
            return [f"{self.prefix}.events.>", f"{self.prefix}.tracking.>"]
        return [f"{self.prefix}.{self.purpose}.>"]

    @property
    def all_events(self) -> str:
        return f"{self.prefix}.{self.purpose}.>"

    def holds_event(self, subject: str) -> bool:
        """Whether a message on this subject is an event (not a tracking record)."""
        return subject.startswith(self.all_events[:-1])

    def event_subject(self, originator_id: UUID | str, topic: str) -> str:
        return f"{self.aggregate_prefix(originator_id)}.{type_token(topic)}"

    def aggregate_filter(self, originator_id: UUID | str) -> str:
        return f"{self.aggregate_prefix(originator_id)}.*"

    def aggregate_prefix(self, originator_id: UUID | str) -> str:
        return f"{self.prefix}.{self.purpose}.{id_token(originator_id)}"

    def type_filter(self, topic: str) -> str:
        return f"{self.prefix}.{self.purpose}.*.{type_token(topic)}"

    def tracking_subject(self, application_name: str) -> str:
        return f"{self.prefix}.tracking.{token(application_name)}"

    def for_purpose(self, purpose: str) -> StreamLayout:
        """A sibling stream for another kind of record (snapshots), apart from the events."""
        if purpose == "events":
            return self
        suffix = _UNSAFE_CHARS.sub("_", purpose)
        return StreamLayout(f"{self.stream}_{suffix.upper()}", self.prefix, suffix.lower())
