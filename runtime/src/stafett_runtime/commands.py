"""The one command path: load an aggregate's state, decide, append. HTTP routes and policies alike.

A service's domain defines each kind of aggregate it keeps as an `AggregateType`: how its events
fold (`evolve`), and how it decides (`decide(state, command, context) -> events`, pure). The
state is None before the aggregate's first event. Whatever else a decision needs (the case a
meeting belongs to, the register's record of a child, the municipality's directory) comes in
the context, which a service may extend (`class MeetingContext(Context)`), or in the command.

`Commands` runs the path on one eventsourcing application's stream, on the store's worker
threads (`stafett_runtime.threads.call`):

1. load: the folded state of the aggregate, from a cache of recently used ones (`States`),
   brought up to date with only the events after the version it holds
   (`events.get(id, gt=version)`), so a command on a warm aggregate reads only what is new and
   still sees what other processes wrote;
2. decide: a command for an aggregate that does not exist is 404 (`AggregateNotFoundError`),
   unless it is one the type `creates`; an `expected_version` that is not the current one is
   409 (`StaleVersion`), after `refuse_strangers` (if given) has refused anyone who may not give
   the command at all, so a stranger learns nothing, not even the version;
3. append: the decided events in one atomic write, guarded by the aggregate's version: a
   concurrent write is the library's IntegrityError (409), and nothing of this command is
   written. A command already satisfied decides no events and writes nothing.

A policy is a pure translation of another service's event into `Order`s (each a command for one
aggregate, and its context; none, one or several), run by `Policy`: each order is decided on the
same path and all their events are written with the tracking record of the upstream event, in
one atomic batch, by the processing loop (`stafett_runtime.processing`), which does the
exactly-once part. An order is for the policy's aggregate type unless it names another of the
same stream (the notify service's notifications and reminders). An order for an aggregate that
does not exist, or one the aggregate refuses, is logged and skipped, the event's other orders
still written: one bad event must not stop the loop. A refusal that must be on the record is
decided as an event by the domain itself (the case's `DecisionRefused`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from uuid import UUID

import msgspec
import structlog
from cachetools import LRUCache
from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import EventStore, IntegrityError, Tracking
from eventsourcing.utils import EnvType

from stafett_contracts.envelope import Event
from stafett_contracts.identity import Actor
from stafett_contracts.people import Directory
from stafett_runtime.contracts import ContractProcessApplication
from stafett_runtime.domain import Context, NotAllowed, RuleViolation, StaleVersion
from stafett_runtime.jetstream.layout import default_names

S = TypeVar("S")  # an aggregate's state
C = TypeVar("C")  # its commands
X = TypeVar("X", bound=Context)  # the context its decisions get

CACHE_SIZE = 1_000  # aggregates whose state one path keeps, the least recently used forgotten first
CONFLICT_ATTEMPTS = 3  # decisions of one command when others write to its aggregate meanwhile

log = structlog.get_logger(__name__)


@dataclass(frozen=True, kw_only=True)
class AggregateType(Generic[S, C, X]):
    """One kind of aggregate, as its pure domain defines it."""

    name: str  # as a refusal names it: "case", "meeting"
    evolve: Callable[[S | None, Any], S | None]  # the state after one more of its events
    decide: Callable[[S | None, C, X], Sequence[Event]]  # the events a command makes, or a refusal
    creates: tuple[type, ...] = ()  # the commands that may begin one; others need it to exist
    refuse_strangers: Callable[[S | None, C, X], None] | None = None  # before the version is said


@dataclass(frozen=True)
class Loaded(Generic[S]):
    """An aggregate's state after its first `version` events (None and 0 before the first)."""

    state: S | None
    version: int


@dataclass(frozen=True)
class Decision(Generic[S]):
    """What a command decided on an aggregate as it was loaded."""

    aggregate_id: UUID
    loaded: Loaded[S]
    events: list[Event]

    @property
    def version(self) -> int:
        """The aggregate's version once the events are written."""
        return self.loaded.version + len(self.events)


