"""One notification's delivery: its state from its events, and what to do next (pure).

Exactly once, as far as a channel allows: `DeliveryAttempted` is recorded before each send and
an outcome after it. An attempt with no outcome was interrupted (the process died mid-send); it
may or may not have reached the recipient, so it is never repeated: after `attempt_timeout` it
ends in NotificationFailed, visible in the read model (at most once per attempt).

A notification is an aggregate of the NOTIFY stream on the one command path
(`stafett_runtime.commands`). `Request` begins it (`NotificationRequested`, and
`CalendarInvitationPrepared` for a meeting), given by the policy and the timers; its id is
derived from what it is about (`requests_for`), so a request made again decides nothing. Three
commands deliver it, the send happening between the first two, outside any decision:
`StartAttempt` (due now: record the attempt), `RecordOutcome` (what the channel said), and
`GiveUpInterrupted` (an attempt with no outcome, past its timeout). Each decides nothing when it
is not (or no longer) the next step, so a round or replica that comes second does nothing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import singledispatch
from typing import Any, Literal
from uuid import UUID

import msgspec

from stafett_contracts import notify as n
from stafett_contracts.envelope import Event
from stafett_notify.domain.ids import derived_id
from stafett_notify.domain.rules import Invitation, Told, link, reference
from stafett_runtime.domain import Context, envelope

REASONS = {
    "concern_raised": "A concern was raised in your unit",
    "baton.appointed": "You hold the baton in a case",
    "baton.offered": "You are offered the baton in a case",
    "baton.accepted": "The baton you offered was accepted",
    "baton.vacated": "The baton fell vacant in a case in your unit: appoint a new holder",
    "group.changed": "Who works on a case you coordinate has changed",
    "coordinator_assigned": "A coordinator was assigned in a case",
    "measure_planned": "You are responsible for a measure",
    "bright_spot": "Something good was noted in a case",
    "decision_refused": "A decision you recorded in a meeting was not carried out in the case",
    "consent_withdrawn": "A consent was withdrawn: your service no longer has access",
    "consent_withdrawn.unit_leader": "A consent was withdrawn in a case in your unit",
    "action_item_assigned": "You own an action item from a meeting",
    "meeting.scheduled": "You are invited to a meeting",
    "meeting.rescheduled": "A meeting you are invited to was moved",
    "meeting.cancelled": "A meeting you are invited to was cancelled",
    "reminder.evaluation_approaching": "A measure's evaluation date is approaching",
    "reminder.evaluation_passed": "A measure's evaluation date has passed",
    "reminder.action_item_approaching": "An action item is due soon",
    "reminder.action_item_passed": "An action item is overdue",
    "follow_up_break.baton_holder": "Follow-up break: a case you hold needs attention",
    "follow_up_break.unit_leader": "Follow-up break: a case in your unit needs attention",
}

ERROR_LIMIT = 10_000  # characters of a channel's error kept in an event


@dataclass(frozen=True)
class Message:
    """What a channel sends: a headline, a reference and a link, nothing else (rule 8)."""

    subject: str
    body: str


def message_of(requested: n.NotificationRequested) -> Message:
    headline = REASONS.get(requested.reason, "Something in a case needs you")
    subject = f"Stafett {requested.reference}: {headline}"
    body = (
        f"{headline}.\n\n"
        f"Reference: {requested.reference}\n"
        f"Read more (sign-in required): {requested.link}\n\n"
        "This message holds no details on purpose; they are behind the link.\n"
    )
    return Message(subject=subject, body=body)


@dataclass(frozen=True)
class Delivery:
    """A notification as its events tell it. Frozen: the command path's cache shares it."""

    requested: n.NotificationRequested
    version: int = 1  # of its newest event: the next one is version + 1
    invitation: n.CalendarInvitationPrepared | None = None
    attempts: int = 0
    open_attempt: n.DeliveryAttempted | None = None
    retry_at: datetime | None = None
    done: bool = False
    last_error: str | None = None


