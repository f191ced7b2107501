"""Webhooks are signed as Standard Webhooks says: a receiver verifies each with the reference
library and its own secret, and refuses a replay once the timestamp is out of its window."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import uuid4

import httpx
import msgspec
import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from stafett_contracts.export import example_of
from stafett_contracts.notify import Channel, NotificationRequested
from stafett_notify.channels import ChannelError, Outgoing, WebhookSender
from stafett_notify.config import new_secret

HOOK = "https://ppt.kommune.example/stafett"


def requested() -> NotificationRequested:
    example = example_of(NotificationRequested)
    assert isinstance(example, NotificationRequested)
    return msgspec.structs.replace(
        example,
        aggregate_id=uuid4(),
        channel=Channel.WEBHOOK,
        recipient="ppt",
        reason="consent_withdrawn",
    )


def sent_with(secret: str, sent_at: datetime | None = None) -> tuple[httpx.Request, str]:
    """One webhook sent to HOOK, as the integrator's endpoint received it, and its id."""
    received: list[httpx.Request] = []

    def endpoint(request: httpx.Request) -> httpx.Response:
        received.append(request)
        return httpx.Response(204)

    client = httpx.Client(transport=httpx.MockTransport(endpoint))
    clock = (lambda: sent_at) if sent_at else (lambda: datetime.now(UTC))
    sender = WebhookSender({HOOK: secret}, client, clock=clock)
    notification = requested()
    sender.send(Outgoing(requested=notification, invitation=None, address=HOOK))
    [request] = received
    return request, str(notification.aggregate_id)


def test_a_webhook_verifies_with_the_reference_library_and_the_subscribers_secret() -> None:
    secret = new_secret()

    request, notification_id = sent_with(secret)

    body = Webhook(secret).verify(request.content, dict(request.headers))
    assert request.headers["webhook-id"] == notification_id == body["notification_id"]
    assert body["reason"] == "consent_withdrawn"
    assert abs(int(request.headers["webhook-timestamp"]) - datetime.now(UTC).timestamp()) < 60


def test_a_webhook_does_not_verify_with_another_subscribers_secret() -> None:
    request, _ = sent_with(new_secret())

    with pytest.raises(WebhookVerificationError, match="signature"):
        Webhook(new_secret()).verify(request.content, dict(request.headers))


def test_a_captured_webhook_replayed_after_the_window_is_refused() -> None:
    # Given a webhook captured as it was sent ten minutes ago
    secret = new_secret()
    request, _ = sent_with(secret, sent_at=datetime.now(UTC) - timedelta(minutes=10))

    # When it is replayed now, then its receiver refuses it: outside the five-minute window
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(secret).verify(request.content, dict(request.headers))


def test_a_changed_body_does_not_verify() -> None:
    secret = new_secret()
    request, _ = sent_with(secret)
    changed = request.content.replace(b"consent_withdrawn", b"concern_raised")

    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(changed, dict(request.headers))


def test_a_webhook_to_an_address_without_a_secret_is_not_sent() -> None:
    sender = WebhookSender(
        {}, httpx.Client(transport=httpx.MockTransport(lambda _: httpx.Response(204)))
    )

    with pytest.raises(ChannelError, match="no secret"):
        sender.send(Outgoing(requested=requested(), invitation=None, address=HOOK))
