"""Every HTTP API knows who calls it: a bearer token names the person, their role and service,
and a token that cannot be trusted is turned away with the reason."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import os
import re
import stat
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from litestar import Litestar, Request, get
from litestar.openapi import OpenAPIConfig
from litestar.testing import AsyncTestClient

from stafett_contracts.identity import Actor, Role
from stafett_runtime import auth
from stafett_runtime.auth import (
    DevelopmentKey,
    KeysUnavailableError,
    TokenError,
    TokenVerifier,
    bearer_token_auth,
    bearer_token_openapi,
    require_role,
)
from stafett_runtime.health import Readiness, health_routes
from stafett_runtime.settings import SettingsError

TEACHER = Actor(person="p-1001", role=Role.EMPLOYEE, service="solbakken-skole")
HEADMASTER = Actor(person="p-1002", role=Role.UNIT_LEADER, service="solbakken-skole")
PARENT = Actor(person="p-2001", role=Role.GUARDIAN)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    return tmp_path / "dev-signing-key.pem"


@pytest.fixture
def dev_key(key_file: Path) -> DevelopmentKey:
    return DevelopmentKey.load_or_create(key_file)


@pytest.fixture
def verifier(dev_key: DevelopmentKey) -> TokenVerifier:
    return TokenVerifier(dev_key.public_key)


def claims_for(actor: Actor, **changes: Any) -> dict[str, Any]:
    claims = {
        "iss": "stafett-dev",
        "aud": "stafett",
        "sub": actor.person,
        "role": str(actor.role),
        "service": actor.service,
        "iat": 1_700_000_000,
        "exp": 4_000_000_000,
    }
    claims.update(changes)
    return {name: value for name, value in claims.items() if value is not None}


def signed_with_dev_key(key_file: Path, claims: dict[str, Any]) -> str:
    """A token the development key signs without DevelopmentKey's checks of the identity."""
    private_key = serialization.load_pem_private_key(key_file.read_bytes(), password=None)
    assert isinstance(private_key, ec.EllipticCurvePrivateKey)
    return jwt.encode(claims, private_key, algorithm="ES256")


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged(header: dict[str, Any], claims: dict[str, Any], secret: bytes | None) -> str:
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    signature = b"" if secret is None else hmac.digest(secret, signing_input.encode(), "sha256")
    return f"{signing_input}.{b64(signature)}"


# --- the token ---------------------------------------------------------------------------------


async def test_a_minted_token_names_the_actor(
    dev_key: DevelopmentKey, verifier: TokenVerifier
) -> None:
    token = dev_key.mint(TEACHER)

    assert await verifier.verify(token) == TEACHER


async def test_a_guardian_acts_for_no_service(
    dev_key: DevelopmentKey, verifier: TokenVerifier
) -> None:
    assert await verifier.verify(dev_key.mint(PARENT)) == PARENT


def test_the_development_key_is_created_once_readable_only_by_its_owner(key_file: Path) -> None:
    created = DevelopmentKey.load_or_create(key_file)
    loaded = DevelopmentKey.load_or_create(key_file)

    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert loaded.key_id == created.key_id


async def test_an_expired_token_is_refused(
    dev_key: DevelopmentKey, verifier: TokenVerifier
) -> None:
    token = dev_key.mint(TEACHER, ttl=timedelta(minutes=-5))

    with pytest.raises(TokenError, match=r"^token expired$"):
        await verifier.verify(token)


async def test_a_token_expired_within_the_clock_leeway_is_still_accepted(
    dev_key: DevelopmentKey, verifier: TokenVerifier
) -> None:
    token = dev_key.mint(TEACHER, ttl=timedelta(seconds=-10))

    assert await verifier.verify(token) == TEACHER


async def test_a_token_verified_before_is_refused_once_it_expires(
    dev_key: DevelopmentKey, verifier: TokenVerifier
) -> None:
    # Given a token accepted (and remembered) one second before its leeway runs out
    token = dev_key.mint(TEACHER, ttl=timedelta(seconds=-29))
    assert await verifier.verify(token) == TEACHER

    # When it is used again after that
    await asyncio.sleep(1.5)

    # Then it is refused as a fresh check would refuse it
    with pytest.raises(TokenError, match=r"^token expired$"):
        await verifier.verify(token)