def evolve(state: Delivery | None, event: Event) -> Delivery | None:
    if isinstance(event, n.NotificationRequested):
        return Delivery(requested=event)
    if state is None:  # nothing of a notification comes before its request
        return None
    return dataclasses.replace(_apply(event, state), version=event.aggregate_version)


@singledispatch
def _apply(event: Event, state: Delivery) -> Delivery:
    return state  # an event that does not change the delivery


@_apply.register
def _(event: n.CalendarInvitationPrepared, state: Delivery) -> Delivery:
    return dataclasses.replace(state, invitation=event)


@_apply.register
def _(event: n.DeliveryAttempted, state: Delivery) -> Delivery:
    return dataclasses.replace(state, attempts=event.attempt, open_attempt=event)


@_apply.register
def _(event: n.DeliveryAttemptFailed, state: Delivery) -> Delivery:
    return dataclasses.replace(
        state, open_attempt=None, retry_at=event.retry_at, last_error=event.error
    )


@_apply.register
def _(event: n.NotificationSent, state: Delivery) -> Delivery:
    return dataclasses.replace(state, open_attempt=None, done=True)


@_apply.register
def _(event: n.NotificationFailed, state: Delivery) -> Delivery:
    return dataclasses.replace(state, open_attempt=None, done=True, last_error=event.error)


def fold(history: Iterable[Event]) -> Delivery | None:
    delivery: Delivery | None = None
    for event in history:
        delivery = evolve(delivery, event)
    return delivery


@dataclass(frozen=True)
class DeliveryRules:
    max_attempts: int
    backoff: timedelta  # before the 2nd attempt; it doubles each time
    attempt_timeout: timedelta  # an attempt with no outcome after this was interrupted


Step = Literal["send", "wait", "interrupted", "done"]


def next_step(delivery: Delivery, now: datetime, rules: DeliveryRules) -> Step:
    if delivery.done:
        return "done"
    if delivery.open_attempt is not None:
        started = delivery.open_attempt.started_at
        return "interrupted" if now >= started + rules.attempt_timeout else "wait"
    if delivery.retry_at is not None and now < delivery.retry_at:
        return "wait"
    return "send"


def retry_at(attempt: int, now: datetime, rules: DeliveryRules) -> datetime | None:
    """When to try again after `attempt` failed; None when it was the last."""
    if attempt >= rules.max_attempts:
        return None
    wait: timedelta = rules.backoff * 2 ** (attempt - 1)
    return now + wait


# The commands of a notification, and how each is decided.


class Request(msgspec.Struct, frozen=True, kw_only=True):
    """Begin the notification `notification_id`: tell `recipient` on `channel`, why (`reason`),
    caused by the event `trigger`; with a reference and a link, never what happened (rule 8)."""

    notification_id: UUID
    case_id: UUID | None
    recipient: str
    channel: n.Channel
    reason: str
    trigger: UUID
    reference: str
    link: str
    invitation: Invitation | None = None


def requests_for(
    told: Told, trigger: Event, key: object, channels: Iterable[n.Channel], link_base: str
) -> list[Request]:
    """A request per channel the recipient has, each with an id derived from `key` (what the
    notification is about: its trigger, a reminder, a follow-up break), recipient and channel."""
    about = told.meeting_id or told.case_id or trigger.aggregate_id
    return [
        Request(
            notification_id=derived_id("notification", key, told.recipient, channel),
            case_id=told.case_id,
            recipient=told.recipient,
            channel=channel,
            reason=told.reason,
            trigger=trigger.event_id,
            reference=reference(told.case_id, about),
            link=link(link_base, told.case_id, told.meeting_id),
            invitation=told.invitation,
        )
        for channel in channels
    ]


class StartAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """Record the next attempt, before sending it, if one is due now."""


