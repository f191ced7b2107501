"""Recently used aggregates' histories, kept in memory and brought up to date on every read.

A command decides on its aggregate's whole history. Reading that afresh from the stream for
every command costs a decode per event and grows with the case; here a read asks the store only
for the events after the newest one remembered (the JetStream recorder answers that with one
small read). So a history is exactly as current as a full read, writes by other processes
included, and stays correct with several instances of a service.

Events are frozen Structs, so remembered histories are shared, never copied.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from threading import Lock
from typing import Any, cast
from uuid import UUID

from cachetools import LRUCache
from eventsourcing.persistence import EventStore

from stafett_contracts.envelope import Event

DEFAULT_SIZE = 1_000
SIZE_VARIABLE = "STAFETT_HISTORY_CACHE_SIZE"  # aggregates remembered per application; 0: none


class Histories:
    """The events of up to `size` aggregates, the least recently used forgotten first."""

    def __init__(self, events: EventStore[Any], size: int = DEFAULT_SIZE) -> None:
        self._events = events
        self._size = size
        self._known: LRUCache[UUID | str, tuple[Event, ...]] = LRUCache(max(self._size, 1))
        self._lock = Lock()

    @classmethod
    def configured(cls, events: EventStore[Any], env: Mapping[str, str]) -> Histories:
        """Sized by `STAFETT_HISTORY_CACHE_SIZE` in an application's env (or the process's)."""
        size = env.get(SIZE_VARIABLE)
        return cls(events, int(size) if size else DEFAULT_SIZE)

    def get(self, aggregate_id: UUID | str) -> list[Event]:
        """Every event of the aggregate, in order, as the stream holds them now."""
        with self._lock:
            known = self._known.get(aggregate_id, ())
        after = known[-1].aggregate_version if known else None
        # The contract mapper gives back exactly the contract events stored.
        newer = cast(tuple[Event, ...], tuple(self._events.get(aggregate_id, gt=after)))
        history = known + newer
        if newer:
            self._remember(aggregate_id, history)
        return list(history)

    def saved(self, events: Iterable[Any]) -> None:
        """Events just written: extend the histories they continue (others are read when used)."""
        for event in events:
            if not isinstance(event, Event):
                continue
            with self._lock:
                known = self._known.get(event.aggregate_id)
                follows = known is not None and known[-1].aggregate_version + 1 == (
                    event.aggregate_version
                )
            if follows and known is not None:
                self._remember(event.aggregate_id, (*known, event))
            elif event.aggregate_version == 1:
                self._remember(event.aggregate_id, (event,))

    def _remember(self, aggregate_id: UUID | str, history: Sequence[Event]) -> None:
        if self._size <= 0:
            return
        with self._lock:
            current = self._known.get(aggregate_id, ())
            if len(history) < len(current):  # another thread already knows more
                return
            self._known[aggregate_id] = tuple(history)