async def test_a_token_for_another_audience_is_refused(
    dev_key: DevelopmentKey, verifier: TokenVerifier
) -> None:
    token = dev_key.mint(TEACHER, audience="another-system")

    with pytest.raises(TokenError, match="another audience"):
        await verifier.verify(token)


async def test_a_token_from_another_issuer_is_refused(
    dev_key: DevelopmentKey, verifier: TokenVerifier
) -> None:
    token = dev_key.mint(TEACHER, issuer="someone-else")

    with pytest.raises(TokenError, match="unknown issuer"):
        await verifier.verify(token)


async def test_a_token_signed_by_another_key_is_refused(
    tmp_path: Path, verifier: TokenVerifier
) -> None:
    stranger = DevelopmentKey.load_or_create(tmp_path / "stranger.pem")

    with pytest.raises(TokenError, match=r"^token signed by an unknown key"):
        await verifier.verify(stranger.mint(TEACHER))


async def test_an_unsigned_token_is_refused(verifier: TokenVerifier) -> None:
    token = forged({"alg": "none", "typ": "JWT"}, claims_for(TEACHER), secret=None)

    with pytest.raises(TokenError, match="not signed with ES256"):
        await verifier.verify(token)


async def test_a_token_forged_with_hs256_and_the_public_key_is_refused(
    dev_key: DevelopmentKey, verifier: TokenVerifier
) -> None:
    public_pem = dev_key.public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    token = forged({"alg": "HS256", "typ": "JWT"}, claims_for(HEADMASTER), secret=public_pem)

    with pytest.raises(TokenError, match="not signed with ES256"):
        await verifier.verify(token)


async def test_a_token_with_an_unknown_role_is_refused(
    key_file: Path, verifier: TokenVerifier
) -> None:
    token = signed_with_dev_key(key_file, claims_for(TEACHER, role="superuser"))

    with pytest.raises(TokenError, match="role 'superuser' is not one of employee, unit_leader"):
        await verifier.verify(token)


@pytest.mark.parametrize("missing", ["sub", "role", "exp", "iss", "aud"])
async def test_a_token_without_a_required_claim_is_refused(
    key_file: Path, verifier: TokenVerifier, missing: str
) -> None:
    claims = claims_for(TEACHER)
    del claims[missing]

    with pytest.raises(TokenError, match=f"^token lacks the '{missing}' claim$"):
        await verifier.verify(signed_with_dev_key(key_file, claims))


async def test_an_employee_token_must_name_the_service_acted_for(
    key_file: Path, verifier: TokenVerifier
) -> None:
    token = signed_with_dev_key(key_file, claims_for(TEACHER, service=None))

    with pytest.raises(TokenError, match="role employee must name the service"):
        await verifier.verify(token)


def test_no_token_is_minted_for_an_employee_without_a_service(dev_key: DevelopmentKey) -> None:
    with pytest.raises(TokenError, match="role employee must name the service"):
        dev_key.mint(Actor(person="p-1001", role=Role.EMPLOYEE))


async def test_a_guardian_token_must_not_name_a_service(
    key_file: Path, verifier: TokenVerifier
) -> None:
    token = signed_with_dev_key(key_file, claims_for(PARENT, service="barnevern"))

    with pytest.raises(TokenError, match="role guardian must not name a service"):
        await verifier.verify(token)


async def test_the_environment_selects_the_development_key_issuer_and_audience(
    tmp_path: Path,
) -> None:
    environ = {"STAFETT_DATA_DIR": str(tmp_path), "STAFETT_TOKEN_AUDIENCE": "case-api"}
    verifier = TokenVerifier.from_env(environ)
    dev_key = DevelopmentKey.load_or_create(tmp_path / "dev-signing-key.pem")

    assert await verifier.verify(dev_key.mint(TEACHER, audience="case-api")) == TEACHER


# --- identity providers: their keys by discovery or a JWKS URL, their claims mapped --------------


