"""What every service's pure domain shares: the context of a command, and how it is refused.

A domain never reads the clock, the network or the environment: a command arrives with a
`Context` (who, when, in answer to what, and the directory), and `decide` functions return
contract events or raise `RuleViolation` / `NotAllowed`. `envelope` fills in an event's envelope
from the context, with an event id derived from the stream, the aggregate and the version
(`event_id`), so deciding twice gives the same events, and no two events in any stream share an
id. `require_within` refuses a date outside its case's window, the one rule
(`stafett_contracts.inputs.DateWindow`) every domain asks.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from uuid import UUID, uuid5

import msgspec

from stafett_contracts.identity import Actor
from stafett_contracts.inputs import DATE_WITHIN_WINDOW, DateWindow
from stafett_contracts.people import Directory


class Context(msgspec.Struct, frozen=True, kw_only=True):
    """Who acts, when, and which request (or event) this work belongs to; and the municipality
    directory as it stands, so a rule knows which units exist and who leads them."""

    actor: Actor
    now: datetime
    correlation_id: str
    causation_id: str | None = None
    directory: Directory = msgspec.field(default_factory=Directory)
    # The stream the decided events go to (CASE): part of every event id. The command path
    # (`stafett_runtime.commands`) sets it, so a domain never names its stream.
    stream: str = ""


class RuleViolation(Exception):  # noqa: N818 (a domain outcome, named as the domain says it)
    """A command that breaks a rule of the domain; the message names the rule in its words."""

    def __init__(self, rule: str, message: str) -> None:
        super().__init__(message)
        self.rule = rule
        self.message = message


class NotAllowed(Exception):  # noqa: N818 (as RuleViolation: named as the domain says it)
    """The actor may not do this here (a role or membership the events do not give them).

    `rule` names the rule that refuses, where one does (the access rule's, for a read)."""

    def __init__(self, message: str, rule: str | None = None) -> None:
        super().__init__(message)
        self.rule = rule


def require_within(window: DateWindow, field: str, value: date | datetime) -> None:
    """Refuse `value`, the command's `field`, unless it lies in the case's date window."""
    refusal = window.refusal(field, value)
    if refusal is not None:
        raise RuleViolation(DATE_WITHIN_WINDOW, refusal)


def event_id(stream: str, aggregate_id: UUID, version: int) -> UUID:
    """The id of the event that takes `aggregate_id` to `version` in `stream`: the same every
    time it is decided (exactly-once processing decides again after a crash), and unique across
    all streams, where one aggregate id may have events in several (a case's CASE events and
    MEETING's `CaseRosterNoted`)."""
    return uuid5(aggregate_id, f"{stream}/{version}")


def envelope(context: Context, aggregate_id: UUID, version: int) -> dict[str, Any]:
    """The envelope fields of the event that takes `aggregate_id` to `version`."""
    return {
        "event_id": event_id(context.stream, aggregate_id, version),
        "aggregate_id": aggregate_id,
        "aggregate_version": version,
        "occurred_at": context.now,
        "actor": context.actor,
        "correlation_id": context.correlation_id,
        "causation_id": context.causation_id,
    }


class StaleVersion(Exception):  # noqa: N818 (as RuleViolation: named as the domain says it)
    """The command was decided on a version of the aggregate that is no longer the latest."""

    def __init__(self, expected: int, actual: int) -> None:
        super().__init__(
            f"expected version {expected}, but it is at version {actual}: reload and try again"
        )
        self.expected = expected
        self.actual = actual
