"""The channels a notification travels on: email over SMTP, and signed webhooks.

A channel raises `ChannelError` when its attempt failed for sure (refused, unreachable, an error
status); the courier then retries with backoff. Email carries the meeting's .ics invitation when
there is one; a webhook carries the same outline as JSON, signed with HMAC-SHA256 over the body
(header `X-Stafett-Signature: sha256=<hex>`), with the notification id as an idempotency key
(`X-Stafett-Notification-Id`), so an integrator can drop a repeat.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable
from datetime import datetime
from email.message import EmailMessage
from typing import Protocol

import aiosmtplib
import httpx
import icalendar
import msgspec

from stafett_contracts.notify import CalendarInvitationPrepared, Channel, NotificationRequested
from stafett_notify.config import Smtp
from stafett_notify.domain.delivery import Message, message_of


class ChannelError(Exception):
    """The attempt failed; nothing was delivered."""


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


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


class WebhookSender:
    def __init__(self, secret: str, client: httpx.Client | None = None) -> None:
        self._secret = secret
        self._client = client or httpx.Client(timeout=15)

    def send(self, outgoing: Outgoing) -> None:
        requested = outgoing.requested
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
            "X-Stafett-Signature": signature(self._secret, body),
            "X-Stafett-Notification-Id": str(requested.aggregate_id),
        }
        try:
            answer = self._client.post(outgoing.address, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise ChannelError(f"webhook: {type(error).__name__}: {error}") from error
        if answer.status_code >= 300:
            raise ChannelError(f"webhook: answered {answer.status_code}")

    def close(self) -> None:
        self._client.close()


def senders(email: Sender, webhook: Sender) -> dict[Channel, Sender]:
    return {Channel.EMAIL: email, Channel.WEBHOOK: webhook}
