"""Who is calling: bearer tokens on every service's HTTP API.

A token is a JWT, signed with RS256 or ES256 by an identity provider the services trust: a
municipality's own (Entra ID), a national eID (ID-porten, BankID, MitID), or, outside
production, the development key. Each trusted issuer (`TrustedIssuer`) has

- its keys: its JWKS, found by OpenID Connect discovery from the issuer URL or at a configured
  JWKS URL, cached for five minutes and fetched again when a token names a key not yet seen (key
  rotation); or the local development key (`DevelopmentKey`), with which `stafett token` and the
  development identity provider (`stafett_cli.idp`) sign;
- the audience its tokens must be meant for, and the algorithms it signs with;
- how its claims name the person, role and service (`ClaimMapping`): by default the claims
  `sub`, `role` and `service`; ID-porten names the person in `pid` and signs in only citizens
  (a fixed role); Entra ID gives app roles in `roles` and the unit in an extension attribute.

Configuration (docs/identity.md):

- STAFETT_TRUSTED_ISSUERS: a JSON list of issuers, each `{issuer, audience, jwks_url?,
  development_key?, algorithms?, claims?}`;
- without it, the one issuer of STAFETT_TOKEN_ISSUER (default `stafett-dev`) and
  STAFETT_TOKEN_AUDIENCE (default `stafett`), its keys at STAFETT_JWKS_URL, or else the
  development key;
- STAFETT_DEV_KEY_FILE: the development key (default `$STAFETT_DATA_DIR/dev-signing-key.pem`,
  made if missing).

A token says who someone is, never what they may see: that follows from events (consent,
membership). A token that cannot be trusted is refused with the reason (`TokenError`); the
messages are safe to return to the caller and never echo the token.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol

import httpx
import jwt
from cachetools import TLRUCache
from litestar.connection import ASGIConnection
from litestar.exceptions import (
    NotAuthorizedException,
    PermissionDeniedException,
    ServiceUnavailableException,
)
from litestar.handlers import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, AuthenticationResult
from litestar.middleware.base import DefineMiddleware
from litestar.openapi.spec import Components, SecurityRequirement, SecurityScheme
from litestar.types import ASGIApp, Guard

from stafett_contracts.identity import Actor, Role
from stafett_runtime.threads import call

# Tokens without the web (minting, settings, claims) live in `tokens`; named here too, since
# this is where a service looks for them.
from stafett_runtime.tokens import (
    ALGORITHMS,
    DEFAULT_AUDIENCE,
    DEFAULT_ISSUER,
    DEVELOPMENT_ALGORITHM,
    Algorithm,
    ClaimMapping,
    ClaimRule,
    DevelopmentKey,
    PublicKey,
    TokenError,
    TokenSettings,
    TrustedIssuer,
    development_key_file,
    identity,
    require_secure_url,
)

__all__ = [
    "ALGORITHMS",
    "DEFAULT_AUDIENCE",
    "DEFAULT_ISSUER",
    "DEVELOPMENT_ALGORITHM",
    "Algorithm",
    "ClaimMapping",
    "ClaimRule",
    "DevelopmentKey",
    "KeysUnavailableError",
    "TokenError",
    "TokenSettings",
    "TokenVerifier",
    "TrustedIssuer",
    "bearer_token_auth",
    "bearer_token_openapi",
    "development_key_file",
    "identity",
    "require_role",
    "require_secure_url",
]

LEEWAY = timedelta(seconds=30)  # clocks across machines drift a little
VERIFIED_FOR = 60.0  # seconds a verified token is trusted without checking its signature again
VERIFIED_MAX = 10_000  # tokens remembered, the least recently used forgotten first
KEYS_FOR = 300.0  # seconds an identity provider's JWKS is used before it is fetched again
# A token naming a key not in the JWKS fetches it again (the provider rotated its keys), but not
# within this many seconds of the last fetch: tokens with made-up key ids cannot make a service
# hammer the identity provider.
UNKNOWN_KEY_REFETCH_AFTER = 10.0
FETCH_TIMEOUT = 5.0  # seconds to wait for a discovery document or a JWKS
RETRY_KEYS_AFTER = 2.0  # seconds after a failed fetch before an issuer's keys are fetched again
OPEN_PATHS = [r"^/health(/|$)", r"^/schema(/|$)"]  # probes and the OpenAPI documents
SECURITY_SCHEME = "BearerToken"


class KeysUnavailableError(RuntimeError):
    """The identity provider's keys cannot be fetched, so no token can be checked now."""


