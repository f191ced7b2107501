"""Who is calling: bearer tokens on every service's HTTP API.

A token is a JWT signed with ES256 by the identity provider, whose public keys a service reads
from a JWKS URL. It names the person (`sub`), their organisational `role`, and the `service` they
act for. For development and tests one local key pair stands in for the identity provider, so
`stafett token` can mint tokens that every local service accepts.

A token says who someone is, never what they may see: that follows from events (consent,
membership). Error messages are safe to return to the caller; they never echo the token.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import tempfile
import time
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import msgspec
from cachetools import TLRUCache
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
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

ALGORITHM = "ES256"
DEFAULT_ISSUER = "stafett-dev"
DEFAULT_AUDIENCE = "stafett"
LEEWAY = timedelta(seconds=30)  # clocks across machines drift a little
VERIFIED_FOR = 60.0  # seconds a verified token is trusted without checking its signature again
VERIFIED_MAX = 10_000  # tokens remembered, the least recently used forgotten first
OPEN_PATHS = [r"^/health(/|$)", r"^/schema(/|$)"]  # probes and the OpenAPI documents
SECURITY_SCHEME = "BearerToken"
_ACTS_FOR_A_SERVICE = {Role.EMPLOYEE, Role.UNIT_LEADER}
_ACTS_FOR_NO_SERVICE = {Role.GUARDIAN, Role.CHILD, Role.AUDITOR}


class TokenError(ValueError):
    """A token, or the identity it claims, is not acceptable; the message says why."""


class KeysUnavailableError(RuntimeError):
    """The identity provider's keys cannot be fetched, so no token can be checked now."""


class TokenSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where signing keys come from, and whose tokens for whom a service accepts."""

    issuer: str = DEFAULT_ISSUER
    audience: str = DEFAULT_AUDIENCE
    jwks_url: str | None = None  # the identity provider's keys, in production
    dev_key_file: Path  # the local signing key, when there is no JWKS URL

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> TokenSettings:
        # An empty variable counts as unset, as in settings.py.
        def read(name: str) -> str | None:
            return environ.get(name) or None

        data_dir = Path(read("STAFETT_DATA_DIR") or "var")
        return cls(
            issuer=read("STAFETT_TOKEN_ISSUER") or DEFAULT_ISSUER,
            audience=read("STAFETT_TOKEN_AUDIENCE") or DEFAULT_AUDIENCE,
            jwks_url=read("STAFETT_JWKS_URL"),
            dev_key_file=Path(
                read("STAFETT_DEV_KEY_FILE") or data_dir / "dev-signing-key.pem"
            ).resolve(),
        )


def identity(person: object, role: object, service: object) -> Actor:
    """The Actor named by these claims, or a TokenError saying which claim is wrong."""
    if not isinstance(person, str) or not person:
        raise TokenError("token names no person (sub)")
    allowed = ", ".join(Role)
    if not isinstance(role, str) or role not in set(Role):
        raise TokenError(f"role {role!r} is not one of {allowed}")
    if service is not None and (not isinstance(service, str) or not service):
        raise TokenError("service must be a non-empty string")
    if service is None and role in _ACTS_FOR_A_SERVICE:
        raise TokenError(f"a token for the role {role} must name the service acted for")
    if service is not None and role in _ACTS_FOR_NO_SERVICE:
        raise TokenError(f"a token for the role {role} must not name a service")
    return Actor(person=person, role=Role(role), service=service)


class DevelopmentKey:
    """The local ES256 key pair that stands in for the identity provider outside production."""

    def __init__(self, private_key: ec.EllipticCurvePrivateKey) -> None:
        self._private_key = private_key
        der = private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        # Named in each token's header, so that the key can also be published in a JWKS.
        self.key_id = base64.urlsafe_b64encode(hashlib.sha256(der).digest()[:12]).decode()

    @classmethod
    def load_or_create(cls, path: Path) -> DevelopmentKey:
        if not path.exists():
            _create_key_file(path)
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError(f"{path} does not hold a P-256 private key")
        return cls(key)

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self._private_key.public_key()

    def mint(
        self,
        actor: Actor,
        ttl: timedelta = timedelta(hours=8),
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
    ) -> str:
        identity(actor.person, actor.role, actor.service)  # mint nothing a service would refuse
        now = datetime.now(UTC)
        claims: dict[str, Any] = {
            "iss": issuer,
            "aud": audience,
            "sub": actor.person,
            "role": str(actor.role),
            "iat": now,
            "exp": now + ttl,
        }
        if actor.service is not None:
            claims["service"] = actor.service
        return jwt.encode(
            claims, self._private_key, algorithm=ALGORITHM, headers={"kid": self.key_id}
        )


def _create_key_file(path: Path) -> None:
    # Services start side by side and may all create the key at once: each writes its own
    # candidate (mode 0600) and links it into place, and only the first link wins.
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    descriptor, candidate = tempfile.mkstemp(dir=path.parent, prefix=".signing-key-")
    try:
        with os.fdopen(descriptor, "wb") as file:
            file.write(pem)
        os.link(candidate, path)
    except FileExistsError:
        pass
    finally:
        os.unlink(candidate)


class TokenVerifier:
    """Checks a bearer token and returns who it names."""

    def __init__(
        self,
        key: ec.EllipticCurvePublicKey | str,
        *,
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
    ) -> None:
        """`key` is the issuer's public key, or the URL of its JWKS document."""
        self._keys = (
            jwt.PyJWKClient(key, cache_keys=True, lifespan=300, timeout=5)
            if isinstance(key, str)
            else key
        )
        self._issuer = issuer
        self._audience = audience
        # token -> (who, trusted until): a client sends one token with many requests, and
        # checking its ES256 signature each time was a good part of a request's CPU.
        self._verified: TLRUCache[str, tuple[Actor, float]] = TLRUCache(
            maxsize=VERIFIED_MAX, ttu=lambda _token, known, _now: known[1], timer=time.time
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> TokenVerifier:
        settings = TokenSettings.from_env(environ)
        key = settings.jwks_url or DevelopmentKey.load_or_create(settings.dev_key_file).public_key
        return cls(key, issuer=settings.issuer, audience=settings.audience)

    async def verify(self, token: str) -> Actor:
        """The Actor the token names; TokenError or KeysUnavailableError if it cannot be trusted.

        A token once verified is trusted again without its signature being checked for up to
        `VERIFIED_FOR` seconds, never past its expiry (with the leeway). That is well inside the
        five minutes the identity provider's keys are cached anyway, so it trusts no token a
        fresh check would refuse for longer than a key rotation already allows.
        """
        known = self._verified.get(token)
        if known is not None:
            return known[0]
        now = time.time()
        claims = await self._claims(token)
        actor = identity(claims["sub"], claims.get("role"), claims.get("service"))
        until = min(now + VERIFIED_FOR, float(claims["exp"]) + LEEWAY.total_seconds())
        self._verified[token] = (actor, until)
        return actor

    async def _claims(self, token: str) -> dict[str, Any]:
        try:
            claims = jwt.decode(
                token,
                await self._signing_key(token),
                algorithms=[ALGORITHM],
                issuer=self._issuer,
                audience=self._audience,
                leeway=LEEWAY,
                options={"require": ["exp", "iss", "aud", "sub", "role"]},
            )
        except jwt.PyJWKClientConnectionError as error:
            raise KeysUnavailableError("the identity provider's keys are unavailable") from error
        except jwt.PyJWTError as error:
            raise TokenError(_reason(error)) from None
        return claims

    async def _signing_key(self, token: str) -> ec.EllipticCurvePublicKey | jwt.PyJWK:
        if isinstance(self._keys, jwt.PyJWKClient):
            # PyJWKClient fetches over the network, synchronously; keep that off the event loop.
            return await asyncio.to_thread(self._keys.get_signing_key_from_jwt, token)
        return self._keys


def _reason(error: jwt.PyJWTError) -> str:
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
            return f"token is not signed with {ALGORITHM}"
        case jwt.InvalidSignatureError() | jwt.PyJWKClientError():
            return "token signed by an unknown key"
        case jwt.DecodeError():
            return "token is malformed"
        case _:
            return "token is invalid"


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
