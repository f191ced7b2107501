"""Erasing a child (DOMAIN.md rules 8 and 10): the child's aggregate, pure.

The child's aggregate lives in the CASE stream beside the cases, under the child's pseudonymous
id; its one event is `ChildErased`. Who may erase, first of all: an administrator, for any of
the reasons; the retention timer (a system actor of the case service), only because the
retention period ended. The cases that name the child come in the context (the case service's
ledger, read from the CASE stream), so that a child no case ever named is not erased: the API
says 404 for it. Erasing a child erased already decides nothing: it is done.
"""

from __future__ import annotations

from collections.abc import Sequence
from uuid import UUID

import msgspec

from stafett_contracts.erasure import ChildErased, ErasureReason, Reference
from stafett_contracts.identity import Actor, Role
from stafett_runtime.domain import Context, NotAllowed, envelope

ADMINISTRATOR_ERASES = "administrator-erases"


class EraseChild(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Erase every piece of the child's personal data, in every case, for good: the child's key
    is deleted. The reason is one of a fixed few, with an optional journal or case number,
    never free text: the record of the erasure must itself hold nothing about the child."""

    reason: ErasureReason
    reference: Reference | None = None


class ErasedChild(msgspec.Struct, frozen=True, kw_only=True):
    """A child's aggregate, which exists only once the child is erased."""

    child_id: UUID
    version: int


class ErasureContext(Context, frozen=True, kw_only=True):
    """A command's context: which child, and the cases that name the child."""

    child_id: UUID
    cases: tuple[UUID, ...] = ()

    @classmethod
    def of(cls, context: Context, child_id: UUID, cases: Sequence[UUID]) -> ErasureContext:
        return cls(**msgspec.structs.asdict(context), child_id=child_id, cases=tuple(cases))


def may_erase(actor: Actor, reason: ErasureReason) -> None:
    """Refuse anyone but an administrator, or the retention timer when the period has ended."""
    if actor.role == Role.ADMINISTRATOR:
        return
    if actor.role == Role.SYSTEM and reason == ErasureReason.RETENTION_PERIOD_ENDED:
        return
    raise NotAllowed("only an administrator erases a child", rule=ADMINISTRATOR_ERASES)


def evolve(state: ErasedChild | None, event: ChildErased) -> ErasedChild:
    return ErasedChild(child_id=event.child_id, version=event.aggregate_version)


def decide(
    state: ErasedChild | None, command: EraseChild, context: ErasureContext
) -> list[ChildErased]:
    may_erase(context.actor, command.reason)
    if state is not None:
        return []  # erased already: nothing new
    return [
        ChildErased(
            **envelope(context, context.child_id, 1),
            child_id=context.child_id,
            reason=command.reason,
            reference=command.reference,
            cases=context.cases,
        )
    ]


def refuse_strangers(state: ErasedChild | None, command: EraseChild, context: Context) -> None:
    may_erase(context.actor, command.reason)
