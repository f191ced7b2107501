"""What a municipality configures for notifications, read from the environment at start-up.

| variable | default | meaning |
|---|---|---|
| STAFETT_NOTIFY_DIRECTORY | none | a TOML or JSON file of contacts: people's and services' email addresses, webhooks and their secrets |
| STAFETT_NOTIFY_DEV_EMAIL_DOMAIN | `stafett.localhost` without a directory | who is not in the directory is mailed at `<id>@<domain>` |
| STAFETT_NOTIFY_SMTP_HOST / _SMTP_PORT | 127.0.0.1 / 1025 | the SMTP server |
| STAFETT_NOTIFY_SMTP_USER / _SMTP_PASSWORD / _SMTP_TLS | none / none / false | SMTP login, STARTTLS |
| STAFETT_NOTIFY_FROM | stafett@stafett.localhost | the sender address |
| STAFETT_NOTIFY_LINK_BASE | http://127.0.0.1:8106 | the web app, where every link in a message lands (`stafett up` sets it from its ports; `deploy/` requires it) |
| STAFETT_NOTIFY_DEV_WEBHOOK_SECRETS | off | development only: `generate` gives a webhook contact without a secret a random one, instead of refusing to start |
| STAFETT_NOTIFY_MAX_ATTEMPTS | 5 | attempts per notification before NotificationFailed |
| STAFETT_NOTIFY_BACKOFF_SECONDS | 30 | the wait before the second attempt; it doubles each time |
| STAFETT_NOTIFY_ATTEMPT_TIMEOUT_SECONDS | 120 | an attempt with no outcome after this was cut off (a crash): it fails, never repeats |
| STAFETT_NOTIFY_INTERVAL | 10 | seconds between two rounds of timers and deliveries |

Every webhook contact has its own secret (`webhook_secret = "whsec_..."`: 24 to 64 random bytes in
base64, as Standard Webhooks says), with which its webhooks are signed (`stafett_notify.channels`).
There is no default secret: a webhook contact without one is refused at start-up, unless
`STAFETT_NOTIFY_DEV_WEBHOOK_SECRETS=generate` (development) gives it a random one, which its
receiver cannot know and so cannot verify.

Who leads a unit is not configured here: it is the municipality directory's fact
(`STAFETT_DIRECTORY_FILE`, `stafett_runtime.directory`), as a child's guardians are the population
register's. A contact file that still has a `units` table is refused, saying so. So are the
municipality's deadlines (the directory's `[deadlines]`, read again when the file changes): the
`STAFETT_NOTIFY_LEAD_DAYS`, `_INACTIVITY_DAYS` and `_ESCALATION_DAYS` of before are refused,
naming the setting of the directory that replaced each.
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path

import msgspec

from stafett_contracts.notify import Channel
from stafett_notify.domain.delivery import DeliveryRules
from stafett_runtime.settings import SettingsError

SECRET_PREFIX = "whsec_"  # how Standard Webhooks writes a secret
SECRET_BYTES = (24, 64)  # the shortest and longest secret Standard Webhooks allows
GENERATE = "generate"
# Settings of before that the municipality directory's [deadlines] now holds.
MOVED_TO_THE_DIRECTORY = {
    "LEAD_DAYS": "reminder_lead_days",
    "INACTIVITY_DAYS": "inactivity_days",
    "ESCALATION_DAYS": "escalation_days",
}


class Contact(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    email: str | None = None
    webhook: str | None = None  # an https URL that takes signed POSTs
    webhook_secret: str | None = None  # whsec_<base64>: signs this contact's webhooks

    def __repr__(self) -> str:
        return f"Contact(email={self.email!r}, webhook={self.webhook!r})"  # never the secret


def secret_problem(secret: str) -> str | None:
    """Why `secret` cannot sign webhooks, or None if it can."""
    if not secret.startswith(SECRET_PREFIX):
        return f"a webhook secret begins with {SECRET_PREFIX}"
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except (binascii.Error, ValueError):
        return f"a webhook secret is {SECRET_PREFIX} and then base64"
    shortest, longest = SECRET_BYTES
    if not shortest <= len(key) <= longest:
        return f"a webhook secret holds {shortest} to {longest} bytes, not {len(key)}"
    return None


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


class ContactDirectory(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Contact details by person (or service) id.

    Events name people by id only; their addresses stay here, in the notify service.
    """

    contacts: dict[str, Contact] = {}
    dev_email_domain: str | None = None  # set only for development

    @classmethod
    def load(
        cls, path: Path, dev_email_domain: str | None = None, generate_secrets: bool = False
    ) -> ContactDirectory:
        """The contacts in the file; SettingsError naming the file and what is wrong, such as a
        webhook without a valid secret (one is generated instead with `generate_secrets`)."""
        try:
            raw = path.read_bytes()
            data = tomllib.loads(raw.decode()) if path.suffix == ".toml" else json.loads(raw)
            if isinstance(data, dict) and "units" in data:
                raise ValueError(
                    "a `units` table is no longer read here: unit leaders now come from the "
                    "municipality directory (STAFETT_DIRECTORY_FILE); keep only `contacts`"
                )
            found = msgspec.convert(data, cls)
            contacts = {
                name: _with_secret(name, contact, generate_secrets)
                for name, contact in found.contacts.items()
            }
        except (OSError, ValueError, msgspec.ValidationError) as error:
            raise SettingsError(f"STAFETT_NOTIFY_DIRECTORY={str(path)!r}: {error}") from None
        return cls(contacts=contacts, dev_email_domain=dev_email_domain)

    def webhook_secrets(self) -> dict[str, str]:
        """Each webhook's secret, by its URL."""
        return {
            contact.webhook: contact.webhook_secret
            for contact in self.contacts.values()
            if contact.webhook and contact.webhook_secret
        }

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


