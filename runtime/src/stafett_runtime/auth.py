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

import base64
import hashlib
import ipaddress
import json
import os
import tempfile
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import httpx
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

from stafett_contracts.identity import FAMILY, STAFF, Actor, Role
from stafett_runtime.settings import SettingsError
from stafett_runtime.threads import call

Algorithm = Literal["RS256", "ES256"]
ALGORITHMS: tuple[Algorithm, ...] = ("RS256", "ES256")
DEVELOPMENT_ALGORITHM: Algorithm = "ES256"  # the development key is a P-256 key
DEFAULT_ISSUER = "stafett-dev"
DEFAULT_AUDIENCE = "stafett"
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
_ACTS_FOR_A_SERVICE = STAFF
_ACTS_FOR_NO_SERVICE = FAMILY | {Role.AUDITOR}

PublicKey = ec.EllipticCurvePublicKey


class TokenError(ValueError):
    """A token, or the identity it claims, is not acceptable; the message says why."""


class KeysUnavailableError(RuntimeError):
    """The identity provider's keys cannot be fetched, so no token can be checked now."""


KEYS_UNAVAILABLE = "the identity provider's keys are unavailable"


# --- configuration: whose tokens a service trusts, and how their claims name someone ----------


class ClaimRule(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Where one part of the identity comes from: a claim, or a fixed value.

    `values` translates the provider's values into Stafett's (Entra ID's app role
    `Stafett.UnitLeader` to `unit_leader`). A claim holding a list (Entra ID's `roles`) gives the
    one value in it that `values` knows (without `values`: the one value in it).
    """

    claim: str | None = None
    value: str | None = None
    values: dict[str, str] = msgspec.field(default_factory=dict)

    def __post_init__(self) -> None:
        if (self.claim is None) == (self.value is None):
            raise ValueError("name either a claim or a fixed value")
        if self.values and self.claim is None:
            raise ValueError("values translate a claim, not a fixed value")

    def read(self, claims: Mapping[str, Any]) -> object:
        """The value for the identity (None if the claim is absent); TokenError if ambiguous."""
        if self.claim is None:
            return self.value
        given = claims.get(self.claim)
        if not isinstance(given, list):
            return self.values.get(given, given) if isinstance(given, str) else given
        known = {
            self.values.get(item, item)
            for item in given
            if isinstance(item, str) and (not self.values or item in self.values)
        }
        if len(known) > 1:
            named = ", ".join(sorted(known))
            raise TokenError(f"the {self.claim!r} claim names more than one: {named}")
        return known.pop() if known else None


Rule = str | ClaimRule  # a claim's name is short for ClaimRule(claim=name)


def _rule(rule: Rule) -> ClaimRule:
    return ClaimRule(claim=rule) if isinstance(rule, str) else rule


class ClaimMapping(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which claims of an issuer's tokens name the person, their role and their service."""

    person: str = "sub"
    role: Rule = "role"
    service: Rule | None = "service"  # None: this issuer's people act for no service

    def required(self) -> list[str]:
        """The claims a token must carry."""
        role = _rule(self.role).claim
        return [self.person] if role is None else [self.person, role]

    def identity(self, claims: Mapping[str, Any]) -> Actor:
        """The Actor the claims name; TokenError saying which claim is wrong."""
        person = claims.get(self.person)
        if not isinstance(person, str) or not person:
            raise TokenError(f"token names no person ({self.person})")
        service = None if self.service is None else _rule(self.service).read(claims)
        return identity(person, _rule(self.role).read(claims), service)


class TrustedIssuer(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """An identity provider whose tokens a service accepts.

    Its keys: the development key (`development_key`), its JWKS at `jwks_url`, or else the
    JWKS its discovery document (`<issuer>/.well-known/openid-configuration`) names.
    """

    issuer: str
    audience: str = DEFAULT_AUDIENCE
    jwks_url: str | None = None
    development_key: bool = False
    algorithms: tuple[Algorithm, ...] = ALGORITHMS
    claims: ClaimMapping = msgspec.field(default_factory=ClaimMapping)

    def __post_init__(self) -> None:
        if not self.issuer or not self.audience:
            raise ValueError("issuer and audience must not be empty")
        if not self.algorithms:
            raise ValueError("algorithms must name RS256, ES256 or both")
        if self.development_key and self.jwks_url is not None:
            raise ValueError("keys come from the development key or a JWKS URL, not both")
        if self.development_key and DEVELOPMENT_ALGORITHM not in self.algorithms:
            raise ValueError("the development key signs with ES256")
        if self.jwks_url is not None:
            require_secure_url(self.jwks_url, "jwks_url")
        elif not self.development_key:
            require_secure_url(self.issuer, "issuer (its keys are found by discovery)")


def require_secure_url(url: str, what: str) -> None:
    """ValueError unless `url` is https, or http to this machine: keys fetched, or tokens sent,
    in the clear could be anyone's."""
    parts = urlsplit(url)
    if parts.scheme == "https" and parts.hostname:
        return
    if parts.scheme == "http" and _is_loopback(parts.hostname):
        return
    raise ValueError(f"{what} must be an https URL (http only on this machine), not {url!r}")


def _is_loopback(host: str | None) -> bool:
    if host == "localhost":
        return True
    try:
        return host is not None and ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class TokenSettings(msgspec.Struct, frozen=True, kw_only=True):
    """The issuers a service trusts, and where the development key is."""

    issuers: tuple[TrustedIssuer, ...]
    dev_key_file: Path

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> TokenSettings:
        """STAFETT_TRUSTED_ISSUERS, or else the one issuer of the older variables; SettingsError
        naming what is wrong."""

        # An empty variable counts as unset, as in settings.py.
        def read(name: str) -> str | None:
            return environ.get(name) or None

        listed = read("STAFETT_TRUSTED_ISSUERS")
        if listed is None:
            jwks_url = read("STAFETT_JWKS_URL")
            issuers: tuple[TrustedIssuer, ...] = (
                _issuer(
                    "STAFETT_JWKS_URL",
                    issuer=read("STAFETT_TOKEN_ISSUER") or DEFAULT_ISSUER,
                    audience=read("STAFETT_TOKEN_AUDIENCE") or DEFAULT_AUDIENCE,
                    jwks_url=jwks_url,
                    development_key=jwks_url is None,
                ),
            )
        else:
            issuers = _trusted_issuers(listed)
        return cls(issuers=issuers, dev_key_file=development_key_file(environ))

    @property
    def development_issuer(self) -> TrustedIssuer | None:
        """The issuer whose tokens the development key signs, if the services trust one."""
        return next((issuer for issuer in self.issuers if issuer.development_key), None)


def development_key_file(environ: Mapping[str, str] = os.environ) -> Path:
    """Where the development key is: STAFETT_DEV_KEY_FILE, or in the data folder."""
    named = environ.get("STAFETT_DEV_KEY_FILE") or None
    data_dir = Path(environ.get("STAFETT_DATA_DIR") or "var")
    return Path(named or data_dir / "dev-signing-key.pem").resolve()


def _issuer(variable: str, **fields: Any) -> TrustedIssuer:
    try:
        return TrustedIssuer(**fields)
    except ValueError as error:
        raise SettingsError(f"{variable}: {error}") from None


def _trusted_issuers(listed: str) -> tuple[TrustedIssuer, ...]:
    try:
        issuers = msgspec.json.decode(listed, type=tuple[TrustedIssuer, ...])
    except msgspec.ValidationError as error:
        raise SettingsError(f"STAFETT_TRUSTED_ISSUERS: {error}") from None
    except msgspec.DecodeError:
        raise SettingsError("STAFETT_TRUSTED_ISSUERS: not a JSON list of issuers") from None
    if not issuers:
        raise SettingsError("STAFETT_TRUSTED_ISSUERS: trusts no issuer; name at least one")
    names = [issuer.issuer for issuer in issuers]
    if len(set(names)) < len(names):
        raise SettingsError("STAFETT_TRUSTED_ISSUERS: an issuer is listed more than once")
    return issuers


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


# --- the development key -----------------------------------------------------------------------


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
    def public_key(self) -> PublicKey:
        return self._private_key.public_key()

    @property
    def private_key(self) -> ec.EllipticCurvePrivateKey:
        """For the development identity provider, which signs its ID tokens with it."""
        return self._private_key

    def public_jwk(self) -> dict[str, str]:
        """The public key as a JWK, as an identity provider's JWKS lists it."""
        jwk: dict[str, str] = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.public_key))
        return {**jwk, "kid": self.key_id, "use": "sig", "alg": DEVELOPMENT_ALGORITHM}

    def sign(self, claims: Mapping[str, Any]) -> str:
        """A JWT of these claims, signed with this key and naming it (`kid`)."""
        return jwt.encode(
            dict(claims),
            self._private_key,
            algorithm=DEVELOPMENT_ALGORITHM,
            headers={"kid": self.key_id},
        )

    def mint(
        self,
        actor: Actor,
        ttl: timedelta = timedelta(hours=8),
        issuer: str = DEFAULT_ISSUER,
        audience: str = DEFAULT_AUDIENCE,
    ) -> str:
        """A token naming `actor` with the default claims (`sub`, `role`, `service`)."""
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
        return self.sign(claims)


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
