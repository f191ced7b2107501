"""What a municipality configures for notifications, read from the environment at start-up.

| variable | default | meaning |
|---|---|---|
| STAFETT_NOTIFY_DIRECTORY | none | a TOML or JSON file of contacts: people's and services' email addresses and webhooks |
| STAFETT_NOTIFY_DEV_EMAIL_DOMAIN | `stafett.localhost` without a directory | who is not in the directory is mailed at `<id>@<domain>` |
| STAFETT_NOTIFY_SMTP_HOST / _SMTP_PORT | 127.0.0.1 / 1025 | the SMTP server |
| STAFETT_NOTIFY_SMTP_USER / _SMTP_PASSWORD / _SMTP_TLS | none / none / false | SMTP login, STARTTLS |
| STAFETT_NOTIFY_FROM | stafett@stafett.localhost | the sender address |
| STAFETT_NOTIFY_LINK_BASE | http://127.0.0.1:8105 | the base of every link in a message |
| STAFETT_NOTIFY_WEBHOOK_SECRET | `dev-webhook-secret` | the HMAC-SHA256 key that signs webhooks |
| STAFETT_NOTIFY_LEAD_DAYS | 3 | a reminder comes this many days before an evaluation or due date |
| STAFETT_NOTIFY_INACTIVITY_DAYS | 14 | no activity for this many days is a follow-up break |
| STAFETT_NOTIFY_ESCALATION_DAYS | 7 | still nothing this many days later: the unit leader is told |
| STAFETT_NOTIFY_MAX_ATTEMPTS | 5 | attempts per notification before NotificationFailed |
| STAFETT_NOTIFY_BACKOFF_SECONDS | 30 | the wait before the second attempt; it doubles each time |
| STAFETT_NOTIFY_ATTEMPT_TIMEOUT_SECONDS | 120 | an attempt with no outcome after this was cut off (a crash): it fails, never repeats |
| STAFETT_NOTIFY_INTERVAL | 10 | seconds between two rounds of timers and deliveries |

Who leads a unit is not configured here: it is the municipality directory's fact
(`STAFETT_DIRECTORY_FILE`, `stafett_runtime.directory`), as a child's guardians are the population
register's. A contact file that still has a `units` table is refused, saying so.
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import msgspec

from stafett_contracts.notify import Channel
from stafett_notify.domain.delivery import DeliveryRules
from stafett_notify.domain.rules import TimerRules
from stafett_runtime.settings import SettingsError


class Contact(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    email: str | None = None
    webhook: str | None = None  # an https URL that takes signed POSTs


class ContactDirectory(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Contact details by person (or service) id.

    Events name people by id only; their addresses stay here, in the notify service.
    """

    contacts: dict[str, Contact] = {}
    dev_email_domain: str | None = None  # set only for development

    @classmethod
    def load(cls, path: Path, dev_email_domain: str | None = None) -> ContactDirectory:
        try:
            raw = path.read_bytes()
            data = tomllib.loads(raw.decode()) if path.suffix == ".toml" else json.loads(raw)
            if isinstance(data, dict) and "units" in data:
                raise ValueError(
                    "a `units` table is no longer read here: unit leaders now come from the "
                    "municipality directory (STAFETT_DIRECTORY_FILE); keep only `contacts`"
                )
            found = msgspec.convert(data, cls)
        except (OSError, ValueError, msgspec.ValidationError) as error:
            raise SettingsError(f"STAFETT_NOTIFY_DIRECTORY={str(path)!r}: {error}") from None
        return msgspec.structs.replace(found, dev_email_domain=dev_email_domain)

    def channels_for(self, recipient: str) -> list[Channel]:
        """Every channel the recipient can be reached on; email when none is known, so that
        the missing address shows as a failed notification rather than as silence."""
        contact = self.contacts.get(recipient, Contact())
        channels = [Channel.EMAIL] if contact.email else []
        channels += [Channel.WEBHOOK] if contact.webhook else []
        return channels or [Channel.EMAIL]

    def address(self, recipient: str, channel: Channel) -> str | None:
        contact = self.contacts.get(recipient, Contact())
        if channel == Channel.WEBHOOK:
            return contact.webhook
        if contact.email is None and self.dev_email_domain and "@" not in recipient:
            return f"{recipient}@{self.dev_email_domain}"
        return contact.email


class Smtp(msgspec.Struct, frozen=True, kw_only=True):
    host: str = "127.0.0.1"
    port: int = 1025
    user: str | None = None
    password: str | None = None
    starttls: bool = False
    sender: str = "stafett@stafett.localhost"


class NotifyConfig(msgspec.Struct, frozen=True, kw_only=True):
    contacts: ContactDirectory
    smtp: Smtp
    link_base: str
    webhook_secret: str
    timers: TimerRules
    delivery: DeliveryRules
    interval: float

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> NotifyConfig:
        def read(name: str) -> str | None:
            return environ.get(f"STAFETT_NOTIFY_{name}") or None

        def number(name: str, default: int) -> int:
            value = read(name)
            if value is None:
                return default
            if not value.isdigit() or int(value) == 0:
                raise SettingsError(
                    f"STAFETT_NOTIFY_{name}={value!r}: expected a positive whole number"
                )
            return int(value)

        directory_file = read("DIRECTORY")
        if directory_file is None:
            contacts = ContactDirectory(
                dev_email_domain=read("DEV_EMAIL_DOMAIN") or "stafett.localhost"
            )
        else:
            contacts = ContactDirectory.load(Path(directory_file), read("DEV_EMAIL_DOMAIN"))
        password = read("SMTP_PASSWORD")
        smtp = Smtp(
            host=read("SMTP_HOST") or "127.0.0.1",
            port=number("SMTP_PORT", 1025),
            user=read("SMTP_USER"),
            password=password,
            starttls=(read("SMTP_TLS") or "false").lower() in ("1", "true", "yes"),
            sender=read("FROM") or "stafett@stafett.localhost",
        )
        return cls(
            contacts=contacts,
            smtp=smtp,
            link_base=(read("LINK_BASE") or "http://127.0.0.1:8105").rstrip("/"),
            webhook_secret=read("WEBHOOK_SECRET") or "dev-webhook-secret",
            timers=TimerRules(
                lead=timedelta(days=number("LEAD_DAYS", 3)),
                inactivity=timedelta(days=number("INACTIVITY_DAYS", 14)),
                escalation=timedelta(days=number("ESCALATION_DAYS", 7)),
            ),
            delivery=DeliveryRules(
                max_attempts=number("MAX_ATTEMPTS", 5),
                backoff=timedelta(seconds=number("BACKOFF_SECONDS", 30)),
                attempt_timeout=timedelta(seconds=number("ATTEMPT_TIMEOUT_SECONDS", 120)),
            ),
            interval=float(number("INTERVAL", 10)),
        )

    def __repr__(self) -> str:
        # Worth logging at start-up; the secrets are not.
        return (
            f"NotifyConfig(smtp={self.smtp.host}:{self.smtp.port}, link_base={self.link_base!r}, "
            f"contacts={len(self.contacts.contacts)}, "
            f"timers={self.timers}, delivery={self.delivery}, interval={self.interval})"
        )
