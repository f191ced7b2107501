"""Tokens without the web: whose tokens a service trusts (`TokenSettings`), how their claims
name someone (`ClaimMapping`, `identity`), and the development key that signs tokens outside
production (`DevelopmentKey`).

Minting a token (`stafett token`, the development identity provider) needs only this module;
checking one on a request is `stafett_runtime.auth`, which adds the verifier, the key fetching
and the web framework's middleware. Configuration is described there and in docs/identity.md.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import os
import tempfile
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import jwt
import msgspec
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from stafett_contracts.identity import FAMILY, STAFF, Actor, Role
from stafett_runtime.settings import SettingsError

Algorithm = Literal["RS256", "ES256"]
ALGORITHMS: tuple[Algorithm, ...] = ("RS256", "ES256")
DEVELOPMENT_ALGORITHM: Algorithm = "ES256"  # the development key is a P-256 key
DEFAULT_ISSUER = "stafett-dev"
DEFAULT_AUDIENCE = "stafett"
_ACTS_FOR_A_SERVICE = STAFF
_ACTS_FOR_NO_SERVICE = FAMILY | {Role.AUDITOR}

PublicKey = ec.EllipticCurvePublicKey


class TokenError(ValueError):
    """A token, or the identity it claims, is not acceptable; the message says why."""


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