KEYS_UNAVAILABLE = "the identity provider's keys are unavailable"


# --- where an issuer's keys come from ----------------------------------------------------------


class _Keys(Protocol):
    def signing_key(self, token: str) -> PublicKey | jwt.PyJWK:
        """The key that signed `token` (blocking: it may fetch over the network)."""
        ...


class _FixedKey:
    def __init__(self, key: PublicKey) -> None:
        self._key = key

    def signing_key(self, token: str) -> PublicKey:
        return self._key


class _Remote:
    """An identity provider's keys over the network: its JWKS, at the configured URL or at the
    one its OpenID Connect discovery document names (found on first use, and again after a
    failure, in case the provider moved it)."""

    def __init__(self, issuer: str, jwks_url: str | None) -> None:
        self._issuer = issuer
        self._discover = jwks_url is None
        self._jwks = None if jwks_url is None else _jwks(jwks_url)
        # One fetch at a time; after one fails, none for a moment: a provider that hangs must
        # not tie up every blocking worker of the service, each waiting out its own timeout.
        self._lock = threading.Lock()
        self._failed_at = float("-inf")

    def signing_key(self, token: str) -> jwt.PyJWK:
        with self._lock:
            if time.monotonic() - self._failed_at < RETRY_KEYS_AFTER:
                raise KeysUnavailableError(KEYS_UNAVAILABLE)
            try:
                if self._jwks is None:
                    self._jwks = _jwks(_discover_jwks_url(self._issuer))
                return self._jwks.get_signing_key_from_jwt(token)
            except (
                KeysUnavailableError,
                jwt.PyJWKClientConnectionError,
                jwt.PyJWKSetError,
                json.JSONDecodeError,
            ) as error:
                self._failed_at = time.monotonic()
                if self._discover:
                    self._jwks = None
                raise KeysUnavailableError(KEYS_UNAVAILABLE) from error


def _jwks(url: str) -> jwt.PyJWKClient:
    return jwt.PyJWKClient(
        url, lifespan=KEYS_FOR, timeout=FETCH_TIMEOUT, cooldown_duration=UNKNOWN_KEY_REFETCH_AFTER
    )


def _discover_jwks_url(issuer: str) -> str:
    """OpenID Connect Discovery 1.0, section 4: the document must name the same issuer."""
    url = f"{issuer.rstrip('/')}/.well-known/openid-configuration"
    try:
        response = httpx.get(url, timeout=FETCH_TIMEOUT)
        response.raise_for_status()
        document = response.json()
    except (httpx.HTTPError, ValueError) as error:
        raise KeysUnavailableError(f"{url} does not answer") from error
    if not isinstance(document, dict) or document.get("issuer") != issuer:
        raise KeysUnavailableError(f"{url} names another issuer")
    jwks_url = document.get("jwks_uri")
    try:
        require_secure_url(jwks_url if isinstance(jwks_url, str) else "", "its jwks_uri")
    except ValueError as error:
        raise KeysUnavailableError(f"{url}: {error}") from None
    return str(jwks_url)


@dataclass(frozen=True)
class _Trusted:
    issuer: TrustedIssuer
    keys: _Keys
    algorithms: tuple[Algorithm, ...]


