"""Stand-ins for what the web app talks to, for its own tests: an OpenID Connect provider and
the services' HTTP APIs, each behind an httpx transport; and `Browser`, a person at the app.

`Provider` speaks the protocol the web app uses (discovery, JWKS, the code flow with PKCE, the
end-session endpoint) and checks what a real provider checks: the client, the redirect URI and
the PKCE verifier against the challenge. Its ID tokens are its own (ES256 or RS256); the access
token it hands out is minted with the services' development key, as the development provider
of `stafett up` does. `Services` answers each request from a table the test fills, and keeps
what it was sent.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID, uuid4

import httpx
import jwt
import msgspec
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from litestar.testing import TestClient

from stafett_contracts.envelope import Event, type_name
from stafett_contracts.identity import Actor
from stafett_runtime.auth import DevelopmentKey
from stafett_web.app import CSRF_COOKIE

ISSUER = "https://id.example"
WEB = "https://stafett.example"
CLIENT_ID = "stafett-web"
SERVICE_URLS = {
    "consent": "http://consent.test",
    "case": "http://case.test",
    "meeting": "http://meeting.test",
    "projection": "http://projection.test",
}


@dataclass
class Started:
    """An authorization the provider granted: what the code stands for."""

    actor: Actor
    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str


class Provider:
    """An OpenID Connect provider for one test, reached through `transport`."""

    def __init__(self, key: DevelopmentKey, algorithm: str = "ES256", lifetime: int = 600) -> None:
        self.key = key  # the services' key: access tokens the services accept
        self.algorithm = algorithm
        self.lifetime = lifetime  # seconds its tokens last
        self._signing: Any = (
            ec.generate_private_key(ec.SECP256R1())
            if algorithm == "ES256"
            else rsa.generate_private_key(public_exponent=65537, key_size=2048)
        )
        self.codes: dict[str, Started] = {}
        self.nonce_override: str | None = None
        self.token_requests = 0
        self.transport = httpx.MockTransport(self._answer)

    def authorize(self, url: str, actor: Actor) -> str:
        """What the provider's login page does once `actor` has signed in: the callback URL."""
        query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
        assert query["response_type"] == "code"
        assert query["code_challenge_method"] == "S256"
        assert "openid" in query["scope"].split()
        code = secrets.token_urlsafe(16)
        self.codes[code] = Started(
            actor=actor,
            client_id=query["client_id"],
            redirect_uri=query["redirect_uri"],
            challenge=query["code_challenge"],
            nonce=query["nonce"],
        )
        return f"{query['redirect_uri']}?code={code}&state={query['state']}"

    def _answer(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/.well-known/openid-configuration":
            return httpx.Response(200, json=self._discovery())
        if path == "/jwks":
            return httpx.Response(200, json={"keys": [self._public_jwk()]})
        if path == "/token":
            return self._token(request)
        return httpx.Response(404)

    def _discovery(self) -> dict[str, Any]:
        return {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/authorize",
            "token_endpoint": f"{ISSUER}/token",
            "jwks_uri": f"{ISSUER}/jwks",
            "end_session_endpoint": f"{ISSUER}/logout",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": [self.algorithm],
            "token_endpoint_auth_methods_supported": ["none", "client_secret_basic"],
        }

    def _public_jwk(self) -> dict[str, Any]:
        algorithm = (
            jwt.algorithms.ECAlgorithm if self.algorithm == "ES256" else jwt.algorithms.RSAAlgorithm
        )
        jwk = json.loads(algorithm.to_jwk(self._signing.public_key()))
        return {**jwk, "kid": "provider-1", "use": "sig", "alg": self.algorithm}

    def _token(self, request: httpx.Request) -> httpx.Response:
        self.token_requests += 1
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        started = self.codes.pop(form.get("code", ""), None)
        if started is None or form.get("grant_type") != "authorization_code":
            return httpx.Response(400, json={"error": "invalid_grant"})
        verifier = form.get("code_verifier", "")
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        if challenge.rstrip(b"=").decode() != started.challenge:
            return httpx.Response(400, json={"error": "invalid_grant", "error_description": "PKCE"})
        if form.get("redirect_uri") != started.redirect_uri or form.get("client_id") != CLIENT_ID:
            return httpx.Response(400, json={"error": "invalid_client"})
        now = int(time.time())
        id_token = jwt.encode(
            {
                "iss": ISSUER,
                "aud": CLIENT_ID,
                "sub": started.actor.person,
                "iat": now,
                "exp": now + 600,
                "nonce": self.nonce_override or started.nonce,
                "name": f"Name of {started.actor.person}",
            },
            self._signing,
            algorithm=self.algorithm,
            headers={"kid": "provider-1"},
        )
        return httpx.Response(
            200,
            json={
                "access_token": self.key.mint(started.actor),
                "token_type": "Bearer",
                "expires_in": self.lifetime,
                "id_token": id_token,
            },
        )


Answer = httpx.Response | Callable[[httpx.Request], httpx.Response]


@dataclass
class Services:
    """The services' APIs, answering from `answers` by method and path; `sent` is every request."""

    answers: dict[tuple[str, str], Answer] = field(default_factory=dict)
    sent: list[httpx.Request] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.transport = httpx.MockTransport(self._answer)

    def on(self, method: str, url: str, answer: Answer) -> None:
        self.answers[(method, url)] = answer

    def reply(self, method: str, url: str, status: int = 200, json_body: Any = None) -> None:
        self.on(method, url, httpx.Response(status, json=json_body))

    def bodies(self, method: str, url: str) -> list[Any]:
        return [
            json.loads(r.content)
            for r in self.sent
            if r.method == method and f"{r.url.scheme}://{r.url.host}{r.url.path}" == url
        ]

    def _answer(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        key = (request.method, f"{request.url.scheme}://{request.url.host}{request.url.path}")
        answer = self.answers.get(key)
        if answer is None:
            return httpx.Response(404, json={"status_code": 404, "detail": "not found"})
        return answer(request) if callable(answer) else answer


class Browser:
    """A person at the web app: signs in through the provider, follows links, sends forms."""

    def __init__(self, client: TestClient[Any], provider: Provider) -> None:
        self.client = client
        self.provider = provider

    def sign_in(self, actor: Actor, page: str = "/worklist") -> httpx.Response:
        """Signs in as `actor` by the code flow, asking for `page`; the answer landed on."""
        answer = self.client.get(page)
        if answer.status_code == 200:  # a page for everyone: sign in from it
            answer = self.client.get("/login", params={"next": page})
        else:
            assert answer.status_code == 303, answer.text  # to the sign-in
            answer = self.client.get(answer.headers["location"])
        assert answer.status_code in (302, 303, 307), answer.text  # to the provider
        at_provider = answer.headers["location"]
        assert at_provider.startswith(f"{ISSUER}/authorize?")
        answer = self.client.get(local(self.provider.authorize(at_provider, actor)))
        while answer.status_code in (302, 303, 307):  # to the page asked for, and where it sends
            answer = self.client.get(local(answer.headers["location"]))
        return answer

    def send(self, path: str, fields: dict[str, Any]) -> httpx.Response:
        """Sends a form as the page would: with the CSRF token the page carries."""
        if CSRF_COOKIE not in self.client.cookies:
            self.client.get("/")
        return self.client.post(
            path, data={**fields, "_csrf_token": self.client.cookies[CSRF_COOKIE]}
        )


def local(url: str) -> str:
    """The path and query of `url`: where a redirect sends the browser on this site."""
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


def entry(event: Event, seq: int) -> dict[str, Any]:
    """A relay-log entry as the projection answers it, for a contract event."""
    return {
        "stream": event.CONTEXT.upper(),
        "seq": seq,
        "type": type_name(type(event)),
        "occurred_at": event.occurred_at.isoformat(),
        "person": event.actor.person,
        "role": str(event.actor.role),
        "service": event.actor.service,
        "event": msgspec.to_builtins(event),
    }


def envelope(actor: Actor, aggregate_id: UUID, version: int, at: datetime) -> dict[str, Any]:
    """The envelope fields of a contract event, for building one in a test."""
    return {
        "event_id": uuid4(),
        "aggregate_id": aggregate_id,
        "aggregate_version": version,
        "occurred_at": at,
        "actor": actor,
        "correlation_id": "test",
    }
