"""What every rule module shares: the `decision` each command type registers with, and envelopes.

`rules.decide` checks what holds for every command, then hands it to `decision`, whose branches
live in `progress.py` (the work on the case) and `sharing.py` (who takes part, under what).
"""

from __future__ import annotations

from functools import singledispatch
from typing import Any

from stafett_case.domain.commands import Command
from stafett_contracts.case import CaseEvent
from stafett_contracts.casefile import CaseFile, evolve
from stafett_runtime.domain import Context, RuleViolation, envelope


@singledispatch
def decision(command: Command, state: CaseFile, context: Context) -> list[CaseEvent]:
    raise TypeError(f"no rules for {type(command).__name__}")


def next_envelope(state: CaseFile, context: Context) -> dict[str, Any]:
    """The envelope of the event that follows `state`."""
    return envelope(context, state.id, state.version + 1)


class Draft:
    """The events decided so far and the state they lead to, when one decision has several."""

    def __init__(self, state: CaseFile, context: Context) -> None:
        self.state = state
        self.context = context
        self.events: list[CaseEvent] = []

    def envelope(self) -> dict[str, Any]:
        return next_envelope(self.state, self.context)

    def add(self, event: CaseEvent) -> None:
        self.events.append(event)
        self.state = evolve(self.state, event)


def require_on_the_case(state: CaseFile, service: str) -> None:
    if service not in state.services:
        raise RuleViolation("service-on-the-case", f"{service} is not on the case: it joins first")