class States(Generic[S]):
    """The folded states of recently used aggregates of one stream, each brought up to date from
    the store when it is loaded. States are frozen, so they are shared, never copied."""

    def __init__(
        self,
        events: EventStore[Any],
        evolve: Callable[[S | None, Any], S | None],
        size: int = CACHE_SIZE,
    ) -> None:
        self._events = events
        self._evolve = evolve
        self._known: LRUCache[UUID, Loaded[S]] = LRUCache(size)
        self._lock = threading.Lock()  # guards the cache only, never a read of the store

    def load(self, aggregate_id: UUID) -> Loaded[S]:
        """The aggregate as the stream holds it now."""
        with self._lock:
            known = self._known.get(aggregate_id, Loaded[S](None, 0))
        newer = self._events.get(aggregate_id, gt=known.version or None)
        loaded = self.fold(known, newer)
        if loaded.version > known.version:
            self.remember(aggregate_id, loaded)
        return loaded

    def fold(self, loaded: Loaded[S], events: Iterable[Any]) -> Loaded[S]:
        """The state after `loaded` and then `events`, the aggregate's next ones in order."""
        state, version = loaded.state, loaded.version
        for event in events:
            state, version = self._evolve(state, event), event.aggregate_version
        return Loaded(state, version)

    def remember(self, aggregate_id: UUID, loaded: Loaded[S]) -> None:
        """Keep a state the stream holds (read from it, or just written to it)."""
        with self._lock:
            current = self._known.get(aggregate_id)
            if current is None or current.version < loaded.version:  # never go back
                self._known[aggregate_id] = loaded


class Commands(Generic[S, C, X]):
    """The command path of one aggregate type, on the stream of `app`."""

    def __init__(
        self, app: Application[Any], aggregate: AggregateType[S, C, X], size: int = CACHE_SIZE
    ) -> None:
        self.app = app
        self.aggregate = aggregate
        self.states = States[S](app.events, aggregate.evolve, size)
        self.stream = default_names(app.name)[0]  # in every event id it decides

    def load(self, aggregate_id: UUID) -> Loaded[S]:
        return self.states.load(aggregate_id)

    def get(self, aggregate_id: UUID) -> S:
        """The aggregate's state now; 404 if it does not exist."""
        state = self.load(aggregate_id).state
        if state is None:
            raise AggregateNotFoundError(f"{self.aggregate.name} {aggregate_id}")
        return state

    def decide(
        self,
        aggregate_id: UUID,
        command: C,
        context: X,
        expected_version: int | None = None,
    ) -> Decision[S]:
        """Load the aggregate and decide `command` on it; nothing is written."""
        kind = self.aggregate
        loaded = self.load(aggregate_id)
        if loaded.state is None and not isinstance(command, kind.creates):
            raise AggregateNotFoundError(f"{kind.name} {aggregate_id}")
        if expected_version is not None and expected_version != loaded.version:
            if kind.refuse_strangers is not None:
                kind.refuse_strangers(loaded.state, command, context)
            raise StaleVersion(expected_version, loaded.version)
        context = msgspec.structs.replace(context, stream=self.stream)
        events = list(kind.decide(loaded.state, command, context))
        _require_continues(aggregate_id, loaded.version, events)
        return Decision(aggregate_id, loaded, events)

    def handle(
        self,
        aggregate_id: UUID,
        command: C,
        context: X,
        expected_version: int | None = None,
    ) -> Decision[S]:
        """Decide `command` and append its events atomically: what was decided and written.

        A command that names no `expected_version` asks for the aggregate as it is: when another
        write (another person, a policy) got in between, it is decided again on the newer state,
        a few times, before the conflict is the caller's (IntegrityError, 409). One that names a
        version gets the conflict at once: it was decided on what its sender saw.
        """
        for attempt in range(1, CONFLICT_ATTEMPTS + 1):
            decision = self.decide(aggregate_id, command, context, expected_version)
            if not decision.events:
                return decision
            try:
                self.app.save(*decision.events)  # one atomic append, or IntegrityError
            except IntegrityError:
                if expected_version is not None or attempt == CONFLICT_ATTEMPTS:
                    raise
                continue
            self.written(decision)
            return decision
        raise AssertionError("unreachable: the last attempt returns or raises")

    def written(self, decision: Decision[S]) -> None:
        """Keep the state a decision leads to, once its events are in the stream."""
        after = self.states.fold(decision.loaded, decision.events)
        self.states.remember(decision.aggregate_id, after)


def _require_continues(aggregate_id: UUID, version: int, events: Sequence[Event]) -> None:
    """A decision's events continue its aggregate, one version after another: anything else is
    a fault in the domain, never written."""
    for offset, event in enumerate(events, start=1):
        if (event.aggregate_id, event.aggregate_version) != (aggregate_id, version + offset):
            raise ValueError(
                f"{type(event).__name__} is {event.aggregate_id} v{event.aggregate_version}, "
                f"not {aggregate_id} v{version + offset}: a decision continues its aggregate"
            )


