"""The development identity provider's HTTP endpoints (Litestar, as every service).

| endpoint | |
|---|---|
| `GET /.well-known/openid-configuration` | discovery (OpenID Connect Discovery 1.0) |
| `GET /jwks` | the development key's public half |
| `GET /authorize` | the login page: the people of the people file, grouped by role |
| `POST /authorize` | the person chosen: back to the client's redirect URI with a code |
| `POST /token` | the code (with the PKCE verifier) for an ID token and an access token |
| `GET, POST /userinfo` | who the access token names |
| `GET, POST /logout` | the end-session endpoint: back to a registered post-logout URI |
| `GET /health/live`, `/health/ready` | probes, as every service's |

A request it cannot serve is answered 4xx naming why: to the client's redirect URI once the
client and that URI are known to be registered, else on a page (or, at the token endpoint, in
the OAuth error body). A people file it cannot read is a 503 naming the file, until it is fixed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from authlib.oauth2 import OAuth2Error
from litestar import Litestar, MediaType, Request, Response, get, post, route
from litestar.datastructures import UploadFile

from stafett_cli.idp.pages import CONTENT_SECURITY_POLICY, login_page, problem_page, signed_out_page
from stafett_cli.idp.people import People, PeopleFileError
from stafett_cli.idp.protocol import (
    ID_TOKEN_ALGORITHM,
    PKCE_METHOD,
    SCOPES,
    Provider,
    user_info,
)
from stafett_cli.idp.protocol import Request as OAuthRequest
from stafett_cli.idp.settings import IdpSettings
from stafett_contracts.identity import Actor
from stafett_runtime.auth import DevelopmentKey, TokenVerifier, bearer_token_auth
from stafett_runtime.health import Readiness, health_routes

MAX_BODY_BYTES = 64 * 1024  # a token or logout request is a few hundred bytes
Answer = tuple[int, Any, list[tuple[str, str]]]  # Authlib's: status, body, headers


def create_app(settings: IdpSettings, clock: Callable[[], float] = time.time) -> Litestar:
    key = DevelopmentKey.load_or_create(settings.key_file)
    people = People(settings.people_file)
    provider = Provider(settings, key, people, clock)
    # Its own access tokens, checked as a service checks them.
    verifier = TokenVerifier(key.public_key, issuer=settings.issuer, audience=settings.audience)
    issuer = settings.issuer

    @get("/.well-known/openid-configuration", sync_to_thread=False)
    def discovery() -> dict[str, Any]:
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}/authorize",
            "token_endpoint": f"{issuer}/token",
            "userinfo_endpoint": f"{issuer}/userinfo",
            "jwks_uri": f"{issuer}/jwks",
            "end_session_endpoint": f"{issuer}/logout",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ID_TOKEN_ALGORITHM],
            "token_endpoint_auth_methods_supported": [
                "client_secret_basic",
                "client_secret_post",
                "none",
            ],
            "code_challenge_methods_supported": [PKCE_METHOD],
            "scopes_supported": list(SCOPES),
            "claims_supported": ["sub", "name", "role", "service", "nonce", "auth_time"],
            "ui_locales_supported": ["nb", "en"],
        }

    @get("/jwks", sync_to_thread=False)
    def jwks() -> dict[str, Any]:
        return provider.jwks

    @get("/authorize")
    async def login(request: Request[Any, Any, Any]) -> Response[Any]:
        oauth = await _oauth_request(request, issuer)
        try:
            provider.get_consent_grant(oauth)
            listed = people.everyone()
        except OAuth2Error as error:
            return _refused(provider, oauth, error)
        except PeopleFileError as error:
            return _people_unusable(error)
        except ValueError:
            return _malformed()
        parameters = [(n, v) for n, values in oauth.payload.datalist.items() for v in values]
        page = login_page(oauth.payload.client_id, parameters, listed)
        return _html(page, 200)

    @post("/authorize", status_code=302)
    async def chosen(request: Request[Any, Any, Any]) -> Response[Any]:
        oauth = await _oauth_request(request, issuer)
        try:
            grant = provider.get_consent_grant(oauth)
            if oauth.form.get("cancel"):
                person = None  # the client is told: access_denied
            else:
                person = people.find(oauth.form.get("person", ""))
                if person is None:
                    return _html(
                        problem_page(
                            "Ukjent person",
                            "Unknown person",
                            "the person chosen is not in the people file; go back and choose again",
                        ),
                        400,
                    )
            answer = provider.create_authorization_response(oauth, person, grant)
        except OAuth2Error as error:
            return _refused(provider, oauth, error)
        except PeopleFileError as error:
            return _people_unusable(error)
        except ValueError:
            return _malformed()
        return _response(answer)

    @post("/token")
    async def token(request: Request[Any, Any, Any]) -> Response[Any]:
        oauth = await _oauth_request(request, issuer)
        try:
            return _response(provider.create_token_response(oauth))
        except PeopleFileError:
            body = {"error": "temporarily_unavailable", "error_description": "people file"}
            return Response(body, status_code=503, headers={"Cache-Control": "no-store"})
        except ValueError:  # a parameter Authlib cannot even echo in its error
            body = {"error": "invalid_request", "error_description": "malformed request"}
            return Response(body, status_code=400, headers={"Cache-Control": "no-store"})

    @route(
        "/userinfo",
        http_method=["GET", "POST"],
        middleware=[bearer_token_auth(verifier)],
    )
    async def userinfo(request: Request[Actor, str, Any]) -> Response[Any]:
        try:
            person = people.find(request.user.person)
        except PeopleFileError as error:
            return Response({"detail": str(error)}, status_code=503)
        if person is None:
            reason = "the person is no longer in the people file"
            challenge = f'Bearer error="invalid_token", error_description="{reason}"'
            return Response(
                {"status_code": 401, "detail": reason},
                status_code=401,
                headers={"WWW-Authenticate": challenge},
            )
        return Response(dict(user_info(person)))

    @route("/logout", http_method=["GET", "POST"])
    async def logout(request: Request[Any, Any, Any]) -> Response[Any]:
        oauth = await _oauth_request(request, issuer)
        try:
            validated = provider.validate_endpoint_request("end_session", oauth)
            answer = provider.create_endpoint_response("end_session", validated)
        except OAuth2Error as error:
            detail = f"{error.error}: {error.description}"
            return _html(problem_page("Utloggingen feilet", "Sign-out failed", detail), 400)
        except ValueError:
            return _malformed()
        return signed_out() if answer is None else _response(answer)

    def signed_out() -> Response[Any]:
        return _html(signed_out_page(), 200)

    return Litestar(
        route_handlers=[
            discovery,
            jwks,
            login,
            chosen,
            token,
            userinfo,
            logout,
            *health_routes(Readiness()),
        ],
        after_request=_protected,
        exception_handlers={UnicodeDecodeError: _undecodable},
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=None,
        logging_config=None,  # stafett_runtime.logging owns the log format
    )


async def _oauth_request(request: Request[Any, Any, Any], issuer: str) -> OAuthRequest:
    """The request as Authlib reads it, its URI under the issuer (not whatever Host it names)."""
    form = await request.form() if request.method == "POST" else None
    query = request.url.query
    return OAuthRequest(
        request.method,
        f"{issuer}{request.url.path}" + (f"?{query}" if query else ""),
        request.headers,
        query=list(request.query_params.multi_items()),
        form=[
            (name, value)
            for name, value in (form.multi_items() if form is not None else [])
            if not isinstance(value, UploadFile)
        ],
    )


def _response(answer: Answer) -> Response[Any]:
    status, body, headers = answer
    fields = {name: value for name, value in headers if name.lower() != "content-type"}
    if isinstance(body, dict):
        return Response(body, status_code=status, headers=fields, media_type=MediaType.JSON)
    return Response(body or "", status_code=status, headers=fields, media_type=MediaType.TEXT)


def _refused(provider: Provider, oauth: OAuthRequest, error: OAuth2Error) -> Response[Any]:
    """To the client's redirect URI once that is known to be registered; else a page, so that
    nobody is ever sent to an address the client did not register."""
    if error.redirect_uri:
        return _response(provider.handle_error_response(oauth, error))
    detail = f"{error.error}: {error.description}" if error.description else error.error
    return _html(
        problem_page("Innloggingen kan ikke fullføres", "Sign-in cannot be completed", detail),
        400,
    )


def _people_unusable(error: PeopleFileError) -> Response[Any]:
    return _html(
        problem_page("Personlisten kan ikke brukes", "The people file cannot be used", str(error)),
        503,
    )


def _malformed() -> Response[Any]:
    detail = "a parameter holds characters that no OAuth parameter may hold"
    return _html(problem_page("Ugyldig forespørsel", "Malformed request", detail), 400)


def _undecodable(_: Request[Any, Any, Any], __: UnicodeDecodeError) -> Response[Any]:
    return Response({"status_code": 400, "detail": "the request is not UTF-8"}, status_code=400)


def _html(page: str, status: int) -> Response[str]:
    headers = {"Content-Security-Policy": CONTENT_SECURITY_POLICY}
    return Response(page, status_code=status, media_type=MediaType.HTML, headers=headers)


async def _protected(response: Response[Any]) -> Response[Any]:
    """Nothing here may be cached, framed or leak its URL (codes and states are in it)."""
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response
