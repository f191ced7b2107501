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

from stafett_case.domain import decide, guides
from stafett_case.domain.commands import Command, RaiseConcern
from stafett_case.domain.rules import refuse_strangers
from stafett_contracts.casefile import CaseFile, evolve
from stafett_contracts.guides import GUIDE_BOOK_ID, GuideBook, evolve_book
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

# The municipality's action guides: one aggregate beside the cases (`domain.guides`).
GUIDE_BOOK = AggregateType[GuideBook, guides.PublishGuide, Context](
    name="guide book",
    evolve=evolve_book,
    decide=guides.decide,
    creates=(guides.PublishGuide,),
    refuse_strangers=guides.refuse_strangers,
)


class Cases(ContractApplication):
    name = "case"  # stream CASE, subjects case.events.<case id>.<EventType>

    def __init__(self, env: EnvType | None = None) -> None:
        super().__init__(env)
        self.commands = Commands(self, CASE)
        self.guides = Commands(self, GUIDE_BOOK)

    def guide_book(self) -> GuideBook:
        """The guides published so far (none: the guides Stafett ships, version 1)."""
        return self.guides.load(GUIDE_BOOK_ID).state or GuideBook()
