"""What every service reads from its environment, checked once at start-up.

A service that is misconfigured should refuse to start with a message that says which variable is
wrong and what it may be, rather than fail later with a confusing error deep in a connection.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Mapping
from typing import Any

import msgspec

DEFAULT_NATS_URL = "nats://127.0.0.1:4222"
DEFAULT_HTTP_HOST = "127.0.0.1"
DEFAULT_HTTP_PORT = 8000
DEFAULT_BLOCKING_WORKERS = 32  # threads for blocking calls (`stafett_runtime.threads`)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
LOG_FORMATS = ("json", "console")


class SettingsError(ValueError):
    """An environment variable holds a value the service cannot use."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """A service's connection to NATS, where it serves HTTP, how it logs, and how many threads
    run its blocking calls (`STAFETT_BLOCKING_WORKERS`, see `stafett_runtime.threads`)."""

    service: str
    nats_url: str = DEFAULT_NATS_URL
    nats_user: str | None = None
    nats_password: str | None = None
    nats_creds: str | None = None
    nats_tls_ca: str | None = None
    nats_inbox_prefix: str | None = None
    nats_stream_replicas: int = 1
    http_host: str = DEFAULT_HTTP_HOST
    http_port: int = DEFAULT_HTTP_PORT
    log_level: str = "INFO"
    log_format: str = "json"
    blocking_workers: int = DEFAULT_BLOCKING_WORKERS
    # Tamper evidence (`stafett_runtime.evidence`): the service's event-signing key, made there
    # on first start if missing (none: a key of the process's own), and how often it
    # checkpoints its stream (seconds; 0: never).
    signing_key_file: str | None = None
    checkpoint_interval: float = 60.0

    @classmethod
    def from_env(cls, service: str, environ: Mapping[str, str] = os.environ) -> Settings:
        # An empty variable counts as unset, as it usually does in container manifests.
        def read(name: str) -> str | None:
            return environ.get(name) or None

        return cls(
            service=service,
            nats_url=read("NATS_URL") or DEFAULT_NATS_URL,
            nats_user=read("NATS_USER"),
            nats_password=read("NATS_PASSWORD"),
            nats_creds=read("NATS_CREDS"),
            nats_tls_ca=read("NATS_TLS_CA"),
            nats_inbox_prefix=read("NATS_INBOX_PREFIX"),
            nats_stream_replicas=_replicas(read("NATS_STREAM_REPLICAS")),
            http_host=read("STAFETT_HTTP_HOST") or DEFAULT_HTTP_HOST,
            http_port=_port("STAFETT_HTTP_PORT", read("STAFETT_HTTP_PORT"), DEFAULT_HTTP_PORT),
            log_level=_one_of(
                "STAFETT_LOG_LEVEL", read("STAFETT_LOG_LEVEL"), LOG_LEVELS, str.upper, "INFO"
            ),
            log_format=_one_of(
                "STAFETT_LOG_FORMAT", read("STAFETT_LOG_FORMAT"), LOG_FORMATS, str.lower, "json"
            ),
            blocking_workers=_workers(read("STAFETT_BLOCKING_WORKERS")),
            signing_key_file=_signing_key_file(service, read),
            checkpoint_interval=_checkpoint_interval(read("STAFETT_CHECKPOINT_INTERVAL")),
        )

    def __repr__(self) -> str:
        # Settings are worth logging at start-up; the password is not.
        fields = msgspec.structs.asdict(self)
        if self.nats_password is not None:
            fields["nats_password"] = "***"
        return f"Settings({', '.join(f'{name}={value!r}' for name, value in fields.items())})"

    def eventsourcing_env(self) -> dict[str, str]:
        """The environment for an eventsourcing Application that stores its events in JetStream."""
        env = {"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": self.nats_url}
        optional = {
            "NATS_USER": self.nats_user,
            "NATS_PASSWORD": self.nats_password,
            "NATS_CREDS": self.nats_creds,
            "NATS_TLS_CA": self.nats_tls_ca,
            "NATS_INBOX_PREFIX": self.nats_inbox_prefix,
            "SIGNING_KEY_FILE": self.signing_key_file,
        }
        env.update({name: value for name, value in optional.items() if value is not None})
        env["SIGNER"] = self.service  # its events are signed in its name
        return env

    def nats_options(self, name: str) -> dict[str, Any]:
        """Keyword arguments for `nats.connect` from these settings."""
        options: dict[str, Any] = {
            "servers": [url.strip() for url in self.nats_url.split(",") if url.strip()],
            "name": name,
        }
        if self.nats_user:
            options.update(user=self.nats_user, password=self.nats_password)
        if self.nats_creds:
            options["user_credentials"] = self.nats_creds
        if self.nats_tls_ca:
            options["tls"] = ssl.create_default_context(cafile=self.nats_tls_ca)
        if self.nats_inbox_prefix:
            options["inbox_prefix"] = self.nats_inbox_prefix
        return options


def _replicas(value: str | None) -> int:
    # A stream has 1 to 5 replicas (JetStream's limit); 3 on a cluster.
    if value is None:
        return 1
    if not value.isdigit() or not 1 <= int(value) <= 5:
        raise SettingsError(f"NATS_STREAM_REPLICAS={value!r}: expected a whole number from 1 to 5")
    return int(value)


def _signing_key_file(service: str, read: Callable[[str], str | None]) -> str | None:
    """STAFETT_SIGNING_KEY_FILE, or in a data folder (development) a key file per service."""
    data_dir = read("STAFETT_DATA_DIR")
    if read("STAFETT_SIGNING_KEY_FILE") is None and data_dir is not None:
        return os.path.join(data_dir, "event-keys", f"{service}.pem")
    return read("STAFETT_SIGNING_KEY_FILE")


def _checkpoint_interval(value: str | None) -> float:
    if value is None:
        return 60.0
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 86_400:
        raise SettingsError(
            f"STAFETT_CHECKPOINT_INTERVAL={value!r}: expected seconds from 0 (never) to 86400"
        )
    return seconds


def _workers(value: str | None) -> int:
    if value is None:
        return DEFAULT_BLOCKING_WORKERS
    if not value.isdigit() or not 1 <= int(value) <= 1024:
        raise SettingsError(
            f"STAFETT_BLOCKING_WORKERS={value!r}: expected a whole number from 1 to 1024"
        )
    return int(value)


def _port(variable: str, value: str | None, default: int) -> int:
    if value is None:
        return default
    try:
        port = int(value)
    except ValueError:
        raise SettingsError(
            f"{variable}={value!r} is not a port: expected an integer from 1 to 65535"
        ) from None
    if not 1 <= port <= 65535:
        raise SettingsError(f"{variable}={value!r} is out of range: expected 1 to 65535")
    return port


def _one_of(
    variable: str,
    value: str | None,
    allowed: tuple[str, ...],
    normalise: Callable[[str], str],
    default: str,
) -> str:
    if value is None:
        return default
    if normalise(value) not in allowed:
        raise SettingsError(
            f"{variable}={value!r} is not allowed: expected one of {', '.join(allowed)}"
        )
    return normalise(value)
