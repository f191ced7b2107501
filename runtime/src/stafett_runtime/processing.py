"""Feeding another service's events into a process application, exactly once.

A service reacts to another service's events with a process application: an `eventsourcing`
`EventSourcedProjection` whose `policy` turns an upstream event into events of its own. The
`ProcessingLoop` follows the upstream application's stream and calls `process_event` for each
event, in order.

Exactly once, without a broker-side cursor: the process application writes its new events and
its tracking record (upstream name, notification id) in one atomic batch, guarded by optimistic
concurrency (see `stafett_runtime.jetstream`). The loop starts after the highest tracked id, so a
restart after a crash resumes where the last acknowledged write left off. If the same event is
processed twice anyway (two replicas, or a write whose acknowledgement was lost) the second write
is refused with IntegrityError; the loop then sees the tracking record and moves on. Nothing is
written twice.

The loop runs on a thread of its own, because the library is synchronous.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

import structlog
from eventsourcing.application import Application
from eventsourcing.persistence import IntegrityError, Notification, ProgrammingError, Tracking
from eventsourcing.projection import EventSourcedProjection
from eventsourcing.utils import EnvType
from opentelemetry import propagate, trace

from stafett_runtime.jetstream import JetStreamNotification
from stafett_runtime.logging import correlation, correlation_id_in

log = structlog.get_logger(__name__)
tracer = trace.get_tracer(__name__)

# How often to process one event again when an aggregate it touches changed meanwhile.
ATTEMPTS = 5


class Upstream(Application[Any]):
    """Another service's application, seen only as a reader of its stream.

    It is named after that application, so the store finds its stream by the same name; it
    never saves. Make one with `Upstream.named("consent", env)`.
    """

    def save(self, *objs: Any, **kwargs: Any) -> Any:
        raise ProgrammingError(f"{self.name} is another service's stream: read it, never write")

    @classmethod
    def named(cls, name: str, env: EnvType | None = None) -> Upstream:
        reader = type(f"{name}Upstream", (cls,), {"name": name})
        env = {**(env or {}), "CREATE_TABLE": "no"}  # the owner creates its stream
        instance: Upstream = reader(env)
        return instance


class ProcessingLoop:
    """Follows one upstream application and feeds its events to a process application."""

    def __init__(
        self,
        process: EventSourcedProjection[Any],
        upstream: Application[Any],
        topics: Sequence[str] = (),
    ) -> None:
        self.process = process
        self.upstream = upstream
        self.topics = tuple(topics) or tuple(process.topics)
        self.error: BaseException | None = None
        self._subscription: Any = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._started = threading.Event()

    @property
    def position(self) -> int | None:
        """The highest upstream notification id whose effect is recorded."""
        return self.process.recorder.max_tracking_id(self.upstream.name)

    def lag(self) -> int:
        """How many upstream notifications are not yet processed (counting filtered ones)."""
        return (self.upstream.recorder.max_notification_id() or 0) - (self.position or 0)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(
            target=self._run, name=f"processing:{self.upstream.name}->{self.process.name}"
        )
        self._thread.start()
        self._started.wait(timeout=30)
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self._stopping.set()
        if self._subscription is not None:
            self._subscription.stop()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        try:
            self._subscription = self.upstream.recorder.subscribe(
                gt=self.position, topics=self.topics
            )
            self._started.set()
            log.info("processing started", upstream=self.upstream.name, after=self.position)
            with self._subscription as notifications:
                for notification in notifications:
                    if self._stopping.is_set():
                        break
                    self.process_once(notification)
        except BaseException as error:
            self.error = error
            log.exception("processing stopped by an error", upstream=self.upstream.name)
        finally:
            self._started.set()

    def process_once(self, notification: Notification) -> None:
        """Process one upstream notification, unless its effect is already recorded."""
        tracking = Tracking(self.upstream.name, notification.id)
        headers = notification.headers if isinstance(notification, JetStreamNotification) else {}
        domain_event = self.upstream.mapper.to_domain_event(notification)
        context = propagate.extract(headers)  # the writer's trace, and its correlation id
        with (
            correlation(correlation_id_in(context)) as correlation_id,
            tracer.start_as_current_span(
                f"process {type(domain_event).__qualname__}",
                context=context,
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "upstream": self.upstream.name,
                    "notification_id": notification.id,
                    "correlation_id": correlation_id,
                },
            ),
        ):
            for attempt in range(1, ATTEMPTS + 1):
                try:
                    self.process.process_event(domain_event, tracking)
                    return
                except IntegrityError:
                    if self.process.recorder.has_tracking_id(self.upstream.name, notification.id):
                        log.info("already processed", notification_id=notification.id)
                        return
                    if attempt == ATTEMPTS:
                        raise
                    # An aggregate the policy touched changed meanwhile: decide again on it.
