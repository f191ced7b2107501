"""Every HTTP API knows who calls it: a bearer token names the person, their role and service,
and a token that cannot be trusted is turned away with the reason."""

from __future__ import annotations

import asyncio
import base64
import hmac
import json
import os
import stat
import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from litestar import Litestar, Request, get
from litestar.openapi import OpenAPIConfig
from litestar.testing import AsyncTestClient

from stafett_contracts.identity import Actor, Role
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

    with pytest.raises(TokenError, match=r"^token signed by an unknown key$"):
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


# --- keys from the identity provider's JWKS URL ------------------------------------------------


class JwksServer:
    """The identity provider's JWKS endpoint, counting how often it is asked."""

    def __init__(self, dev_key: DevelopmentKey) -> None:
        jwk = jwt.algorithms.ECAlgorithm.to_jwk(dev_key.public_key, as_dict=True)
        body = json.dumps({"keys": [{**jwk, "kid": dev_key.key_id, "use": "sig"}]}).encode()
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_port}/.well-known/jwks.json"

    def __enter__(self) -> JwksServer:
        serve = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        serve.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def jwks(dev_key: DevelopmentKey) -> Iterator[JwksServer]:
    with JwksServer(dev_key) as server:
        yield server


async def test_a_token_is_verified_against_the_identity_providers_jwks_fetched_once(
    dev_key: DevelopmentKey, jwks: JwksServer
) -> None:
    verifier = TokenVerifier.from_env({"STAFETT_JWKS_URL": jwks.url})

    assert await verifier.verify(dev_key.mint(TEACHER)) == TEACHER
    assert await verifier.verify(dev_key.mint(HEADMASTER)) == HEADMASTER
    assert jwks.fetches == 1


async def test_a_token_whose_key_is_not_in_the_jwks_is_refused(
    tmp_path: Path, jwks: JwksServer
) -> None:
    stranger = DevelopmentKey.load_or_create(tmp_path / "stranger.pem")

    with pytest.raises(TokenError, match=r"^token signed by an unknown key$"):
        await TokenVerifier(jwks.url).verify(stranger.mint(TEACHER))


async def test_an_unreachable_jwks_is_not_blamed_on_the_token(dev_key: DevelopmentKey) -> None:
    with JwksServer(dev_key) as stopped:
        url = stopped.url

    with pytest.raises(KeysUnavailableError):
        await TokenVerifier(url).verify(dev_key.mint(TEACHER))


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


async def test_a_service_whose_identity_provider_is_unreachable_answers_503(
    dev_key: DevelopmentKey,
) -> None:
    with JwksServer(dev_key) as stopped:
        url = stopped.url

    async with AsyncTestClient(service_app(TokenVerifier(url))) as client:
        response = await client.get("/whoami", headers=bearer(dev_key.mint(TEACHER)))

    assert response.status_code == 503