def _trusted(issuer: TrustedIssuer, dev_key_file: Path) -> _Trusted:
    if issuer.development_key:
        key = DevelopmentKey.load_or_create(dev_key_file).public_key
        return _Trusted(issuer, _FixedKey(key), (DEVELOPMENT_ALGORITHM,))
    return _Trusted(issuer, _Remote(issuer.issuer, issuer.jwks_url), issuer.algorithms)


# --- checking a token --------------------------------------------------------------------------


class TokenVerifier:
    """Checks a bearer token from a trusted issuer and returns who it names."""

    def __init__(
        self,
        key: PublicKey | str,
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
    ) -> None:
        """Trusts one issuer with the default claims: `key` is its public key (an ES256 key, as
        the development key), or the URL of its JWKS document."""
        if isinstance(key, str):
            trusted = TrustedIssuer(issuer=issuer, audience=audience, jwks_url=key)
            self._trust([_Trusted(trusted, _Remote(issuer, key), trusted.algorithms)])
        else:
            trusted = TrustedIssuer(issuer=issuer, audience=audience, development_key=True)
            self._trust([_Trusted(trusted, _FixedKey(key), (DEVELOPMENT_ALGORITHM,))])

    @classmethod
    def trusting(cls, issuers: Sequence[TrustedIssuer], dev_key_file: Path) -> TokenVerifier:
        """Trusts each of `issuers`; those with `development_key` by the key in `dev_key_file`."""
        verifier = cls.__new__(cls)
        verifier._trust([_trusted(issuer, dev_key_file) for issuer in issuers])
        return verifier

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> TokenVerifier:
        settings = TokenSettings.from_env(environ)
        return cls.trusting(settings.issuers, settings.dev_key_file)

    def _trust(self, trusted: Sequence[_Trusted]) -> None:
        self._trusted = {t.issuer.issuer: t for t in trusted}
        # token -> (who, trusted until): a client sends one token with many requests, and
        # checking its signature each time was a good part of a request's CPU.
        self._verified: TLRUCache[str, tuple[Actor, float]] = TLRUCache(
            maxsize=VERIFIED_MAX, ttu=lambda _token, known, _now: known[1], timer=time.time
        )

    async def verify(self, token: str) -> Actor:
        """The Actor the token names; TokenError or KeysUnavailableError if it cannot be trusted.

        A token once verified is trusted again without its signature being checked for up to
        `VERIFIED_FOR` seconds, never past its expiry (with the leeway). That is well inside the
        five minutes an identity provider's keys are cached anyway, so it trusts no token a
        fresh check would refuse for longer than a key rotation already allows.
        """
        known = self._verified.get(token)
        if known is not None:
            return known[0]
        now = time.time()
        trusted = self._issuer_of(token)
        claims = await self._claims(token, trusted)
        actor = trusted.issuer.claims.identity(claims)
        until = min(now + VERIFIED_FOR, float(claims["exp"]) + LEEWAY.total_seconds())
        self._verified[token] = (actor, until)
        return actor

    def _issuer_of(self, token: str) -> _Trusted:
        """The trusted issuer the token names, before anything is fetched for it."""
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TokenError("token is malformed") from None
        issuer = unverified.get("iss")
        if issuer is None:
            raise TokenError("token lacks the 'iss' claim")
        trusted = self._trusted.get(issuer) if isinstance(issuer, str) else None
        if trusted is None:
            raise TokenError("token issued by an unknown issuer")
        if header.get("alg") not in trusted.algorithms:
            raise TokenError(f"token is not signed with {' or '.join(trusted.algorithms)}")
        return trusted

    async def _claims(self, token: str, trusted: _Trusted) -> dict[str, Any]:
        issuer = trusted.issuer
        try:
            key = await _signing_key(trusted.keys, token)
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(trusted.algorithms),
                issuer=issuer.issuer,
                audience=issuer.audience,
                leeway=LEEWAY,
                options={"require": ["exp", "iss", "aud", *issuer.claims.required()]},
            )
        except jwt.PyJWTError as error:
            raise TokenError(_reason(error, issuer)) from None
        return claims


