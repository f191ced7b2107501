"""An index: what a service remembers of some streams beyond their aggregates, caught up on use.

A service keeps a few facts in memory that no one aggregate holds: which consents and meetings a
case has, which consents end when, which notifications wait and which timers are due. Its domain
says what to remember of an event (a `Memory`: `take_in(event)`, pure, no position, no lock);
an `Index` feeds it every event of its sources once, in order per source, and knows where it
stands in each.

It is rebuilt from the streams on start and caught up from where it left off before each use,
so what another instance wrote is seen too. Several threads may catch up at once: each reads a
page with no lock held (a read may wait on NATS, and other requests must not wait behind it) and
takes it in under the lock, ignoring a position already taken in, so every event is remembered
once. The memory is read under the same lock (`caught_up`, `holding`). Pages come from the
store's one reading path, the recorder's `select_notifications` (direct gets from the stream).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import structlog
from eventsourcing.application import Application
from eventsourcing.persistence import Notification

from stafett_contracts.envelope import Event

PAGE = 500  # notifications read at a time

log = structlog.get_logger(__name__)


class Memory(Protocol):
    """What a service's domain remembers of events: pure, in the order they come."""

    def take_in(self, event: Event) -> None: ...


M = TypeVar("M", bound=Memory)


@dataclass(frozen=True)
class Source:
    """A stream an index reads, as the application whose stream it is (the service's own, or
    another's as an `Upstream`): all of it, or only `topics` (one is filtered by the server).
    An `optional` source is another service's stream, which may not be made yet: while it cannot
    be read, it is read later."""

    app: Application[Any]
    topics: tuple[str, ...] = ()
    optional: bool = False


class Index(Generic[M]):
    """Feeds `memory` the events of `sources`, each once, in order per source."""

    def __init__(self, memory: M, *sources: Source) -> None:
        self._memory = memory
        self._sources = sources
        self._positions = [0] * len(sources)  # per source: the last notification id taken in
        self._lock = threading.Lock()

    def catch_up(self) -> None:
        """Take in what each source holds beyond the last position taken in, a page at a time."""
        for number, source in enumerate(self._sources):
            while True:
                with self._lock:
                    after = self._positions[number]
                try:
                    page = self._read(source, after)
                except Exception as error:
                    if not source.optional:
                        raise
                    log.debug("stream not readable yet", stream=source.app.name, reason=str(error))
                    break
                with self._lock:
                    for notification in page:
                        self._take_in(number, source, notification)
                if len(page) < PAGE:
                    break

    @contextmanager
    def caught_up(self) -> Iterator[M]:
        """The memory, caught up first, for the block to read; no event is taken in meanwhile."""
        self.catch_up()
        with self.holding() as memory:
            yield memory

    @contextmanager
    def holding(self) -> Iterator[M]:
        """The memory as it is, for the block to read or amend; no event is taken in meanwhile."""
        with self._lock:
            yield self._memory

    def _read(self, source: Source, after: int) -> Sequence[Notification]:
        return source.app.recorder.select_notifications(after + 1, PAGE, topics=source.topics)

    def _take_in(self, number: int, source: Source, notification: Notification) -> None:
        """Under the lock: one notification, unless another thread took it in meanwhile."""
        if notification.id <= self._positions[number]:
            return
        event = source.app.mapper.to_domain_event(notification)
        if isinstance(event, Event):
            self._memory.take_in(event)
        self._positions[number] = notification.id
