"""Events of processing: an upstream event a service's policy could not handle, parked and retried.

A service that follows another's stream (case, meeting, notify) records these in its own stream,
beside its other events. Each parked event is one aggregate, `parked_id(service, upstream,
position)`:

- `ProcessingParked`: handling the upstream event at `position` failed the same way several
  times in a row. It is written in one atomic batch with the policy's tracking record for that
  position, so the policy moves past it exactly once and goes on with the next events.
- `ParkedEventRetried`: an administrator had it processed again and it succeeded; the events its
  handling made are in the same write. If it failed again, another `ProcessingParked` follows
  instead, and it stays parked.

An event is parked while the newest record of its aggregate is `ProcessingParked`
(`still_parked`). The error is described without personal data: its type, its message with
quoted text and long numbers left out, and where in the code it was raised.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, ClassVar
from uuid import UUID, uuid5

import msgspec

from stafett_contracts.envelope import Event, ServiceRef

PARKED_NAMESPACE = UUID("5d0b8c1e-3f57-4d7a-9a55-2f1c0f6b7e31")

Position = Annotated[int, msgspec.Meta(ge=1)]
Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]
ERROR_LENGTH = 500  # the longest error message kept in ProcessingParked
ErrorText = Annotated[str, msgspec.Meta(max_length=ERROR_LENGTH)]


class ProcessingRecord(Event, frozen=True, kw_only=True):
    """About one upstream event: which stream it is in (the service that owns it), and where."""

    CONTEXT: ClassVar[str] = "processing"

    upstream: ServiceRef  # the service whose stream holds the event: "consent"
    position: Position  # its sequence in that stream


class ProcessingParked(ProcessingRecord, frozen=True, kw_only=True):
    """Handling an upstream event failed the same way `attempts` times in a row: it is parked,
    and the policy goes on with the next events until an administrator retries it."""

    event_type: Name  # the upstream event's topic: case.MeasurePlanned@1
    error_type: Name  # the exception's type: OverflowError
    error: ErrorText  # its message, with quoted text and long numbers left out
    raised_in: Name | None = None  # where in the code: stafett_notify.domain.rules:_pair:201
    attempts: Annotated[int, msgspec.Meta(ge=1)]


class ParkedEventRetried(ProcessingRecord, frozen=True, kw_only=True):
    """A parked event was processed again, at an administrator's request, and its handling
    succeeded: the events it made are in the same write."""


def parked_id(service: str, upstream: str, position: int) -> UUID:
    """The aggregate that records what became of one upstream event in `service`."""
    return uuid5(PARKED_NAMESPACE, f"{service}/{upstream}/{position}")


def still_parked(events: Iterable[Event]) -> list[ProcessingParked]:
    """The upstream events parked and not yet processed, by upstream and position: those whose
    newest record is `ProcessingParked`. Other events are passed over."""
    newest: dict[UUID, ProcessingRecord] = {}
    for event in events:
        if not isinstance(event, ProcessingRecord):
            continue
        known = newest.get(event.aggregate_id)
        if known is None or event.aggregate_version > known.aggregate_version:
            newest[event.aggregate_id] = event
    parked = [e for e in newest.values() if isinstance(e, ProcessingParked)]
    return sorted(parked, key=lambda e: (e.upstream, e.position))