async def _signing_key(keys: _Keys, token: str) -> PublicKey | jwt.PyJWK:
    if isinstance(keys, _FixedKey):
        return keys.signing_key(token)
    # Fetching an identity provider's keys blocks; keep that off the event loop.
    return await call(keys.signing_key, token)


def _reason(error: jwt.PyJWTError, issuer: TrustedIssuer) -> str:
    match error:
        case jwt.ExpiredSignatureError():
            return "token expired"
        case jwt.ImmatureSignatureError():
            return "token not valid yet"
        case jwt.InvalidAudienceError():
            return "token is meant for another audience"
        case jwt.InvalidIssuerError():
            return "token issued by an unknown issuer"
        case jwt.MissingRequiredClaimError(claim=claim):
            return f"token lacks the {claim!r} claim"
        case jwt.InvalidAlgorithmError():
            return "token's algorithm does not match its key"
        case jwt.InvalidSignatureError() | jwt.PyJWKClientError() if issuer.development_key:
            # The usual cause: minted with another data folder's key (`stafett token` says which).
            return "token signed by an unknown key, not this data folder's development key"
        case jwt.InvalidSignatureError() | jwt.PyJWKClientError():
            return "token signed by an unknown key"
        case jwt.DecodeError():
            return "token is malformed"
        case _:
            return "token is invalid"


# --- a service's HTTP API ----------------------------------------------------------------------


class BearerTokenMiddleware(AbstractAuthenticationMiddleware):
    """Sets `request.user` to the Actor named by `Authorization: Bearer <token>`, or answers 401."""

    def __init__(self, app: ASGIApp, verifier: TokenVerifier, exclude: list[str]) -> None:
        super().__init__(app, exclude=exclude)
        self._verifier = verifier

    async def authenticate_request(
        self, connection: ASGIConnection[Any, Any, Any, Any]
    ) -> AuthenticationResult:
        scheme, _, token = connection.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            # RFC 6750 3.1: a request without credentials gets a bare challenge, no error code.
            raise NotAuthorizedException("missing bearer token", headers=_challenge())
        try:
            actor = await self._verifier.verify(token.strip())
        except TokenError as error:
            raise NotAuthorizedException(str(error), headers=_challenge(str(error))) from None
        except KeysUnavailableError as error:
            raise ServiceUnavailableException(str(error)) from None
        return AuthenticationResult(user=actor, auth=token.strip())


def _challenge(reason: str | None = None) -> dict[str, str]:
    if reason is None:
        return {"WWW-Authenticate": "Bearer"}
    # RFC 6750 3: error_description is printable ASCII without '"' and '\'.
    safe = "".join(c if " " <= c <= "~" and c not in '"\\' else "?" for c in reason)
    return {"WWW-Authenticate": f'Bearer error="invalid_token", error_description="{safe}"'}


def bearer_token_auth(verifier: TokenVerifier) -> DefineMiddleware:
    """The middleware for a service's Litestar app; /health and /schema stay open."""
    return DefineMiddleware(BearerTokenMiddleware, verifier=verifier, exclude=OPEN_PATHS)


def bearer_token_openapi() -> tuple[Components, list[SecurityRequirement]]:
    """`components` and `security` for a service's OpenAPIConfig, to match the middleware."""
    scheme = SecurityScheme(type="http", scheme="bearer", bearer_format="JWT")
    return Components(security_schemes={SECURITY_SCHEME: scheme}), [{SECURITY_SCHEME: []}]


def require_role(*roles: Role) -> Guard:
    """A route guard that answers 403 unless the caller has one of `roles`."""
    allowed = ", ".join(roles)

    def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        actor = connection.scope.get("user")
        if not isinstance(actor, Actor):
            raise NotAuthorizedException("missing bearer token", headers=_challenge())
        if actor.role not in roles:
            raise PermissionDeniedException(f"only the roles {allowed} may do this")

    return guard