class RecordOutcome(msgspec.Struct, frozen=True, kw_only=True):
    """What the channel said of `attempt`: sent (no error), or failed with `error`; a failure
    that cannot pass on a later attempt (no address) is not `retryable`."""

    attempt: int
    error: str | None = None
    retryable: bool = True


class GiveUpInterrupted(msgspec.Struct, frozen=True, kw_only=True):
    """End an attempt that has had no outcome for longer than it may take, without sending it
    again: it may have reached the recipient."""


Command = Request | StartAttempt | RecordOutcome | GiveUpInterrupted


class DeliveryContext(Context, frozen=True, kw_only=True):
    """A command's context, with the delivery rules the municipality configured."""

    rules: DeliveryRules


def decide(state: Delivery | None, command: Command, context: DeliveryContext) -> list[Event]:
    """The events of `command`, or none when it is not the next step of the notification
    (requested already, another round or replica took it, or it is not due yet)."""
    if isinstance(command, Request):
        return [] if state is not None else _requested(command, context)
    assert state is not None  # the command path answers a command for no notification with 404
    return _rules(command, state, context)


def _requested(command: Request, context: Context) -> list[Event]:
    requested = n.NotificationRequested(
        **envelope(context, command.notification_id, 1),
        case_id=command.case_id,
        recipient=command.recipient,
        channel=command.channel,
        reason=command.reason,
        trigger=command.trigger,
        reference=command.reference,
        link=command.link,
        calendar=command.invitation is not None,
    )
    invitation = command.invitation
    if invitation is None:
        return [requested]
    return [
        requested,
        n.CalendarInvitationPrepared(
            **envelope(context, command.notification_id, 2),
            meeting_id=invitation.meeting_id,
            method=invitation.method,
            sequence=invitation.sequence,
            starts_at=invitation.starts_at,
            ends_at=invitation.ends_at,
            video_link=invitation.video_link,
        ),
    ]


@singledispatch
def _rules(command: Command, state: Delivery, context: DeliveryContext) -> list[Event]:
    raise TypeError(f"no rules for {type(command).__name__}")


@_rules.register
def _(command: StartAttempt, state: Delivery, context: DeliveryContext) -> list[Event]:
    if next_step(state, context.now, context.rules) != "send":
        return []
    return [
        n.DeliveryAttempted(
            **_next(state, context),
            channel=state.requested.channel,
            attempt=state.attempts + 1,
            started_at=context.now,
        )
    ]


@_rules.register
def _(command: RecordOutcome, state: Delivery, context: DeliveryContext) -> list[Event]:
    if state.open_attempt is None or state.open_attempt.attempt != command.attempt:
        return []  # settled already: given up as interrupted by another round
    channel, attempt = state.requested.channel, command.attempt
    if command.error is None:
        return [
            n.NotificationSent(
                **_next(state, context), channel=channel, attempts=attempt, sent_at=context.now
            )
        ]
    error = command.error[:ERROR_LIMIT]
    again = retry_at(attempt, context.now, context.rules) if command.retryable else None
    if again is None:
        return [
            n.NotificationFailed(
                **_next(state, context), channel=channel, attempts=attempt, error=error
            )
        ]
    return [
        n.DeliveryAttemptFailed(
            **_next(state, context), channel=channel, attempt=attempt, error=error, retry_at=again
        )
    ]


@_rules.register
def _(command: GiveUpInterrupted, state: Delivery, context: DeliveryContext) -> list[Event]:
    if next_step(state, context.now, context.rules) != "interrupted":
        return []
    return [
        n.NotificationFailed(
            **_next(state, context),
            channel=state.requested.channel,
            attempts=state.attempts,
            error=(
                f"attempt {state.attempts} was interrupted mid-send; its outcome is unknown, "
                "so it is not sent again (at most once)"
            ),
        )
    ]


def _next(state: Delivery, context: DeliveryContext) -> dict[str, Any]:
    return envelope(context, state.requested.aggregate_id, state.version + 1)
