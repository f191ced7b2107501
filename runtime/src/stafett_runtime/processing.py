"""Feeding another service's events into a process application, exactly once, and never stopping.

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

Nothing stops it for good:

- A failure to follow (NATS gone or paused, a store call timing out, the upstream stream not made
  yet, the population register not answering, a write that keeps meeting concurrent ones: see
  `passes`) is retried forever, after a pause that doubles from `first_pause` to
  `LONGEST_PAUSE` seconds, with jitter, from the tracked position. A pause ends early when a
  lost connection to the store comes back, so a server's return is used at once. A watchdog
  restarts a subscription that delivers nothing while events wait (a consumer lost while the
  server was away).
- An upstream event whose handling fails the same way `PARK_AFTER` times in a row (the same
  exception type raised at the same place; or `PARK_AFTER_ANY` failures of whatever kind) is
  parked: `ProcessingParked` (`stafett_contracts.processing`) is written in the service's own
  stream in one atomic batch with the tracking record for its position, it is logged at error,
  and the loop goes on with the next events. `retry` processes parked events again, once each.
- Anything else that escapes the loop is a programming error in the loop itself or in how it
  uses the store (a wrong argument, an event it cannot encode, the store called from an event
  loop): retrying in this process cannot help, so the loop stops as `failed`, and the service's
  liveness fails (`stafett_runtime.health`) so that its orchestrator restarts the process.

The loop runs on a thread of its own, because the library is synchronous.
"""

from __future__ import annotations

import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import UUID, uuid4

import msgspec
import nats.errors
import structlog
from eventsourcing.application import Application, ProcessingEvent
from eventsourcing.persistence import (
    IntegrityError,
    InterfaceError,
    Notification,
    OperationalError,
    ProgrammingError,
    Tracking,
)
from eventsourcing.projection import EventSourcedProjection
from eventsourcing.utils import EnvType
from opentelemetry import propagate, trace

from stafett_contracts.envelope import Event, topic_of
from stafett_contracts.identity import Actor, Role
from stafett_contracts.processing import (
    ERROR_LENGTH,
    ParkedEventRetried,
    ProcessingParked,
    parked_id,
    still_parked,
)
from stafett_runtime.domain import Context, envelope
from stafett_runtime.jetstream import JetStreamApplicationRecorder, JetStreamNotification
from stafett_runtime.jetstream.layout import default_names
from stafett_runtime.jetstream.recorders import JetStreamRecorder
from stafett_runtime.logging import correlation, correlation_id_in, current_correlation_id
from stafett_runtime.metrics import event_processed
from stafett_runtime.register import RegisterUnavailableError

log = structlog.get_logger(__name__)
tracer = trace.get_tracer(__name__)

# How often to process one event again when an aggregate it touches changed meanwhile.
ATTEMPTS = 5
# Handling one event that fails the same way this many times in a row is parked ...
PARK_AFTER = 3
# ... and so is one that has failed this many times in all, whatever the way.
PARK_AFTER_ANY = 10
FIRST_PAUSE = 0.5  # seconds before following again after the first failure; doubles ...
LONGEST_PAUSE = 30.0  # ... up to this
WATCH_SECONDS = 3.0  # how often the watchdog looks at a subscription that waits
NAME_LENGTH = 200  # the longest type or place name kept in ProcessingParked

Phase = Literal["starting", "processing", "retrying", "failed", "stopped"]
Outcome = Literal["processed", "parked again", "already retried"]


class LoopState(msgspec.Struct, frozen=True):
    """What the loop is doing, since when, and the failure it retries after (or failed of)."""

    phase: Phase
    since: datetime
    error: str | None = None


class RetryOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What became of one parked event processed again."""

    upstream: str
    position: int
    outcome: Outcome
    events: int = 0  # how many events its handling recorded
    error: str | None = None  # why it failed again


class StalledError(OperationalError):
    """The subscription delivered nothing while upstream events waited to be processed."""


# nats-py's errors about a message itself, not the way to the server: they do not pass.
_MESSAGE_ERRORS = (
    nats.errors.MaxPayloadError,
    nats.errors.BadSubjectError,
    nats.errors.BadHeaderError,
)


def passes(error: BaseException) -> bool:
    """Whether `error` is a failure to reach NATS, the store or the population register (or a
    write that kept meeting concurrent ones): nothing about the event, so it passes when they
    answer again. Such a failure is retried without end and never parks an event."""
    if isinstance(error, nats.errors.Error):
        return not isinstance(error, _MESSAGE_ERRORS)
    return isinstance(
        error,
        OperationalError | InterfaceError | IntegrityError | OSError | RegisterUnavailableError,
    )


class Backoff:
    """Pauses that double from `first` up to `longest` seconds, each drawn from its upper half
    (jitter), so that replicas that failed together do not retry together."""

    def __init__(self, first: float, longest: float = LONGEST_PAUSE) -> None:
        self.first = first
        self.longest = longest
        self._failures = 0

    def next(self) -> float:
        pause = min(self.longest, self.first * 2.0**self._failures)
        self._failures += 1
        return pause * random.uniform(0.5, 1.0)

    def reset(self) -> None:
        self._failures = 0


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
        first_pause: float = FIRST_PAUSE,
    ) -> None:
        self.process = process
        self.upstream = upstream
        self.topics = tuple(topics) or tuple(process.topics)
        self.error: BaseException | None = None  # the failure retried after, or failed of
        self._state = LoopState(phase="starting", since=_now())
        self._backoff = Backoff(first_pause)
        self._failing_since: datetime | None = None  # the first failure since the last progress
        self._stopping = threading.Event()
        self._lock = threading.Lock()  # guards the subscription between the loop and watchdog
        self._subscription: Any = None
        self._stalled = False
        self._waiting_since: float | None = None  # when the loop began to wait for the next event
        self._threads: list[threading.Thread] = []

    @property
    def state(self) -> LoopState:
        return self._state

    @property
    def position(self) -> int | None:
        """The highest upstream notification id whose effect is recorded."""
        return self.process.recorder.max_tracking_id(self.upstream.name)

    def lag(self) -> int:
        """How many upstream events of the loop's topics are not yet processed.

        Counted by the server (the pending count of a one-message read after the position), so
        it is the true lag even when the loop follows one event type of a busy stream. With
        several topics it counts every event after the position."""
        return self._behind(self.position)

    def start(self) -> None:
        """Follow the upstream on a thread of its own, until `stop`; returns at once."""
        name = f"{self.upstream.name}->{self.process.name}"
        self._threads = [
            threading.Thread(target=self._run, name=f"processing:{name}"),
            threading.Thread(target=self._watch, name=f"watchdog:{name}", daemon=True),
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._stop_subscription()
        for thread in self._threads:
            thread.join()
        self._state = LoopState(phase="stopped", since=_now())

    # Following

    def _run(self) -> None:
        while not self._stopping.is_set():
            try:
                self._follow()
            except BaseException as error:
                if self._stopping.is_set():
                    break
                self.error = error
                if not passes(error):
                    self._state = LoopState(phase="failed", since=_now(), error=_said(error))
                    log.exception(
                        "processing failed for good: restart the process",
                        upstream=self.upstream.name,
                    )
                    return
                pause = self._backoff.next()
                self._failing_since = self._failing_since or _now()
                self._state = LoopState(
                    phase="retrying", since=self._failing_since, error=_said(error)
                )
                log.warning(
                    "processing failed: following again after a pause",
                    upstream=self.upstream.name,
                    reason=_said(error),
                    pause=round(pause, 2),
                )
                self._pause(pause)

    def _pause(self, seconds: float) -> None:
        """Wait `seconds`, or until stopped, or until a lost connection to the store is back:
        the pause spares a server that struggles, and one that just returned is tried at once."""
        lost = not self._connected()
        deadline = time.monotonic() + seconds
        while not self._stopping.wait(min(0.25, max(deadline - time.monotonic(), 0))):
            if time.monotonic() >= deadline or (lost and self._connected()):
                return

    def _connected(self) -> bool:
        """Whether the upstream's and the service's own store connections are both up."""
        recorders = (self.upstream.recorder, self.process.recorder)
        return all(isinstance(r, JetStreamRecorder) and r.client.nc.is_connected for r in recorders)

    def _follow(self) -> None:
        """Process the upstream's events from the tracked position on, until stopped."""
        after = self.position
        subscription = self.upstream.recorder.subscribe(gt=after, topics=self.topics)
        with self._lock:
            self._subscription, self._stalled = subscription, False
        try:
            if self._stopping.is_set():
                return
            self.error = None
            self._state = LoopState(phase="processing", since=_now())
            log.info("processing", upstream=self.upstream.name, after=after)
            while not self._stopping.is_set():
                self._waiting_since = time.monotonic()
                notification = next(subscription, None)
                self._waiting_since = None
                if notification is None:  # stopped: by `stop`, or by the watchdog
                    break
                self.process_once(notification)
                self._healthy()
        finally:
            self._waiting_since = None
            self._stop_subscription()
        if self._stalled and not self._stopping.is_set():
            raise StalledError(f"the {self.upstream.name} subscription delivered nothing")

    def _healthy(self) -> None:
        """Progress, or nothing to do: the next failure starts a new series of short pauses."""
        self._backoff.reset()
        self._failing_since = None

    def _stop_subscription(self) -> None:
        with self._lock:
            subscription, self._subscription = self._subscription, None
        if subscription is None:
            return
        try:
            subscription.stop()
        except Exception as error:  # its consumer is ephemeral: the server drops it in time
            log.debug("subscription not stopped cleanly", reason=_said(error))

    def _watch(self) -> None:
        """Restart a subscription that has waited two looks in a row while events waited."""
        suspect: tuple[float, int | None] | None = None  # (waiting since, position) last look
        while not self._stopping.wait(WATCH_SECONDS):
            waiting = self._waiting_since
            if waiting is None or time.monotonic() - waiting < WATCH_SECONDS:
                suspect = None
                continue
            try:
                position = self.position
                behind = self._behind(position)
            except Exception:  # the store does not answer: the loop will learn it when it asks
                continue
            if behind == 0:
                suspect = None
                self._healthy()  # and idle
            elif suspect == (waiting, position):
                log.warning(
                    "subscription delivers nothing while events wait: following again",
                    upstream=self.upstream.name,
                    behind=behind,
                )
                with self._lock:
                    self._stalled = True
                self._stop_subscription()
                suspect = None
            else:
                suspect = (waiting, position)

    def _behind(self, position: int | None) -> int:
        recorder = self.upstream.recorder
        assert isinstance(recorder, JetStreamApplicationRecorder)
        layout = recorder.layout
        subject = layout.type_filter(self.topics[0]) if len(self.topics) == 1 else layout.all_events
        found, pending = recorder.client.run(
            recorder.client.get_range(layout.stream, subject, (position or 0) + 1, 1)
        )
        return len(found) + pending

    # Processing one event

    def process_once(self, notification: Notification) -> None:
        """Process one upstream notification, unless its effect is already recorded; park it if
        its handling fails the same way `PARK_AFTER` times in a row.

        A failure that `passes` is raised: the event is processed when the loop follows again.
        """
        tracking = Tracking(self.upstream.name, notification.id)
        headers = notification.headers if isinstance(notification, JetStreamNotification) else {}
        context = propagate.extract(headers)  # the writer's trace, and its correlation id
        with (
            correlation(correlation_id_in(context)) as correlation_id,
            tracer.start_as_current_span(
                f"process {notification.topic}",  # named by the event's type once decoded
                context=context,
                kind=trace.SpanKind.CONSUMER,
                attributes={
                    "upstream": self.upstream.name,
                    "notification_id": notification.id,
                    "correlation_id": correlation_id,
                },
            ) as span,
        ):
            failures, same, last_way = 0, 0, None
            while True:
                try:
                    domain_event = self.upstream.mapper.to_domain_event(notification)
                    span.update_name(f"process {type(domain_event).__qualname__}")
                    written = self._handle(domain_event, tracking)
                    outcome = "processed" if written else "already processed"
                    self._processed(notification, notification.topic, outcome)
                    return
                except Exception as error:
                    if passes(error):
                        raise
                    way = (type(error), _raised_in(error))  # the same way: type and place
                    failures, same, last_way = failures + 1, same + 1 if way == last_way else 1, way
                    log.warning(
                        "handling an upstream event failed",
                        upstream=self.upstream.name,
                        position=notification.id,
                        attempt=failures,
                        exc_info=True,
                    )
                    if same >= PARK_AFTER or failures >= PARK_AFTER_ANY:
                        self._park(notification, tracking, error, failures)
                        return
                    if self._stopping.wait(0.1 * failures):
                        return  # neither processed nor tracked: handled again when resumed

    def _handle(self, domain_event: Any, tracking: Tracking) -> bool:
        """Process the event with its tracking record; False if its effect was recorded already."""

        def tracked() -> bool:
            return self._tracked(tracking.notification_id)

        return self._without_conflict(
            lambda: self.process.process_event(domain_event, tracking), tracked
        )

    def _processed(self, notification: Notification, event_type: str, outcome: str) -> None:
        event_processed(self.process.name, self.upstream.name, notification.id, event_type, outcome)

    def _tracked(self, notification_id: int) -> bool:
        return self.process.recorder.has_tracking_id(self.upstream.name, notification_id)

    def _without_conflict(self, write: Callable[[], None], recorded: Callable[[], bool]) -> bool:
        """Write; when a concurrent write got there first, stop if `recorded()` says the effect is
        already in the stream (False), else decide and write again. True once written."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                write()
                return True
            except IntegrityError:
                if recorded():
                    return False
                if attempt == ATTEMPTS:
                    raise
                # An aggregate the policy touched changed meanwhile: decide again on it.
        raise AssertionError("unreachable: the last attempt returns or raises")

    # Parked events

    def _park(
        self, notification: Notification, tracking: Tracking, error: Exception, attempts: int
    ) -> None:
        position = notification.id
        parked = ProcessingParked(
            **self._envelope(position, 1, self._actor, _causation(self.upstream, notification)),
            upstream=self.upstream.name,
            position=position,
            event_type=notification.topic[:NAME_LENGTH],
            attempts=attempts,
            **_described(error),
        )
        if not self._without_conflict(
            lambda: self._record([parked], tracking), lambda: self._tracked(position)
        ):
            self._processed(notification, parked.event_type, "already processed")
            return
        self._processed(notification, parked.event_type, "parked")
        log.error(
            "upstream event parked: it failed the same way again and again",
            upstream=self.upstream.name,
            position=position,
            event_type=parked.event_type,
            error_type=parked.error_type,
            error=parked.error,
            raised_in=parked.raised_in,
            attempts=attempts,
        )

    def parked(self) -> list[ProcessingParked]:
        """The upstream's events parked and not yet processed, from the service's own stream."""
        records = [
            event for cls in (ProcessingParked, ParkedEventRetried) for event in self._own(cls)
        ]
        return [p for p in still_parked(records) if p.upstream == self.upstream.name]

    def retry(self, actor: Actor, position: int | None = None) -> list[RetryOutcome]:
        """Process the parked events again (only the one at `position`, if given), as `actor`.

        Each is recorded once: `ParkedEventRetried` with the events its handling makes, in one
        write guarded by the parked event's version, or `ProcessingParked` again if it fails. A
        failure that `passes` is raised, and nothing is recorded."""
        return [
            self._retry(parked, actor)
            for parked in self.parked()
            if position is None or parked.position == position
        ]

    def _retry(self, parked: ProcessingParked, actor: Actor) -> RetryOutcome:
        position, version = parked.position, parked.aggregate_version + 1
        (notification,) = self.upstream.recorder.select_notifications(position, 1)
        if notification.id != position:
            raise LookupError(f"no event at {position} in the {self.upstream.name} stream")
        cause = str(parked.event_id)
        made: list[Any] = []

        def handle_and_record() -> None:
            domain_event = self.upstream.mapper.to_domain_event(notification)
            processing_event = ProcessingEvent[Any](tracking=Tracking(self.upstream.name, position))
            self.process.policy(domain_event, processing_event)
            made[:] = processing_event.events
            retried = ParkedEventRetried(
                **self._envelope(position, version, actor, cause),
                upstream=self.upstream.name,
                position=position,
            )
            self._record([retried, *made], None)  # its position is tracked since it was parked

        def recorded() -> bool:
            return self._newest_version(parked.aggregate_id) >= version

        def outcome(what: Outcome, error: str | None = None) -> RetryOutcome:
            events = len(made) if what == "processed" else 0
            return RetryOutcome(
                upstream=self.upstream.name,
                position=position,
                outcome=what,
                events=events,
                error=error,
            )

        try:
            written = self._without_conflict(handle_and_record, recorded)
        except Exception as error:
            if passes(error):
                raise
            again = ProcessingParked(
                **self._envelope(position, version, actor, cause),
                upstream=self.upstream.name,
                position=position,
                event_type=parked.event_type,
                attempts=1,
                **_described(error),
            )
            if not self._without_conflict(lambda: self._record([again], None), recorded):
                return outcome("already retried")
            log.error(
                "parked event failed again",
                upstream=self.upstream.name,
                position=position,
                error_type=again.error_type,
                error=again.error,
                exc_info=True,
            )
            return outcome("parked again", f"{again.error_type}: {again.error}")
        if not written:
            return outcome("already retried")
        log.info(
            "parked event processed", upstream=self.upstream.name, position=position, made=len(made)
        )
        return outcome("processed")

    def _own(self, cls: type[Event]) -> Iterator[Event]:
        """Every event of one type in the service's own stream, in order."""
        start, page = 1, 1000
        while True:
            found = self.process.recorder.select_notifications(start, page, topics=[topic_of(cls)])
            for notification in found:
                event = self.process.mapper.to_domain_event(notification)
                if isinstance(event, Event):
                    yield event
            if len(found) < page:
                return
            start = found[-1].id + 1

    def _newest_version(self, aggregate_id: UUID) -> int:
        newest = self.process.recorder.select_events(aggregate_id, desc=True, limit=1)
        return newest[0].originator_version if newest else 0

    def _record(self, events: Sequence[Any], tracking: Tracking | None) -> None:
        """One atomic write of `events` (with `tracking`) in the service's own stream."""
        self.process.events.put(events, tracking=tracking)

    @property
    def _actor(self) -> Actor:
        return Actor(
            person=f"{self.upstream.name}-policy", role=Role.SYSTEM, service=self.process.name
        )

    def _envelope(
        self, position: int, version: int, actor: Actor, causation_id: str | None
    ) -> dict[str, Any]:
        context = Context(
            actor=actor,
            now=_now(),
            correlation_id=current_correlation_id() or uuid4().hex,
            causation_id=causation_id,
            stream=default_names(self.process.name)[0],
        )
        aggregate_id = parked_id(self.process.name, self.upstream.name, position)
        return envelope(context, aggregate_id, version)


