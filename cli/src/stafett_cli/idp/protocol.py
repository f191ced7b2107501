# mypy: allow-subclassing-any
# (Authlib has no type information: its server classes are extended here, and nowhere else.)
"""OpenID Connect for the development identity provider, done by Authlib's server classes.

- the authorization code grant (RFC 6749 4.1), for registered clients and redirect URIs only,
  a code valid once and for `CODE_LIFETIME`;
- PKCE (RFC 7636) required of every client, with S256 only;
- ID tokens (OpenID Connect Core 3.1) with the nonce, `aud` the client, signed RS256 (which
  Discovery 1.0 requires of every provider) with a key of the provider's own in the data folder;
- access tokens for the services: JWTs with `aud` their audience and the claims their default
  mapping reads (`sub`, `role`, `service`), signed ES256 with the data folder's development key,
  as `stafett token`'s are;
- RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0) to a registered post-logout URI.

The provider keeps no session of its own: every sign-in shows the list of people again. Codes
live in memory only; a code lost with a restart means signing in again.
"""

from __future__ import annotations

import hmac
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from authlib.oauth2 import AuthorizationServer, OAuth2Request
from authlib.oauth2.rfc6749 import ClientMixin, OAuth2Payload
from authlib.oauth2.rfc6749.errors import InvalidRequestError
from authlib.oauth2.rfc6749.grants import AuthorizationCodeGrant
from authlib.oauth2.rfc7636 import CodeChallenge
from authlib.oidc.core import AuthorizationCodeMixin, OpenIDCode, UserInfo
from authlib.oidc.rpinitiated import EndSessionEndpoint, EndSessionRequest
from joserfc.jwk import KeyParameters, RSAKey

from stafett_cli.datafolder import write_private
from stafett_cli.idp.people import People, Person
from stafett_cli.idp.settings import Client, IdpSettings
from stafett_runtime.auth import DevelopmentKey

CODE_LIFETIME = 60.0  # seconds; RFC 6749 4.1.2 recommends at most ten minutes
TOKEN_LIFETIME = timedelta(hours=1)  # of ID and access tokens
SCOPES = ("openid", "profile")
PKCE_METHOD = "S256"
ID_TOKEN_ALGORITHM = "RS256"


def id_token_key(path: Path) -> RSAKey:
    """The provider's RS256 key for ID tokens, made once (readable by its owner only)."""
    if not path.exists():
        write_private(path, RSAKey.generate_key(2048).as_pem(private=True).decode())
    key = RSAKey.import_key(path.read_bytes())
    about: KeyParameters = {"kid": key.thumbprint(), "use": "sig", "alg": ID_TOKEN_ALGORITHM}
    return RSAKey.import_key(path.read_bytes(), about)