class IdentityProvider:
    """A provider's discovery document and JWKS over HTTP, counting how often each is asked.

    It signs with RS256 keys of its own; `rotate()` publishes a new key and signs with it.
    """

    def __init__(self, issuer_path: str = "") -> None:
        self.keys: list[tuple[str, rsa.RSAPrivateKey]] = []
        self.fetches = {"discovery": 0, "jwks": 0}
        self.names_issuer: str | None = None  # a discovery document naming another issuer
        self.down = False  # answers 503 to everything
        self.asked = 0  # requests of any kind
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.asked += 1
                if provider.down:
                    self.send_error(503)
                    return
                body: dict[str, Any]
                if self.path.endswith("/.well-known/openid-configuration"):
                    provider.fetches["discovery"] += 1
                    body = {
                        "issuer": provider.names_issuer or provider.issuer,
                        "jwks_uri": provider.jwks_url,
                    }
                elif self.path == "/jwks":
                    provider.fetches["jwks"] += 1
                    body = {"keys": [provider.jwk(kid, key) for kid, key in provider.keys]}
                else:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps(body).encode())

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        origin = f"http://127.0.0.1:{self._server.server_port}"
        self.issuer = origin + issuer_path
        self.jwks_url = f"{origin}/jwks"
        self.rotate()

    @staticmethod
    def jwk(kid: str, key: rsa.RSAPrivateKey) -> dict[str, Any]:
        public = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
        return {**public, "kid": kid, "use": "sig", "alg": "RS256"}

    def rotate(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.keys.append((f"key-{len(self.keys) + 1}", key))

    def sign(self, claims: dict[str, Any], kid: str | None = None) -> str:
        signing_kid, key = self.keys[-1]
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid or signing_kid})

    def token(self, audience: str = "stafett", **claims: Any) -> str:
        now = int(time.time())
        standard = {"iss": self.issuer, "aud": audience, "iat": now, "exp": now + 300}
        return self.sign({**standard, **claims})

    def __enter__(self) -> IdentityProvider:
        serve = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        serve.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def idporten() -> Iterator[IdentityProvider]:
    """A national eID for citizens: the person in `pid`, and everyone a guardian."""
    with IdentityProvider("/idporten") as provider:
        yield provider


@pytest.fixture
def entra() -> Iterator[IdentityProvider]:
    """A municipality's staff directory: app roles in `roles`, the unit in an extension."""
    with IdentityProvider("/tenant/v2.0") as provider:
        yield provider


def trusting(*issuers: dict[str, Any], key_file: Path | None = None) -> dict[str, str]:
    environ = {"STAFETT_TRUSTED_ISSUERS": json.dumps(issuers)}
    if key_file is not None:
        environ["STAFETT_DEV_KEY_FILE"] = str(key_file)
    return environ


def idporten_issuer(provider: IdentityProvider) -> dict[str, Any]:
    return {
        "issuer": provider.issuer,
        "audience": "https://stafett.kommune.example",
        "claims": {"person": "pid", "role": {"value": "guardian"}, "service": None},
    }


def entra_issuer(provider: IdentityProvider) -> dict[str, Any]:
    return {
        "issuer": provider.issuer,
        "audience": "api://stafett",
        "jwks_url": provider.jwks_url,
        "algorithms": ["RS256"],
        "claims": {
            "person": "oid",
            "role": {
                "claim": "roles",
                "values": {"Stafett.Employee": "employee", "Stafett.UnitLeader": "unit_leader"},
            },
            "service": "extn.stafettUnit",
        },
    }


DEVELOPMENT_ISSUER = {"issuer": "stafett-dev", "audience": "stafett", "development_key": True}


async def test_tokens_of_two_issuers_are_accepted_with_their_claims_mapped(
    idporten: IdentityProvider, dev_key: DevelopmentKey, key_file: Path
) -> None:
    # Given services that trust ID-porten (RS256, keys by discovery) and the development key
    verifier = TokenVerifier.from_env(
        trusting(idporten_issuer(idporten), DEVELOPMENT_ISSUER, key_file=key_file)
    )
    citizen = idporten.token(
        audience="https://stafett.kommune.example", sub="pairwise-x", pid="24019012345"
    )

    # When each presents a token, then each names its person in the role its mapping gives
    assert await verifier.verify(citizen) == Actor(person="24019012345", role=Role.GUARDIAN)
    assert await verifier.verify(dev_key.mint(TEACHER)) == TEACHER
    assert idporten.fetches == {"discovery": 1, "jwks": 1}


