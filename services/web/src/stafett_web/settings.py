"""What the web app reads from its environment, checked once at start-up.

| variable | default | meaning |
|---|---|---|
| STAFETT_WEB_URL | http://127.0.0.1:<port> | the public URL people open; the sign-in callback and the logout return are under it, and the session cookie is `Secure` when it is https |
| STAFETT_OIDC_ISSUER | (required) | the OpenID Connect provider's issuer URL; everything else about it comes from its discovery document (`/.well-known/openid-configuration`) |
| STAFETT_OIDC_CLIENT_ID | stafett-web | the web app's client id at the provider |
| STAFETT_OIDC_CLIENT_SECRET | (none: a public client) | its secret, when the provider gave it one |
| STAFETT_OIDC_SCOPES | openid profile | the scopes asked for at sign-in |
| STAFETT_CONSENT_URL, STAFETT_CASE_URL, STAFETT_MEETING_URL, STAFETT_PROJECTION_URL | http://127.0.0.1:8101 ... 8105 | where the services answer |
| STAFETT_WEB_SESSION_STORE | `$STAFETT_DATA_DIR/web/sessions` | where sessions are kept: a folder, or `memory` (lost when the app stops) |
| STAFETT_WEB_TIMEZONE | Europe/Oslo | the time zone dates are shown and typed in |
| STAFETT_WEB_SECRET | kept in `$STAFETT_DATA_DIR/web/secret` (made once) | the key that signs the forms' CSRF tokens; the same for every replica, so set it in production |

The app also reads what every service reads: STAFETT_HTTP_HOST and STAFETT_HTTP_PORT (where it
listens), STAFETT_LOG_LEVEL and STAFETT_LOG_FORMAT (`stafett_runtime.settings`); the token
settings (`stafett_runtime.auth`), to know who the services will take a signed-in person for;
and the municipality directory (`stafett_runtime.directory`), for the names of units.
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec

from stafett_runtime.settings import Settings, SettingsError

DEFAULT_SERVICE_URLS = {
    "consent": "http://127.0.0.1:8101",
    "case": "http://127.0.0.1:8102",
    "meeting": "http://127.0.0.1:8103",
    "projection": "http://127.0.0.1:8105",
}
MEMORY = "memory"


class WebSettings(msgspec.Struct, frozen=True, kw_only=True):
    server: Settings  # where it listens and how it logs, as every service
    public_url: str
    issuer: str
    client_id: str = "stafett-web"
    client_secret: str | None = None
    scopes: str = "openid profile"
    service_urls: dict[str, str] = msgspec.field(default_factory=lambda: dict(DEFAULT_SERVICE_URLS))
    session_store: str = MEMORY  # a folder, or "memory"
    timezone: str = "Europe/Oslo"
    secret: str = msgspec.field(default_factory=lambda: secrets.token_hex(32))

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> WebSettings:
        def read(name: str) -> str | None:
            return environ.get(name) or None  # an empty variable counts as unset

        server = Settings.from_env("web", environ)
        public_url = _url("STAFETT_WEB_URL", read("STAFETT_WEB_URL")) or (
            f"http://{server.http_host}:{server.http_port}"
        )
        issuer = _url("STAFETT_OIDC_ISSUER", read("STAFETT_OIDC_ISSUER"))
        if issuer is None:
            raise SettingsError(
                "STAFETT_OIDC_ISSUER is not set: name the OpenID Connect provider's issuer URL"
            )
        data_dir = Path(read("STAFETT_DATA_DIR") or "var")
        timezone = read("STAFETT_WEB_TIMEZONE") or "Europe/Oslo"
        try:
            ZoneInfo(timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise SettingsError(
                f"STAFETT_WEB_TIMEZONE={timezone!r} is not a time zone, e.g. Europe/Oslo"
            ) from None
        return cls(
            server=server,
            public_url=public_url,
            issuer=issuer,
            client_id=read("STAFETT_OIDC_CLIENT_ID") or "stafett-web",
            client_secret=read("STAFETT_OIDC_CLIENT_SECRET"),
            scopes=read("STAFETT_OIDC_SCOPES") or "openid profile",
            service_urls={
                service: _url(variable, read(variable)) or default
                for service, default in DEFAULT_SERVICE_URLS.items()
                for variable in [f"STAFETT_{service.upper()}_URL"]
            },
            session_store=read("STAFETT_WEB_SESSION_STORE")
            or str((data_dir / "web" / "sessions").resolve()),
            timezone=timezone,
            secret=read("STAFETT_WEB_SECRET") or _kept_secret(data_dir / "web" / "secret"),
        )

    @property
    def secure_cookies(self) -> bool:
        return urlsplit(self.public_url).scheme == "https"

    def __repr__(self) -> str:
        # Worth logging at start-up; the client secret is not.
        secret = None if self.client_secret is None else "***"
        return (
            f"WebSettings(public_url={self.public_url!r}, issuer={self.issuer!r}, "
            f"client_id={self.client_id!r}, client_secret={secret}, "
            f"service_urls={self.service_urls!r}, session_store={self.session_store!r})"
        )


def _kept_secret(path: Path) -> str:
    """The secret in `path`, made the first time: a restart keeps every open form valid."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
            file.write(secrets.token_hex(32))
    except FileExistsError:
        pass  # made before, or by a replica starting beside this one
    return path.read_text().strip()


def _url(variable: str, value: str | None) -> str | None:
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{variable}={value!r} is not an http(s) URL")
    return value.rstrip("/")
