"""The development identity provider's settings, and how `stafett up` runs it.

| variable | default | meaning |
|---|---|---|
| STAFETT_IDP_URL | http://127.0.0.1:8100 | its issuer; it listens on this URL's host and port |
| STAFETT_IDP_CLIENTS | (required) | the registered clients, a JSON list (`Client`) |
| STAFETT_IDP_PEOPLE_FILE | `$STAFETT_DATA_DIR/people.json` | whom it lists (`people`) |
| STAFETT_DEV_KEY_FILE | `$STAFETT_DATA_DIR/dev-signing-key.pem` | signs its access tokens |

It signs ID tokens with a key of its own, `$STAFETT_DATA_DIR/idp-signing-key.pem` (RS256, made
once).

Its access tokens are for the audience the services trust the development key for (as those of
`stafett token`: STAFETT_TOKEN_AUDIENCE, default `stafett`).
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import msgspec

from stafett_cli.datafolder import write_private
from stafett_cli.idp.people import people_file
from stafett_runtime.auth import (
    DEFAULT_AUDIENCE,
    TokenSettings,
    TrustedIssuer,
    require_secure_url,
)
from stafett_runtime.settings import SettingsError

DEFAULT_URL = "http://127.0.0.1:8100"
CLIENT_SECRETS_FILE = "idp-client-secrets.json"
ID_TOKEN_KEY_FILE = "idp-signing-key.pem"


class Client(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A relying party registered with the provider, such as the web app.

    With a `client_secret` it is a confidential client and authenticates at the token endpoint
    (HTTP Basic or in the form); without, a public one. Either way it must use PKCE (S256).
    """

    client_id: str
    client_secret: str | None = None
    redirect_uris: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.client_id:
            raise ValueError("client_id must not be empty")
        if not self.redirect_uris:
            raise ValueError(f"client {self.client_id} registers no redirect_uris")
        for uri in (*self.redirect_uris, *self.post_logout_redirect_uris):
            parts = urlsplit(uri)
            if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
                raise ValueError(f"{uri!r} is not an absolute http(s) URL without a fragment")


class IdpSettings(msgspec.Struct, frozen=True, kw_only=True):
    url: str
    clients: tuple[Client, ...]
    people_file: Path
    key_file: Path  # the development key: access tokens
    id_token_key_file: Path
    audience: str  # of its access tokens: the services'

    def __post_init__(self) -> None:
        require_secure_url(self.url, "STAFETT_IDP_URL")
        parts = urlsplit(self.url)
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise ValueError(f"STAFETT_IDP_URL must be an origin, like {DEFAULT_URL}")

    @property
    def issuer(self) -> str:
        return self.url.rstrip("/")

    @property
    def listen(self) -> tuple[str, int]:
        parts = urlsplit(self.url)
        host = "127.0.0.1" if parts.hostname == "localhost" else parts.hostname or "127.0.0.1"
        return host, parts.port or (443 if parts.scheme == "https" else 80)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> IdpSettings:
        """SettingsError naming the variable that is wrong."""
        tokens = TokenSettings.from_env(environ)
        listed = environ.get("STAFETT_IDP_CLIENTS") or None
        if listed is None:
            raise SettingsError(
                "STAFETT_IDP_CLIENTS is not set: a JSON list of the clients that may sign people "
                'in, e.g. [{"client_id": "web", "client_secret": "...", "redirect_uris": '
                '["http://127.0.0.1:8106/auth/callback"]}]'
            )
        try:
            clients = msgspec.json.decode(listed, type=tuple[Client, ...])
        except msgspec.DecodeError as error:
            raise SettingsError(f"STAFETT_IDP_CLIENTS: {error}") from None
        if len({client.client_id for client in clients}) < len(clients):
            raise SettingsError("STAFETT_IDP_CLIENTS: a client_id is listed more than once")
        try:
            return cls(
                url=environ.get("STAFETT_IDP_URL") or DEFAULT_URL,
                clients=clients,
                people_file=people_file(environ),
                key_file=tokens.dev_key_file,
                id_token_key_file=Path(environ.get("STAFETT_DATA_DIR") or "var").resolve()
                / ID_TOKEN_KEY_FILE,
                audience=_audience(tokens),
            )
        except ValueError as error:
            raise SettingsError(str(error)) from None


def _audience(tokens: TokenSettings) -> str:
    """The provider's access tokens are for whomever `stafett token`'s are."""
    development = tokens.development_issuer
    return DEFAULT_AUDIENCE if development is None else development.audience


@dataclass(frozen=True)
class DevelopmentProvider:
    """How `stafett up` runs the provider beside the services (all with the same data folder):

    provider = DevelopmentProvider(url, (web_client(data_dir, callback, signed_out),))
    start provider.command with {**env, **provider.environment()}
    start each service with {**env, **provider.trusted_by_services(env)}
    """

    url: str
    clients: tuple[Client, ...]
    command: tuple[str, ...] = (sys.executable, "-m", "stafett_cli.idp")

    def environment(self) -> dict[str, str]:
        clients = msgspec.json.encode(self.clients).decode()
        return {"STAFETT_IDP_URL": self.url, "STAFETT_IDP_CLIENTS": clients}

    def trusted_by_services(self, environ: Mapping[str, str]) -> dict[str, str]:
        """STAFETT_TRUSTED_ISSUERS for the services: whom they trust already (the development
        key, for `stafett token`; or the providers configured), and this provider, whose keys
        they find by discovery, as they would a real provider's."""
        tokens = TokenSettings.from_env(environ)
        provider = TrustedIssuer(issuer=self.url.rstrip("/"), audience=_audience(tokens))
        others = [issuer for issuer in tokens.issuers if issuer.issuer != provider.issuer]
        listed = msgspec.json.encode([*others, provider]).decode()
        return {"STAFETT_TRUSTED_ISSUERS": listed}


def web_client(
    data_dir: Path,
    redirect_uri: str,
    post_logout_redirect_uri: str,
    client_id: str = "stafett-web",
) -> Client:
    """The web app as a confidential client, its secret made once in the data folder (0600)."""
    path = data_dir / CLIENT_SECRETS_FILE
    known: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    if client_id not in known:
        known[client_id] = secrets.token_urlsafe(32)
        write_private(path, json.dumps(known, indent=2) + "\n")
    return Client(
        client_id=client_id,
        client_secret=known[client_id],
        redirect_uris=(redirect_uri,),
        post_logout_redirect_uris=(post_logout_redirect_uri,),
    )