async def test_app_roles_are_translated_and_the_unit_read_from_an_extension_attribute(
    entra: IdentityProvider,
) -> None:
    verifier = TokenVerifier.from_env(trusting(entra_issuer(entra)))
    token = entra.token(
        audience="api://stafett",
        oid="7f3c-unit-leader",
        roles=["Stafett.UnitLeader", "Other.App.Reader"],
        **{"extn.stafettUnit": "skole-lia"},
    )

    assert await verifier.verify(token) == Actor(
        person="7f3c-unit-leader", role=Role.UNIT_LEADER, service="skole-lia"
    )
    assert entra.fetches == {"discovery": 0, "jwks": 1}  # a JWKS URL needs no discovery


async def test_a_rotated_key_is_fetched_when_a_token_names_it(
    entra: IdentityProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "UNKNOWN_KEY_REFETCH_AFTER", 0.0)
    verifier = TokenVerifier.from_env(trusting(entra_issuer(entra)))
    claims: dict[str, Any] = {"roles": ["Stafett.Employee"], "extn.stafettUnit": "ppt"}
    assert await verifier.verify(entra.token("api://stafett", oid="a", **claims))

    # When the provider rotates its key and signs with the new one
    entra.rotate()
    token = entra.token("api://stafett", oid="b", **claims)

    # Then the verifier fetches the JWKS again and accepts the token
    assert await verifier.verify(token) == Actor(person="b", role=Role.EMPLOYEE, service="ppt")
    assert entra.fetches["jwks"] == 2


async def test_tokens_naming_unknown_keys_do_not_make_the_service_hammer_the_provider(
    idporten: IdentityProvider,
) -> None:
    verifier = TokenVerifier.from_env(trusting(idporten_issuer(idporten)))
    now = int(time.time())
    claims = {"iss": idporten.issuer, "aud": "https://stafett.kommune.example", "pid": "1"}

    for made_up in ("k1", "k2", "k3"):
        token = idporten.sign({**claims, "exp": now + 60}, kid=made_up)
        with pytest.raises(TokenError, match=r"^token signed by an unknown key$"):
            await verifier.verify(token)

    assert idporten.fetches["jwks"] == 1


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"pid": None}, r"^token lacks the 'pid' claim$"),
        ({"pid": ""}, r"^token names no person \(pid\)$"),
        ({"aud": "another-system"}, r"^token is meant for another audience$"),
        ({"exp": 1_700_000_000}, r"^token expired$"),
        ({"nbf": 4_000_000_000}, r"^token not valid yet$"),
        ({"service": "barnevern"}, r"^a token for the role guardian must not name a service$"),
    ],
)
async def test_a_citizen_token_that_gives_no_valid_identity_is_refused_naming_why(
    idporten: IdentityProvider, claims: dict[str, Any], reason: str
) -> None:
    issuer = idporten_issuer(idporten)
    issuer["claims"]["service"] = "service"  # read it, so that a citizen naming one is refused
    verifier = TokenVerifier.from_env(trusting(issuer))
    now = int(time.time())
    standard = {
        "iss": idporten.issuer,
        "aud": "https://stafett.kommune.example",
        "pid": "24019012345",
        "exp": now + 60,
    }
    token = idporten.sign({k: v for k, v in {**standard, **claims}.items() if v is not None})

    with pytest.raises(TokenError, match=reason):
        await verifier.verify(token)


@pytest.mark.parametrize(
    ("roles", "reason"),
    [
        (["Stafett.Employee", "Stafett.UnitLeader"], "'roles' claim names more than one"),
        (["Other.App.Reader"], "role None is not one of"),
        ("Stafett.Admin", "role 'Stafett.Admin' is not one of employee"),
    ],
)
async def test_app_roles_that_name_no_single_stafett_role_are_refused(
    entra: IdentityProvider, roles: object, reason: str
) -> None:
    verifier = TokenVerifier.from_env(trusting(entra_issuer(entra)))
    token = entra.token(
        audience="api://stafett", oid="x", roles=roles, **{"extn.stafettUnit": "ppt"}
    )

    with pytest.raises(TokenError, match=reason):
        await verifier.verify(token)


