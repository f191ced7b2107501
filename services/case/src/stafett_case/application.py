"""The case service's eventsourcing application: load a case by folding its events, decide, save.

Synchronous, on the store's worker threads; handlers call it through
`stafett_runtime.service.call`. One command's events are one atomic append, so a concurrent
write to the same case is refused (IntegrityError, 409) rather than interleaved. The case is
`stafett_contracts.casefile.CaseFile`, the one fold of a case's events.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from stafett_case.domain import decide
from stafett_case.domain.commands import Command, RaiseConcern
from stafett_case.domain.rules import refuse_strangers
from stafett_contracts.case import CaseEvent
from stafett_contracts.casefile import CaseFile, fold
from stafett_runtime.contracts import ContractApplication, ContractProcessApplication
from stafett_runtime.domain import Context, StaleVersion


class Cases(ContractApplication):
    name = "case"  # stream CASE, subjects case.events.<case id>.<EventType>

    def handle(
        self,
        case_id: UUID,
        command: Command,
        context: Context,
        expected_version: int | None = None,
    ) -> int:
        """Decide `command` on the case and save its events; the case's version after it."""
        history = case_history(self, case_id)
        if not history and not isinstance(command, RaiseConcern):
            raise AggregateNotFoundError(f"case {case_id}")
        state, version = fold(history), len(history)
        if expected_version is not None and expected_version != version:
            refuse_strangers(state, command, context)  # the version is news to a stranger
            raise StaleVersion(expected_version, version)
        new = decide(state, command, context)
        self.save(*new)
        return version + len(new)

    def get(self, case_id: UUID) -> CaseFile:
        """The case as its events leave it (its `version` says after how many)."""
        state = fold(case_history(self, case_id))
        if state is None:
            raise AggregateNotFoundError(f"case {case_id}")
        return state


def case_history(
    app: ContractApplication | ContractProcessApplication, case_id: UUID
) -> list[CaseEvent]:
    """The case's events in order, from the CASE stream of `app`."""
    history = app.history(case_id)
    strays = [type(e).__name__ for e in history if not isinstance(e, CaseEvent)]
    if strays:
        raise TypeError(f"case {case_id} holds events of no case contract: {strays}")
    return [e for e in history if isinstance(e, CaseEvent)]