# Policies: another service's events, translated into commands on the same path.


@dataclass(frozen=True)
class Order(Generic[C, X]):
    """A command for one aggregate, and the context it is decided in: what a policy makes of an
    upstream event."""

    aggregate_id: UUID
    command: C
    context: X
    aggregate: AggregateType[Any, C, X] | None = None  # its kind, when not the policy's own


def caused_by(event: Event, actor: Actor, directory: Directory) -> Context:
    """The context of what a policy does about `event`: decided by `actor` as of the event's
    time, caused by it and in its correlation, with the directory as it stands."""
    return Context(
        actor=actor,
        now=event.occurred_at,
        correlation_id=event.correlation_id,
        causation_id=str(event.event_id),
        directory=directory,
    )


class Policy(ContractProcessApplication):
    """A process application whose policy is `translate`: each upstream event becomes orders
    (none, one or several, for different aggregates), decided on the command path of their
    aggregate type in this application's stream (`aggregate`, unless an order names another)
    and collected, so that the processing loop writes them with the event's tracking record.

    Subclass it to name the stream it writes (`name`) and, if it reads only some of the
    upstream's event types, `topics`.
    """

    def __init__(
        self,
        env: EnvType | None,
        aggregate: AggregateType[Any, Any, Any],
        translate: Callable[[Event], Order[Any, Any] | Sequence[Order[Any, Any]] | None],
    ) -> None:
        super().__init__(env)
        self.commands = Commands[Any, Any, Any](self, aggregate)
        self.translate = translate
        self._paths = {aggregate.name: self.commands}  # each aggregate type's, once ordered
        self._paths_lock = threading.Lock()
        self._decided = threading.local()  # what `policy` decided, on the thread it ran on

    def process_event(self, domain_event: Any, tracking: Tracking) -> None:
        self._decided.decisions = []
        super().process_event(domain_event, tracking)  # the events and the tracking, or raises
        for commands, decision in self._decided.decisions:
            commands.written(decision)

    def policy(
        self, domain_event: DomainEventProtocol[Any], processing_event: ProcessingEvent[Any]
    ) -> None:
        if not isinstance(domain_event, Event):
            return
        translated = self.translate(domain_event)
        orders = [translated] if isinstance(translated, Order) else list(translated or ())
        decided: list[tuple[Commands[Any, Any, Any], Decision[Any]]] = []
        for order in orders:
            commands = self._path(order.aggregate)
            decision = self._decide(commands, order, domain_event)
            if decision is None or not decision.events:
                continue
            if any(d.aggregate_id == decision.aggregate_id for _, d in decided):
                # Each order is decided on the stream as it stands: a second one for the same
                # aggregate would be refused by the store, again and again.
                raise ValueError(
                    f"two orders of one {type(domain_event).__name__} for "
                    f"{commands.aggregate.name} {decision.aggregate_id}: one order per aggregate"
                )
            decided.append((commands, decision))
        for _, decision in decided:
            processing_event.collect_events(*decision.events)
        self._decided.decisions = decided

    def _path(self, aggregate: AggregateType[Any, Any, Any] | None) -> Commands[Any, Any, Any]:
        """The command path of the order's aggregate type (the policy's own if it names none)."""
        if aggregate is None:
            return self.commands
        with self._paths_lock:
            if aggregate.name not in self._paths:
                self._paths[aggregate.name] = Commands[Any, Any, Any](self, aggregate)
            return self._paths[aggregate.name]

    def _decide(
        self, commands: Commands[Any, Any, Any], order: Order[Any, Any], cause: Event
    ) -> Decision[Any] | None:
        """The order decided, or None when it is skipped (logged)."""
        try:
            return commands.decide(order.aggregate_id, order.command, order.context)
        except AggregateNotFoundError:
            log.warning(
                "order for no known aggregate skipped",
                aggregate=commands.aggregate.name,
                aggregate_id=str(order.aggregate_id),
                cause=str(cause.event_id),
            )
        except (RuleViolation, NotAllowed) as refusal:
            log.warning(
                "order refused, skipped",
                aggregate=commands.aggregate.name,
                aggregate_id=str(order.aggregate_id),
                command=type(order.command).__name__,
                rule=getattr(refusal, "rule", None),
                reason=str(refusal),
            )
        return None