def _now() -> datetime:
    return datetime.now(UTC)


def _said(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _causation(upstream: Application[Any], notification: Notification) -> str | None:
    """The upstream event's id, if it can be read at all."""
    try:
        event = upstream.mapper.to_domain_event(notification)
    except Exception:
        return None
    return str(event.event_id) if isinstance(event, Event) else None


# What a message may quote of the data it failed on: a name, a national id.
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_LONG_NUMBER = re.compile(r"\d{6,}")


def _described(error: BaseException) -> dict[str, Any]:
    """The error without personal data: its type, its message with quoted text and long numbers
    left out, and where in the code it was raised."""
    message = _LONG_NUMBER.sub("…", _QUOTED.sub("'…'", str(error)))
    return {
        "error_type": type(error).__qualname__[:NAME_LENGTH],
        "error": message[:ERROR_LENGTH],
        "raised_in": _raised_in(error),
    }


def _raised_in(error: BaseException) -> str | None:
    """The innermost Python frame the error passed through: module:function:line."""
    frame = error.__traceback__
    if frame is None:
        return None
    while frame.tb_next is not None:
        frame = frame.tb_next
    module = frame.tb_frame.f_globals.get("__name__", "?")
    return f"{module}:{frame.tb_frame.f_code.co_name}:{frame.tb_lineno}"[:NAME_LENGTH]
