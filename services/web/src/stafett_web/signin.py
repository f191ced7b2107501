"""Signing in with OpenID Connect: the authorization code flow with PKCE, against any provider.

Everything about the provider comes from its discovery document under the issuer URL
(`STAFETT_OIDC_ISSUER`): where to send the person, where to fetch tokens and keys, where to log
out. So the same code signs in against the development provider of `stafett up`, ID-porten or
Entra ID. Authlib does the protocol: the state, the PKCE verifier and challenge (S256), the
nonce, the code exchange, and the ID token's signature (RS256 or ES256, from the provider's
JWKS) and claims (issuer, audience, expiry, nonce).

Who the signed-in person is, for the pages, is what the services will take them for: their
access token checked by the runtime's verifier (`stafett_runtime.auth`), the same check every
service makes. The web app never mints a token and never decides what someone may see.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import msgspec
from authlib.deprecate import AuthlibDeprecationWarning

from stafett_runtime.auth import KeysUnavailableError, TokenError, TokenVerifier
from stafett_web.settings import WebSettings

with warnings.catch_warnings():
    # Authlib warns that plain httpx will give way to its successor; it is what is installed.
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.base_client import BaseApp, FrameworkIntegration, OAuthError
    from authlib.integrations.base_client.async_app import AsyncOAuth2Mixin
    from authlib.integrations.base_client.async_openid import AsyncOpenIDMixin
    from authlib.integrations.httpx_client import AsyncOAuth2Client

CALLBACK = "/auth/callback"
SIGNED_IN = "signed_in"  # the session key of who is signed in
EXPIRY_MARGIN = 30  # seconds: a token this close to its end is treated as ended


class SignInFailed(Exception):  # noqa: N818 (an outcome, named as the page tells it)
    """The sign-in could not be completed; the message is safe to show."""


class SignedIn(msgspec.Struct, frozen=True, kw_only=True):
    """Who is signed in, as the session keeps it."""

    person: str
    role: str
    service: str | None = None
    name: str | None = None  # as the provider gives it, to greet them
    access_token: str
    id_token: str | None = None
    expires_at: float  # when the access token ends (seconds since the epoch)

    def expired(self, now: float | None = None) -> bool:
        return (now or time.time()) >= self.expires_at - EXPIRY_MARGIN


class _Provider(AsyncOAuth2Mixin, AsyncOpenIDMixin, BaseApp):  # type: ignore[misc]
    client_cls = AsyncOAuth2Client


class OpenIdSignIn:
    """The web app as an OpenID Connect client of one provider."""

    def __init__(
        self,
        settings: WebSettings,
        verifier: TokenVerifier,
        client_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        self._settings = settings
        self._verifier = verifier
        self._framework = FrameworkIntegration("stafett")
        self._provider = _Provider(
            self._framework,
            name="stafett",
            client_id=settings.client_id,
            client_secret=settings.client_secret,
            server_metadata_url=f"{settings.issuer}/.well-known/openid-configuration",
            client_kwargs={
                "scope": settings.scopes,
                "code_challenge_method": "S256",
                "token_endpoint_auth_method": (
                    "client_secret_basic" if settings.client_secret else "none"
                ),
                "timeout": 10.0,
                **(client_kwargs or {}),
            },
        )

    @property
    def callback_url(self) -> str:
        return f"{self._settings.public_url}{CALLBACK}"

    @property
    def provider_origin(self) -> str:
        parts = urlsplit(self._settings.issuer)
        return f"{parts.scheme}://{parts.netloc}"

    async def begin(self, session: dict[str, Any], next_path: str, language: str) -> str:
        """Where to send the person to sign in; what the callback needs is kept in `session`."""
        try:
            started = await self._provider.create_authorization_url(
                redirect_uri=self.callback_url, ui_locales=language
            )
        except Exception as error:  # the provider's discovery document is out of reach
            raise SignInFailed("the identity provider does not answer") from error
        self._framework.set_state_data(
            session,
            started["state"],
            {
                "redirect_uri": self.callback_url,
                "code_verifier": started["code_verifier"],
                "nonce": started["nonce"],
                "next": next_path,
            },
        )
        url: str = started["url"]
        return url

    async def complete(
        self, session: dict[str, Any], query: Mapping[str, str]
    ) -> tuple[SignedIn, str]:
        """Who signed in and the page they asked for, from the provider's answer at the callback."""
        if query.get("error"):
            raise SignInFailed(query.get("error_description") or query["error"])
        state = query.get("state") or ""
        started = self._framework.get_state_data(session, state)
        self._framework.clear_state_data(session, state)
        if not started or not query.get("code"):
            raise SignInFailed("the sign-in was not started here, or it has expired")
        try:
            token = await self._provider.fetch_access_token(
                redirect_uri=started["redirect_uri"],
                code=query["code"],
                code_verifier=started["code_verifier"],
            )
            claims = await self._provider.parse_id_token(token, nonce=started["nonce"])
        except OAuthError as error:
            raise SignInFailed(error.description or error.error or "refused") from None
        except Exception as error:
            raise SignInFailed("the identity provider's answer could not be checked") from error
        if claims is None:
            raise SignInFailed("the identity provider gave no ID token")
        try:
            actor = await self._verifier.verify(token["access_token"])
        except TokenError as error:
            raise SignInFailed(f"the services do not accept the access token: {error}") from None
        except KeysUnavailableError as error:
            raise SignInFailed(str(error)) from None
        lasts = float(token.get("expires_in") or 3600)
        signed_in = SignedIn(
            person=actor.person,
            role=str(actor.role),
            service=actor.service,
            name=claims.get("name") or claims.get("given_name"),
            access_token=token["access_token"],
            id_token=token.get("id_token"),
            expires_at=float(token.get("expires_at") or time.time() + lasts),
        )
        return signed_in, str(started.get("next") or "/")

    async def logout_url(self, signed_in: SignedIn | None) -> str | None:
        """Where to end the session at the provider too; None if it offers no such place."""
        try:
            metadata = await self._provider.load_server_metadata()
        except Exception:
            return None  # the local session ends anyway
        if not metadata.get("end_session_endpoint"):
            return None
        logout = await self._provider.create_logout_url(
            post_logout_redirect_uri=f"{self._settings.public_url}/",
            id_token_hint=signed_in.id_token if signed_in else None,
            client_id=self._settings.client_id,
        )
        url: str = logout["url"]
        return url
