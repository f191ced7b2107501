"""Erasing a child: the event that says it happened, without a word about the child.

A child is erased by deleting the child's key (crypto-shredding, `stafett_runtime.keystore`):
everything sealed with it, in every stream, read model and process, reads as erased from then
on. The record of the erasure is `ChildErased`, an event of the child (its aggregate is the
child's pseudonymous id, in the CASE stream), owned by the case service, which knows which
children its cases name.

The reason is a fixed word (`ErasureReason`) and, optionally, a reference: a journal or case
number in the municipality's own records. Never free text: the event outlives the key, so
anything written in it about the child would outlive the erasure; and sealing it under the
child's key would make it unreadable at the very moment it is recorded.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, ClassVar
from uuid import UUID

import msgspec

from stafett_contracts.envelope import Event

# A journal or case number, as the municipality's archive gives it ("2025/1234"): letters,
# digits and . / : _ - only, so that it cannot hold a sentence about the child.
Reference = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9./:_-]*$",
        description="a journal or case number (letters, digits and . / : _ -), never prose",
    ),
]


class ErasureReason(StrEnum):
    """Why a child's personal data was erased."""

    RETENTION_PERIOD_ENDED = "retention_period_ended"  # DOMAIN.md rule 10, by the timer
    ERASURE_REQUESTED = "erasure_requested"  # the right to erasure (GDPR art. 17) was granted
    REGISTERED_IN_ERROR = "registered_in_error"  # a case named the wrong child


class ChildEvent(Event, frozen=True, kw_only=True):
    """An event about a child rather than one case: its aggregate is the child's id."""

    CONTEXT: ClassVar[str] = "case"


class ChildErased(ChildEvent, frozen=True, kw_only=True):
    """The child's key was deleted: every piece of the child's personal data, in every case,
    reads as erased from now on. The actor is who erased it (an administrator, or the
    retention timer); `cases` are the cases that named the child."""

    child_id: UUID
    reason: ErasureReason
    reference: Reference | None = None
    cases: tuple[UUID, ...] = ()