def _with_secret(name: str, contact: Contact, generate: bool) -> Contact:
    if contact.webhook is None:
        return contact
    if contact.webhook_secret is None:
        if generate:  # development: signed, though no receiver can verify it
            return msgspec.structs.replace(contact, webhook_secret=new_secret())
        raise ValueError(
            f"the webhook of {name!r} has no webhook_secret: give it one ({SECRET_PREFIX} and 24 "
            f"to 64 random bytes in base64), or in development set "
            f"STAFETT_NOTIFY_DEV_WEBHOOK_SECRETS={GENERATE}"
        )
    problem = secret_problem(contact.webhook_secret)
    if problem is not None:
        raise ValueError(f"the webhook_secret of {name!r}: {problem}")
    return contact


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

        for old, new in MOVED_TO_THE_DIRECTORY.items():
            if read(old) is not None:
                raise SettingsError(
                    f"STAFETT_NOTIFY_{old} is no longer read: the municipality's deadlines are in "
                    f"the directory file (STAFETT_DIRECTORY_FILE), as `{new}` in its [deadlines]"
                )
        if read("WEBHOOK_SECRET") is not None:
            raise SettingsError(
                "STAFETT_NOTIFY_WEBHOOK_SECRET is no longer read: each webhook contact has its own "
                "webhook_secret in the contact directory (STAFETT_NOTIFY_DIRECTORY)"
            )
        directory_file = read("DIRECTORY")
        if directory_file is None:
            contacts = ContactDirectory(
                dev_email_domain=read("DEV_EMAIL_DOMAIN") or "stafett.localhost"
            )
        else:
            generate = read("DEV_WEBHOOK_SECRETS")
            if generate not in (None, GENERATE):
                raise SettingsError(
                    f"STAFETT_NOTIFY_DEV_WEBHOOK_SECRETS={generate!r}: expected {GENERATE} or "
                    "nothing"
                )
            contacts = ContactDirectory.load(
                Path(directory_file), read("DEV_EMAIL_DOMAIN"), generate_secrets=bool(generate)
            )
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
            link_base=(read("LINK_BASE") or "http://127.0.0.1:8106").rstrip("/"),
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
            f"delivery={self.delivery}, interval={self.interval})"
        )
