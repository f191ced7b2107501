"""The channels a notification travels on: email over SMTP, and signed webhooks.

A channel raises `ChannelError` when its attempt failed for sure (refused, unreachable, an error
status); the courier then retries with backoff. Email carries the meeting's .ics invitation when
there is one; a webhook carries the same outline as JSON, signed as Standard Webhooks says
(https://www.standardwebhooks.com, with its reference library): `webhook-id` (the notification
id, the same on every attempt, so a receiver drops a repeat), `webhook-timestamp` (seconds since
the epoch, when this attempt was sent: a receiver refuses one more than five minutes away from
its own clock, so a captured call cannot be replayed later) and `webhook-signature` (`v1,` and
the base64 HMAC-SHA256 of `<id>.<timestamp>.<body>` under the contact's own secret, from the
contact directory: `stafett_notify.config`).

Each attempt is a client span (`smtp send`, `webhook POST`: the server, never the recipient's
address) and is counted by channel and outcome (`stafett_runtime.metrics`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from email.message import EmailMessage
from math import floor
from typing import Any, Protocol
from urllib.parse import urlsplit

import aiosmtplib
import httpx
import icalendar
import msgspec
from opentelemetry import trace
from standardwebhooks import Webhook

from stafett_contracts.notify import CalendarInvitationPrepared, Channel, NotificationRequested
from stafett_notify.config import Smtp
from stafett_notify.domain.delivery import Message, message_of
from stafett_runtime import metrics

tracer = trace.get_tracer(__name__)


class ChannelError(Exception):
    """The attempt failed; nothing was delivered."""


@contextmanager
def attempt(channel: Channel, name: str, **attributes: Any) -> Iterator[trace.Span]:
    """One delivery attempt: a client span, and counted as sent, or as failed if it raises."""
    with tracer.start_as_current_span(
        name, kind=trace.SpanKind.CLIENT, attributes=attributes
    ) as span:
        try:
            yield span
        except ChannelError:
            metrics.notification_attempted(channel, "failed")
            raise
    metrics.notification_attempted(channel, "sent")


class Outgoing(msgspec.Struct, frozen=True, kw_only=True):
    requested: NotificationRequested
    invitation: CalendarInvitationPrepared | None
    address: str


class Sender(Protocol):
    def send(self, outgoing: Outgoing) -> None: ...


def calendar_of(
    invitation: CalendarInvitationPrepared, requested: NotificationRequested, now: datetime
) -> bytes:
    """An iTIP invitation (RFC 5546): one event whose UID is the meeting's, so a calendar
    replaces it on a later SEQUENCE, or removes it on CANCEL. No agenda, no names: a link."""
    cal = icalendar.Calendar()
    cal.add("prodid", "-//Stafett//notify//EN")
    cal.add("version", "2.0")
    cal.add("method", invitation.method)
    event = icalendar.Event()
    event.add("uid", f"{invitation.meeting_id}@stafett")
    event.add("sequence", invitation.sequence)
    event.add("dtstamp", now)
    event.add("dtstart", invitation.starts_at)
    event.add("dtend", invitation.ends_at)
    event.add("summary", f"Stafett meeting {requested.reference}")
    event.add("description", f"Reference {requested.reference}. Details: {requested.link}")
    # The place may be a family's home: it stays behind the link (rule 8).
    event.add("location", invitation.video_link or f"See {requested.link}")
    if invitation.video_link:
        event.add("url", invitation.video_link)
    event.add("status", "CANCELLED" if invitation.method == "CANCEL" else "CONFIRMED")
    cal.add_component(event)
    ics: bytes = cal.to_ical()
    return ics


class EmailSender:
    def __init__(self, smtp: Smtp, clock: Callable[[], datetime]) -> None:
        self.smtp = smtp
        self._clock = clock

    def email_of(self, outgoing: Outgoing) -> EmailMessage:
        message: Message = message_of(outgoing.requested)
        email = EmailMessage()
        email["From"] = self.smtp.sender
        email["To"] = outgoing.address
        email["Subject"] = message.subject
        # The same notification always has the same Message-ID: a mail system can drop a repeat.
        email["Message-ID"] = f"<{outgoing.requested.aggregate_id}@stafett>"
        email.set_content(message.body)
        if outgoing.invitation is not None:
            ics = calendar_of(outgoing.invitation, outgoing.requested, self._clock())
            email.add_attachment(
                ics,
                maintype="text",
                subtype="calendar",
                filename="invitation.ics",
                params={"method": outgoing.invitation.method},
            )
        return email

    def send(self, outgoing: Outgoing) -> None:
        email = self.email_of(outgoing)
        with attempt(
            Channel.EMAIL,
            "smtp send",
            **{"server.address": self.smtp.host, "server.port": self.smtp.port},
            notification_id=str(outgoing.requested.aggregate_id),
        ):
            self._send(email)

    def _send(self, email: EmailMessage) -> None:
        try:
            asyncio.run(
                aiosmtplib.send(
                    email,
                    hostname=self.smtp.host,
                    port=self.smtp.port,
                    username=self.smtp.user,
                    password=self.smtp.password,
                    start_tls=self.smtp.starttls,
                    timeout=30,
                )
            )
        except (aiosmtplib.SMTPException, OSError) as error:
            raise ChannelError(f"smtp: {type(error).__name__}: {error}") from error


class WebhookBody(msgspec.Struct, frozen=True, kw_only=True):
    notification_id: str
    case_id: str | None
    reason: str
    reference: str
    link: str
    subject: str


def signed_headers(secret: str, webhook_id: str, sent_at: datetime, body: bytes) -> dict[str, str]:
    """The headers of a webhook signed as Standard Webhooks says, with the reference library."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(floor(sent_at.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, sent_at, body),
    }


class WebhookSender:
    """Posts signed webhooks; `secrets` holds each webhook URL's secret (the contact's)."""

    def __init__(
        self,
        secrets: Mapping[str, str],
        client: httpx.Client | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._secrets = dict(secrets)
        self._client = client or httpx.Client(timeout=15)
        self._clock = clock  # the wall clock: receivers compare the timestamp with theirs

    def send(self, outgoing: Outgoing) -> None:
        requested = outgoing.requested
        with attempt(
            Channel.WEBHOOK,
            "webhook POST",
            **{
                "server.address": urlsplit(outgoing.address).hostname or "",
                "http.request.method": "POST",
            },
            notification_id=str(requested.aggregate_id),
        ) as span:
            status = self._post(outgoing)
            span.set_attribute("http.response.status_code", status)

    def _post(self, outgoing: Outgoing) -> int:
        requested = outgoing.requested
        secret = self._secrets.get(outgoing.address)
        if secret is None:
            raise ChannelError("webhook: no secret for this address in the contact directory")
        body = msgspec.json.encode(
            WebhookBody(
                notification_id=str(requested.aggregate_id),
                case_id=str(requested.case_id) if requested.case_id else None,
                reason=requested.reason,
                reference=requested.reference,
                link=requested.link,
                subject=message_of(requested).subject,
            )
        )
        headers = {
            "Content-Type": "application/json",
            **signed_headers(secret, str(requested.aggregate_id), self._clock(), body),
        }
        try:
            answer = self._client.post(outgoing.address, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise ChannelError(f"webhook: {type(error).__name__}: {error}") from error
        if answer.status_code >= 300:
            raise ChannelError(f"webhook: answered {answer.status_code}")
        return answer.status_code

    def close(self) -> None:
        self._client.close()


def senders(email: Sender, webhook: Sender) -> dict[Channel, Sender]:
    return {Channel.EMAIL: email, Channel.WEBHOOK: webhook}