async def test_a_token_from_an_issuer_not_trusted_is_refused_before_anything_is_fetched(
    idporten: IdentityProvider, entra: IdentityProvider
) -> None:
    verifier = TokenVerifier.from_env(trusting(entra_issuer(entra)))

    with pytest.raises(TokenError, match=r"^token issued by an unknown issuer$"):
        await verifier.verify(idporten.token(pid="24019012345"))
    assert entra.fetches == {"discovery": 0, "jwks": 0}


async def test_a_token_signed_with_an_algorithm_the_issuer_does_not_use_is_refused(
    entra: IdentityProvider, dev_key: DevelopmentKey, key_file: Path
) -> None:
    # Given an issuer that signs with RS256 only, and a token claiming it but signed ES256
    verifier = TokenVerifier.from_env(trusting(entra_issuer(entra)))
    claims = {"iss": entra.issuer, "aud": "api://stafett", "oid": "x", "exp": 4_000_000_000}

    with pytest.raises(TokenError, match=r"^token is not signed with RS256$"):
        await verifier.verify(signed_with_dev_key(key_file, claims))


async def test_a_discovery_document_naming_another_issuer_is_not_trusted(
    idporten: IdentityProvider,
) -> None:
    idporten.names_issuer = "https://impostor.example"
    verifier = TokenVerifier.from_env(trusting(idporten_issuer(idporten)))

    with pytest.raises(KeysUnavailableError):
        await verifier.verify(idporten.token(pid="24019012345"))


