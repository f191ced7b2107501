"""Two small applications for testing the store and the processing loop.

`Orders` is an upstream service's application; `Tallies` is a process application in another
service that counts each order event once. Worker subprocesses import this module by the same
name as the tests do, so event topics agree.
"""

from __future__ import annotations

import os
import time
from functools import singledispatchmethod
from typing import Any
from uuid import UUID, uuid5

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import Aggregate, DomainEventProtocol, event
from eventsourcing.projection import EventSourcedProjection

TALLY_NAMESPACE = UUID("2f1f8a52-6d3b-4a43-9f3e-6a0a3c1b5e77")


class Order(Aggregate):
    @event("Placed")
    def __init__(self, lines: int) -> None:
        self.lines = lines

    @event("LineAdded")
    def add_line(self) -> None:
        self.lines += 1


class Orders(Application[UUID]):
    name = "orders"

    def place(self, lines: int = 1) -> UUID:
        order = Order(lines)
        self.save(order)
        return order.id

    def add_lines(self, order_id: UUID, count: int) -> None:
        order: Order = self.repository.get(order_id)
        for _ in range(count):
            order.add_line()
        self.save(order)


class Tally(Aggregate):
    """How many events of one order were counted, and which notification ids they were."""

    def __init__(self, order_id: UUID) -> None:
        self.order_id = order_id
        self.counted: list[int] = []

    @classmethod
    def id_for(cls, order_id: UUID) -> UUID:
        return uuid5(TALLY_NAMESPACE, str(order_id))

    @classmethod
    def create_id(cls, order_id: UUID) -> UUID:
        return cls.id_for(order_id)

    @event("Counted")
    def count(self, notification_id: int) -> None:
        self.counted.append(notification_id)


class Tallies(EventSourcedProjection[UUID]):
    name = "tallies"
    # Slows each event down, so that a test can kill a worker in the middle of a batch.
    delay = float(os.environ.get("TALLIES_DELAY", "0"))

    @singledispatchmethod
    def policy(
        self, domain_event: DomainEventProtocol[UUID], processing_event: ProcessingEvent[UUID]
    ) -> None:
        if self.delay:
            time.sleep(self.delay)
        order_id = domain_event.originator_id
        tracking = processing_event.tracking
        assert tracking is not None
        try:
            tally: Tally = self.repository.get(Tally.id_for(order_id))
        except AggregateNotFoundError:
            tally = Tally(order_id)
        tally.count(tracking.notification_id)
        processing_event.collect_events(tally)

    def counted(self, order_id: UUID) -> list[int]:
        tally: Tally = self.repository.get(Tally.id_for(order_id))
        return tally.counted


def all_counted(tallies: Tallies, order_ids: list[UUID]) -> list[int]:
    counted: list[Any] = []
    for order_id in order_ids:
        counted.extend(tallies.counted(order_id))
    return sorted(counted)
