"""The case service's eventsourcing application: the CASE stream, and the command path on it.

Synchronous, on the store's worker threads; handlers call it through
`stafett_runtime.service.call`. A command goes the one command path (`stafett_runtime.commands`):
the case loaded (cached, brought up to date with only its newer events), decided by the pure
domain, its events appended atomically, so a concurrent write to the same case is refused
(IntegrityError, 409) rather than interleaved. The case is `stafett_contracts.casefile.CaseFile`,
the one fold of a case's events.
"""

from __future__ import annotations

from eventsourcing.utils import EnvType

from stafett_case.domain import decide
from stafett_case.domain.commands import Command, RaiseConcern
from stafett_case.domain.rules import refuse_strangers
from stafett_contracts.casefile import CaseFile, evolve
from stafett_runtime.commands import AggregateType, Commands
from stafett_runtime.contracts import ContractApplication
from stafett_runtime.domain import Context

CASE = AggregateType[CaseFile, Command, Context](
    name="case",
    evolve=evolve,
    decide=decide,
    creates=(RaiseConcern,),
    refuse_strangers=refuse_strangers,  # a stranger is refused before the version is said
)


class Cases(ContractApplication):
    name = "case"  # stream CASE, subjects case.events.<case id>.<EventType>

    def __init__(self, env: EnvType | None = None) -> None:
        super().__init__(env)
        self.commands = Commands(self, CASE)
