"""The children the cases name: erasing one, and who is due for shredding (DOMAIN.md rule 10).

Erasure goes the one command path (`stafett_runtime.commands`) on the child's aggregate in the
CASE stream (`domain.erasure`), written by the same application as the cases. Refused first:
anyone who may not erase is refused before anything is looked up, so a stranger learns nothing,
not even whether a case names the child; then a child no case ever named is 404.

Which cases name a child, which are closed and delivered to the archive, and which children are
erased: the retention ledger (`stafett_contracts.retention`, pure), kept in an index
(`stafett_runtime.index`) caught up before each use from the CASE stream (ConcernRaised,
CaseClosed, CaseReopened, ChildErased) and the AUDIT stream (ArchiveDelivered and
ArchiveDeliveryFailed, recorded by the projection), each event type a source of its own, read
narrowly from where the last read ended. AUDIT may not be made yet (the projection makes it):
until it is, no closed case counts as archived, so no child is due. Nothing of the ledger
outlives the process: it is rebuilt on start.

Synchronous, as the store is: handlers and the retention timer call it on worker threads.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from datetime import datetime
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError
from eventsourcing.utils import EnvType

from stafett_case.application import Cases
from stafett_case.domain.erasure import (
    EraseChild,
    ErasedChild,
    ErasureContext,
    decide,
    evolve,
    may_erase,
    refuse_strangers,
)
from stafett_contracts.erasure import ErasureReason
from stafett_contracts.identity import Actor, Role
from stafett_contracts.people import Retention
from stafett_contracts.retention import AUDIT_TOPICS, CASE_TOPICS, RetentionLedger, Shredding
from stafett_runtime import metrics
from stafett_runtime.commands import AggregateType, Commands, Decision
from stafett_runtime.contracts import CONTRACT_ENV
from stafett_runtime.domain import Context
from stafett_runtime.index import Index, Source
from stafett_runtime.processing import Upstream

CHILD = AggregateType[ErasedChild, EraseChild, ErasureContext](
    name="child",
    evolve=evolve,
    decide=decide,
    creates=(EraseChild,),
    refuse_strangers=refuse_strangers,
)
RETENTION_TIMER = Actor(person="retention-timer", role=Role.SYSTEM, service="case")


class Children:
    """Erasing children, and the retention ledger, over the case application's stream."""

    def __init__(self, cases: Cases, env: EnvType | None = None) -> None:
        self.cases = cases
        self.commands = Commands[ErasedChild, EraseChild, ErasureContext](cases, CHILD)
        self._env = env
        self._audit: Upstream | None = None  # made on first use, so an unused one costs nothing
        self._index: Index[RetentionLedger] | None = None
        self._making = threading.Lock()

    def erase(self, child_id: UUID, command: EraseChild, context: Context) -> Decision[ErasedChild]:
        """Erase the child, or nothing if it is erased already; 403 first, then 404."""
        may_erase(context.actor, command.reason)
        with self._ledger() as ledger:
            cases = ledger.cases_of(child_id)
        if not cases:
            raise AggregateNotFoundError(f"child {child_id}: no case names this child")
        erasing = ErasureContext.of(context, child_id, cases)
        decision = self.commands.handle(child_id, command, erasing)
        if decision.events:  # newly erased: by an administrator or the retention timer
            metrics.child_erased(command.reason.value)
        return decision

    def erased(self) -> set[UUID]:
        """The children recorded as erased."""
        with self._ledger() as ledger:
            return ledger.erased()

    def schedule(self, retention: Retention) -> list[Shredding]:
        with self._ledger() as ledger:
            return ledger.schedule(retention)

    def shred_due(self, retention: Retention, now: datetime) -> list[UUID]:
        """Erase every child due by now, as the retention timer; the children erased."""
        with self._ledger() as ledger:
            due = ledger.due(retention, now)
        erased: list[UUID] = []
        for shredding in due:
            context = Context(actor=RETENTION_TIMER, now=now, correlation_id=uuid4().hex)
            command = EraseChild(reason=ErasureReason.RETENTION_PERIOD_ENDED)
            if self.erase(shredding.child_id, command, context).events:
                erased.append(shredding.child_id)
        return erased

    def catch_up(self) -> None:
        """Take in what the streams hold beyond the last read, each event type on its own."""
        self._ledger_index().catch_up()

    def close(self) -> None:
        if self._audit is not None:
            self._audit.close()

    def _ledger(self) -> AbstractContextManager[RetentionLedger]:
        """The ledger, caught up, for the block to read."""
        return self._ledger_index().caught_up()

    def _ledger_index(self) -> Index[RetentionLedger]:
        with self._making:
            if self._index is None:
                env = self._env if self._env is not None else dict(self.cases.env)
                self._audit = Upstream.named("audit", {**env, **CONTRACT_ENV})
                case_sources = [Source(self.cases, (topic,)) for topic in CASE_TOPICS]
                audit_sources = [
                    Source(self._audit, (topic,), optional=True) for topic in AUDIT_TOPICS
                ]
                self._index = Index(RetentionLedger(), *case_sources, *audit_sources)
            return self._index
