"""One notification's delivery: its state from its events, and what to do next.

Exactly once, as far as a channel allows: `DeliveryAttempted` is recorded before each send and
an outcome after it. An attempt with no outcome was interrupted (the process died mid-send); it
may or may not have reached the recipient, so it is never repeated: after `attempt_timeout` it
ends in NotificationFailed, visible in the read model (at most once per attempt).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from stafett_contracts import notify as n
from stafett_contracts.envelope import Event

REASONS = {
    "concern_raised": "A concern was raised in your unit",
    "baton.appointed": "You hold the baton in a case",
    "baton.offered": "You are offered the baton in a case",
    "baton.accepted": "The baton you offered was accepted",
    "coordinator_assigned": "A coordinator was assigned in a case",
    "measure_planned": "You are responsible for a measure",
    "bright_spot": "Something good was noted in a case",
    "decision_refused": "A decision you recorded in a meeting was not carried out in the case",
    "consent_withdrawn": "A consent was withdrawn: your service no longer has access",
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


@dataclass
class Delivery:
    requested: n.NotificationRequested
    version: int = 1
    invitation: n.CalendarInvitationPrepared | None = None
    attempts: int = 0
    open_attempt: n.DeliveryAttempted | None = None
    retry_at: datetime | None = None
    done: bool = False
    last_error: str | None = None


def fold(history: list[Event]) -> Delivery | None:
    delivery: Delivery | None = None
    for event in history:
        if isinstance(event, n.NotificationRequested):
            delivery = Delivery(requested=event)
        if delivery is None:
            continue
        delivery.version = event.aggregate_version
        match event:
            case n.CalendarInvitationPrepared():
                delivery.invitation = event
            case n.DeliveryAttempted():
                delivery.attempts, delivery.open_attempt = event.attempt, event
            case n.DeliveryAttemptFailed():
                delivery.open_attempt, delivery.retry_at = None, event.retry_at
                delivery.last_error = event.error
            case n.NotificationSent() | n.NotificationFailed():
                delivery.open_attempt, delivery.done = None, True
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