async def test_a_provider_that_is_down_is_not_blamed_on_the_token_and_the_service_heals(
    idporten: IdentityProvider, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(auth, "RETRY_KEYS_AFTER", 0.0)
    # Given a provider that is down when the first token comes
    idporten.down = True
    verifier = TokenVerifier.from_env(trusting(idporten_issuer(idporten)))
    token = idporten.token(audience="https://stafett.kommune.example", pid="24019012345")
    with pytest.raises(KeysUnavailableError):
        await verifier.verify(token)

    # When it is back, then the same verifier checks the token
    idporten.down = False
    assert await verifier.verify(token) == Actor(person="24019012345", role=Role.GUARDIAN)


async def test_a_provider_that_is_down_is_asked_again_only_after_a_pause(
    idporten: IdentityProvider,
) -> None:
    # Given a provider that hangs or fails: every worker waiting out its own timeout would stall
    # the service
    idporten.down = True
    verifier = TokenVerifier.from_env(trusting(idporten_issuer(idporten)))

    # When tokens keep coming
    for pid in ("1", "2", "3"):
        token = idporten.token(audience="https://stafett.kommune.example", pid=pid)
        with pytest.raises(KeysUnavailableError):
            await verifier.verify(token)

    # Then it was asked once
    assert idporten.asked == 1


async def test_the_older_variables_still_name_one_issuer_and_its_jwks(
    entra: IdentityProvider,
) -> None:
    verifier = TokenVerifier.from_env(
        {"STAFETT_TOKEN_ISSUER": entra.issuer, "STAFETT_JWKS_URL": entra.jwks_url}
    )

    token = entra.token(sub="p-1001", role="employee", service="solbakken-skole")

    assert await verifier.verify(token) == TEACHER


async def test_a_development_token_from_another_data_folder_is_refused_with_a_hint(
    tmp_path: Path, key_file: Path
) -> None:
    verifier = TokenVerifier.from_env({"STAFETT_DEV_KEY_FILE": str(key_file)})
    elsewhere = DevelopmentKey.load_or_create(tmp_path / "elsewhere" / "dev-signing-key.pem")

    with pytest.raises(TokenError, match="unknown key, not this data folder's development key"):
        await verifier.verify(elsewhere.mint(TEACHER))


@pytest.mark.parametrize(
    ("listed", "names"),
    [
        ("not json", "not a JSON list of issuers"),
        ("[]", "trusts no issuer"),
        ('[{"audience": "stafett"}]', "missing required field `issuer`"),
        ('[{"issuer": "https://a.example", "scope": "x"}]', "unknown field `scope`"),
        ('[{"issuer": "http://login.example"}]', "issuer (its keys are found by discovery)"),
        ('[{"issuer": "https://a.example", "algorithms": ["HS256"]}]', "algorithms"),
        ('[{"issuer": "x", "development_key": true, "jwks_url": "https://a.example/k"}]', "both"),
        ('[{"issuer": "https://a.example", "claims": {"role": {}}}]', "claim or a fixed value"),
        ('[{"issuer": "https://a.example"}, {"issuer": "https://a.example"}]', "more than once"),
    ],
)
def test_a_trusted_issuers_setting_that_is_wrong_stops_the_service_naming_what(
    listed: str, names: str
) -> None:
    with pytest.raises(SettingsError, match=re.escape(names)):
        TokenVerifier.from_env({"STAFETT_TRUSTED_ISSUERS": listed})


# --- a service's HTTP API ----------------------------------------------------------------------


def service_app(verifier: TokenVerifier) -> Litestar:
    @get("/whoami")
    async def whoami(request: Request[Actor, str, Any]) -> Actor:
        return request.user

    @get("/unit/cases", guards=[require_role(Role.UNIT_LEADER, Role.ADMINISTRATOR)])
    async def unit_cases() -> list[str]:
        return []

    components, security = bearer_token_openapi()
    return Litestar(
        route_handlers=[whoami, unit_cases, *health_routes(Readiness())],
        middleware=[bearer_token_auth(verifier)],
        openapi_config=OpenAPIConfig(
            title="case", version="1", components=components, security=security
        ),
        logging_config=None,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_a_request_without_a_token_is_answered_401_with_the_reason(
    verifier: TokenVerifier,
) -> None:
    async with AsyncTestClient(service_app(verifier)) as client:
        response = await client.get("/whoami")

    assert response.status_code == 401
    assert response.json() == {"status_code": 401, "detail": "missing bearer token"}
    assert response.headers["WWW-Authenticate"] == "Bearer"


async def test_a_request_with_an_expired_token_is_told_so_in_the_challenge(
    dev_key: DevelopmentKey, verifier: TokenVerifier
) -> None:
    token = dev_key.mint(TEACHER, ttl=timedelta(hours=-1))

    async with AsyncTestClient(service_app(verifier)) as client:
        response = await client.get("/whoami", headers=bearer(token))

    assert response.status_code == 401
    assert response.json() == {"status_code": 401, "detail": "token expired"}
    assert response.headers["WWW-Authenticate"] == (
        'Bearer error="invalid_token", error_description="token expired"'
    )


async def test_the_handler_sees_the_actor_the_token_names(
    dev_key: DevelopmentKey, verifier: TokenVerifier
) -> None:
    async with AsyncTestClient(service_app(verifier)) as client:
        response = await client.get("/whoami", headers=bearer(dev_key.mint(TEACHER)))

    assert response.status_code == 200
    assert response.json() == {
        "person": "p-1001",
        "role": "employee",
        "service": "solbakken-skole",
    }


async def test_health_and_the_api_description_need_no_token(verifier: TokenVerifier) -> None:
    async with AsyncTestClient(service_app(verifier)) as client:
        live = await client.get("/health/live")
        schema = await client.get("/schema/openapi.json")

    assert live.status_code == 200
    assert schema.status_code == 200
    assert schema.json()["components"]["securitySchemes"] == {
        "BearerToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
    }
    assert schema.json()["security"] == [{"BearerToken": []}]


async def test_a_role_not_allowed_is_answered_403_naming_the_roles_allowed(
    dev_key: DevelopmentKey, verifier: TokenVerifier
) -> None:
    async with AsyncTestClient(service_app(verifier)) as client:
        teacher = await client.get("/unit/cases", headers=bearer(dev_key.mint(TEACHER)))
        headmaster = await client.get("/unit/cases", headers=bearer(dev_key.mint(HEADMASTER)))

    assert teacher.status_code == 403
    assert teacher.json()["detail"] == "only the roles unit_leader, administrator may do this"
    assert headmaster.status_code == 200


async def test_a_service_whose_identity_provider_is_unreachable_answers_503() -> None:
    with IdentityProvider() as provider:
        pass  # stopped: nothing listens at its address any more
    verifier = TokenVerifier(provider.jwks_url, issuer=provider.issuer)

    async with AsyncTestClient(service_app(verifier)) as client:
        response = await client.get("/whoami", headers=bearer(provider.token(sub="p-1")))

    assert response.status_code == 503
    assert response.json()["detail"] == "the identity provider's keys are unavailable"