class Parameters(OAuth2Payload):
    """A request's parameters (query and form), each name with all its values."""

    def __init__(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._datalist: defaultdict[str, list[str]] = defaultdict(list)
        for name, value in pairs:
            self._datalist[name].append(value)

    @property
    def data(self) -> dict[str, str]:
        return {name: values[0] for name, values in self._datalist.items()}

    @property
    def datalist(self) -> defaultdict[str, list[str]]:
        return self._datalist


class Request(OAuth2Request):
    """An HTTP request as Authlib reads it."""

    def __init__(
        self,
        method: str,
        uri: str,
        headers: Mapping[str, str],
        query: list[tuple[str, str]],
        form: list[tuple[str, str]],
    ) -> None:
        super().__init__(method, uri, headers=headers)
        self.payload = Parameters([*query, *form])
        self._args = dict(query)
        self._form = dict(form)

    @property
    def args(self) -> dict[str, str]:
        return self._args

    @property
    def form(self) -> dict[str, str]:
        return self._form


class RegisteredClient(ClientMixin):
    def __init__(self, client: Client) -> None:
        self.client = client
        self.client_metadata = {"post_logout_redirect_uris": client.post_logout_redirect_uris}

    def get_client_id(self) -> str:
        return self.client.client_id

    def get_default_redirect_uri(self) -> None:
        return None  # OpenID Connect requires the request to name it

    def get_allowed_scope(self, scope: str | None) -> str:
        return " ".join(s for s in (scope or "").split() if s in SCOPES)

    def check_redirect_uri(self, redirect_uri: str) -> bool:
        return redirect_uri in self.client.redirect_uris  # exactly as registered

    def check_client_secret(self, client_secret: str) -> bool:
        secret = self.client.client_secret
        return secret is not None and hmac.compare_digest(secret.encode(), client_secret.encode())

    def check_endpoint_auth_method(self, method: str, endpoint: str) -> bool:
        if endpoint != "token":
            return True
        if self.client.client_secret is None:
            return method == "none"
        return method in ("client_secret_basic", "client_secret_post")

    def check_response_type(self, response_type: str) -> bool:
        return response_type == "code"

    def check_grant_type(self, grant_type: str) -> bool:
        return grant_type == "authorization_code"


@dataclass(frozen=True)
class Code(AuthorizationCodeMixin):
    """What an authorization code stands for, until it is redeemed or expires."""

    client_id: str
    redirect_uri: str
    scope: str
    person: str
    nonce: str | None
    code_challenge: str
    code_challenge_method: str
    auth_time: int
    expires_at: float

    def get_redirect_uri(self) -> str:
        return self.redirect_uri

    def get_scope(self) -> str:
        return self.scope

    def get_nonce(self) -> str | None:
        return self.nonce

    def get_auth_time(self) -> int:
        return self.auth_time


class Codes:
    """Authorization codes in memory: each redeemed once, none after it expires."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._codes: dict[str, Code] = {}
        self._lock = threading.Lock()

    def issue(self, code: str, issued: Code) -> None:
        with self._lock:
            now = self._clock()
            for old in [c for c, known in self._codes.items() if known.expires_at <= now]:
                del self._codes[old]
            self._codes[code] = issued

    def redeem(self, code: str, client_id: str) -> Code | None:
        """The code's grant, taken so that it cannot be redeemed again (even by a request that
        fails on another check, such as a wrong PKCE verifier)."""
        with self._lock:
            issued = self._codes.pop(code, None)
        if issued is None or issued.client_id != client_id or issued.expires_at <= self._clock():
            return None
        return issued

    def nonce_pending(self, client_id: str, nonce: str) -> bool:
        with self._lock:
            return any(c.client_id == client_id and c.nonce == nonce for c in self._codes.values())


class CodeGrant(AuthorizationCodeGrant):
    TOKEN_ENDPOINT_AUTH_METHODS = ["client_secret_basic", "client_secret_post", "none"]
    server: Provider

    def save_authorization_code(self, code: str, request: Request) -> None:
        data = request.payload.data
        now = self.server.clock()
        self.server.codes.issue(
            code,
            Code(
                client_id=request.client.get_client_id(),
                redirect_uri=data["redirect_uri"],
                scope=request.scope,
                person=request.user.person,
                nonce=data.get("nonce"),
                code_challenge=data["code_challenge"],
                code_challenge_method=data["code_challenge_method"],
                auth_time=int(now),
                expires_at=now + CODE_LIFETIME,
            ),
        )

    def query_authorization_code(self, code: str, client: RegisteredClient) -> Code | None:
        return self.server.codes.redeem(code, client.get_client_id())

    def delete_authorization_code(self, authorization_code: Code) -> None:
        pass  # redeemed already

    def authenticate_user(self, authorization_code: Code) -> Person | None:
        return self.server.people.find(authorization_code.person)


class S256Required(CodeChallenge):
    """PKCE for every client, with S256: `plain` would send the verifier in the clear."""

    SUPPORTED_CODE_CHALLENGE_METHOD = [PKCE_METHOD]
    DEFAULT_CODE_CHALLENGE_METHOD = PKCE_METHOD

    def validate_code_challenge(self, grant: CodeGrant, redirect_uri: str) -> None:
        data = grant.request.payload.data
        if not data.get("code_challenge") or data.get("code_challenge_method") != PKCE_METHOD:
            raise InvalidRequestError(
                "PKCE is required: send code_challenge with code_challenge_method=S256"
            )
        super().validate_code_challenge(grant, redirect_uri)


class IdToken(OpenIDCode):
    """The ID token: who signed in, for the client, with the request's nonce."""

    def __init__(self, settings: IdpSettings, key: RSAKey, codes: Codes) -> None:
        super().__init__(require_nonce=False)
        self._settings = settings
        self._key = key
        self._codes = codes

    def exists_nonce(self, nonce: str, request: Request) -> bool:
        return self._codes.nonce_pending(request.payload.client_id, nonce)

    def resolve_client_private_key(self, client: RegisteredClient) -> RSAKey:
        return self._key

    def get_client_algorithm(self, client: RegisteredClient) -> str:
        return ID_TOKEN_ALGORITHM

    def get_encode_header(self, client: RegisteredClient) -> dict[str, str]:
        return {"alg": ID_TOKEN_ALGORITHM, "kid": self._key.kid or ""}

    def get_client_claims(self, client: RegisteredClient) -> dict[str, Any]:
        now = int(time.time())
        return {
            "iss": self._settings.issuer,
            "aud": client.get_client_id(),
            "iat": now,
            "exp": now + int(TOKEN_LIFETIME.total_seconds()),
        }

    def generate_user_info(self, user: Person, scope: str) -> UserInfo:
        return user_info(user)


def user_info(person: Person) -> UserInfo:
    """The claims about a person in their ID token and at the userinfo endpoint."""
    # The demo people have no names: what the login page says of them stands in.
    name = ", ".join(part for part in (person.title, person.unit) if part) or person.person
    claims: dict[str, Any] = {"sub": person.person, "name": name, "role": str(person.role)}
    if person.service is not None:
        claims["service"] = person.service
    return UserInfo(claims)


class Logout(EndSessionEndpoint):
    def __init__(self, jwks: dict[str, Any]) -> None:
        super().__init__()
        self._jwks = jwks

    def get_server_jwks(self) -> dict[str, Any]:
        return self._jwks

    def end_session(self, end_session_request: EndSessionRequest) -> None:
        pass  # the provider keeps no session: the client ends its own

    def is_post_logout_redirect_uri_legitimate(self, *_: object) -> bool:
        # Authlib asks only for a URI registered for the client named: nothing to fear there.
        return True


class Provider(AuthorizationServer):
    """Authlib's authorization server, with the development provider's clients, people, codes
    and key. Its `create_*` methods answer (status, body, headers) tuples."""

    def __init__(
        self,
        settings: IdpSettings,
        key: DevelopmentKey,
        people: People,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(scopes_supported=list(SCOPES))
        self.settings = settings
        self.key = key
        self.people = people
        self.clock = clock
        self.codes = Codes(clock)
        self._clients = {c.client_id: RegisteredClient(c) for c in settings.clients}
        id_key = id_token_key(settings.id_token_key_file)
        # Its ID tokens' key, and the development key its access tokens are signed with.
        self.jwks = {"keys": [id_key.as_dict(private=False), key.public_jwk()]}
        self.register_token_generator("default", self._access_token)
        self.register_grant(CodeGrant, [S256Required(), IdToken(settings, id_key, self.codes)])
        self.register_endpoint(Logout(self.jwks))

    def query_client(self, client_id: str) -> RegisteredClient | None:
        return self._clients.get(client_id)

    def save_token(self, token: dict[str, Any], request: Request) -> None:
        pass  # the tokens are signed JWTs: nothing to keep

    def send_signal(self, name: str, *args: Any, **kwargs: Any) -> None:
        pass

    def create_oauth2_request(self, request: Request) -> Request:
        return request

    def handle_response(
        self, status: int, body: Any, headers: list[tuple[str, str]]
    ) -> tuple[int, Any, list[tuple[str, str]]]:
        return status, body, headers

    def _access_token(
        self,
        grant_type: str,
        client: RegisteredClient,
        user: Person,
        scope: str,
        expires_in: int | None = None,
        include_refresh_token: bool = False,
    ) -> dict[str, Any]:
        token = self.key.mint(
            user.actor,
            TOKEN_LIFETIME,
            issuer=self.settings.issuer,
            audience=self.settings.audience,
        )
        return {
            "token_type": "Bearer",
            "access_token": token,
            "expires_in": int(TOKEN_LIFETIME.total_seconds()),
            "scope": scope,
        }
