"""The web app put together: pages, templates, sessions, CSRF, security headers, error pages.

Every answer carries a Content-Security-Policy that lets the page load only what this app serves
(no script at all, no inline style, nothing from elsewhere; a form may go only here or to the
identity provider, which logout returns through), and pages are never cached. Every form
carries a CSRF token (Litestar's double-submit cookie, signed with the app's secret).

How an outcome becomes a page:

| outcome | the person sees |
|---|---|
| not signed in, or the sign-in has ended (a service answered 401 too) | the identity provider, then the page they asked for |
| a service refused (403) | the 403 page, with the rule's message |
| no such page or case (404) | the 404 page |
| a value in the address the page does not take (400) | the 400 page, naming it |
| a service said the request breaks a rule (409) | the 409 page, with the rule's message |
| a service does not answer (503) | try again shortly, with Retry-After |
| a form whose CSRF token does not match (403) | reload and send it again |
| anything else (a fault of ours) | the 500 page; the exception is logged under the request's id |

Logs name the route's template, never the address itself, a form's content or a person.
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import httpx
from jinja2 import Environment, FileSystemLoader, StrictUndefined
from litestar import Litestar
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import MutableScopeHeaders, State
from litestar.enums import ScopeType
from litestar.exceptions import HTTPException, NotFoundException, PermissionDeniedException
from litestar.middleware import ASGIMiddleware
from litestar.plugins.jinja import JinjaTemplateEngine
from litestar.response import Redirect, Response, Template
from litestar.static_files import create_static_files_router
from litestar.template import TemplateConfig
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from stafett_runtime.auth import TokenVerifier
from stafett_runtime.directory import DirectorySource
from stafett_runtime.health import Readiness, health_routes
from stafett_runtime.logging import current_correlation_id
from stafett_runtime.served import ServedRequests, metrics_route, refused
from stafett_runtime.tracing import http_tracing_middleware
from stafett_web.apis import (
    Conflict,
    Invalid,
    NotFound,
    Refused,
    ServiceError,
    Services,
    SignInAgain,
    Unavailable,
)
from stafett_web.routes import ROUTES
from stafett_web.routes.common import BadField
from stafett_web.sessions import STORE, ForgetEndedSessions, session_config, session_store
from stafett_web.settings import WebSettings
from stafett_web.signin import SIGNED_IN, OpenIdSignIn
from stafett_web.web import AnyRequest, SignInNeeded, Web, page, return_path

HERE = Path(__file__).parent
CSRF_COOKIE = "stafett_csrf"
MAX_BODY_BYTES = 256 * 1024  # the services' own limit: a form larger than that is refused


def create_app(
    settings: WebSettings,
    *,
    verifier: TokenVerifier,
    directory: DirectorySource,
    services_client: httpx.AsyncClient | None = None,
    provider_client: dict[str, Any] | None = None,
) -> Litestar:
    """The app; tests pass their own HTTP transports to the services and the provider."""
    services = Services(settings.service_urls, services_client)
    signin = OpenIdSignIn(settings, verifier, provider_client)
    web = Web(
        settings=settings,
        services=services,
        signin=signin,
        directory=directory,
        zone=ZoneInfo(settings.timezone),
    )
    policy = _policy(signin.provider_origin)
    store = session_store(settings)
    forget = ForgetEndedSessions(store)
    environment = Environment(
        loader=FileSystemLoader(HERE / "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    return Litestar(
        route_handlers=[
            *ROUTES,
            create_static_files_router(path="/static", directories=[HERE / "static"]),
            *health_routes(Readiness()),
            metrics_route,
        ],
        middleware=[
            SecurityHeaders(policy),
            session_config(settings).middleware,
            # As every service: correlation ids, a log line and measures per request, a span.
            *http_tracing_middleware(within=ServedRequests),
        ],
        csrf_config=CSRFConfig(
            secret=settings.secret,
            cookie_name=CSRF_COOKIE,
            cookie_secure=settings.secure_cookies,
            cookie_httponly=True,
            cookie_samesite="lax",
            exclude=["^/health/", "^/static/"],
        ),
        template_config=TemplateConfig(engine=JinjaTemplateEngine.from_environment(environment)),
        stores={STORE: store},
        state=State({"web": web, "policy": policy}),
        exception_handlers={
            SignInNeeded: _sign_in,
            SignInAgain: _sign_in_again,
            ServiceError: _service_error,
            BadField: _bad_field,
            HTTPException: _http_error,
            Exception: _failed,
        },
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=None,
        logging_config=None,  # stafett_runtime.logging owns the log format
        on_startup=[forget.start],
        on_shutdown=[forget.stop, services.close],
    )


def _policy(provider_origin: str) -> str:
    return "; ".join(
        [
            "default-src 'none'",
            "style-src 'self'",
            "img-src 'self'",
            f"form-action 'self' {provider_origin}",
            "frame-ancestors 'none'",
            "base-uri 'none'",
        ]
    )


def security_headers(policy: str, *, static: bool = False) -> dict[str, str]:
    """The Content-Security-Policy and its companions; pages are never cached."""
    return {
        "Content-Security-Policy": policy,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "X-Frame-Options": "DENY",
        "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
        "Cross-Origin-Opener-Policy": "same-origin",
        "Cache-Control": "public, max-age=3600" if static else "no-store",
    }


class SecurityHeaders(ASGIMiddleware):
    """`security_headers` on every answer of a route (an address no route has gets them from
    its error page)."""

    scopes = (ScopeType.HTTP,)

    def __init__(self, policy: str) -> None:
        self.policy = policy

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        headers = security_headers(self.policy, static=scope["path"].startswith("/static/"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableScopeHeaders.from_message(message).update(headers)
            await send(message)

        await next_app(scope, receive, send_with_headers)


# How outcomes become pages


def _logged(request: AnyRequest, status: int, **said: Any) -> None:
    """Why the page was refused, for the request's one log line (`ServedRequests`)."""
    rule = said.pop("rule", None)
    reason = ", ".join(f"{name} {value}" for name, value in said.items() if value is not None)
    refused(request, reason or str(status), rule)


def _sign_in(request: AnyRequest, needed: SignInNeeded) -> Response[Any]:
    return Redirect(f"/login?next={quote(needed.next_path, safe='/')}", status_code=303)


def _sign_in_again(request: AnyRequest, error: SignInAgain) -> Response[Any]:
    """A service no longer takes the person's token: sign in again, then back here."""
    if request.scope.get("session"):
        request.session.pop(SIGNED_IN, None)
    return _sign_in(request, SignInNeeded(return_path(request)))


def _error_page(
    request: AnyRequest, status: int, message: str | None = None, rule: str | None = None
) -> Template:
    key = f"error.{status}" if status in (400, 403, 404, 409, 413, 500, 503) else "error.other"
    answer = page(
        request,
        "error.html",
        f"{key}.title",
        status=status,
        heading=f"{key}.title",
        explanation=f"{key}.text",
        message=message,
        rule=rule,
        correlation_id=current_correlation_id(),
    )
    answer.headers.update(security_headers(request.app.state.policy))
    if status == 503:
        answer.headers["Retry-After"] = "5"
    return answer


def _service_error(request: AnyRequest, error: ServiceError) -> Template:
    _logged(request, error.status, service=error.service, rule=error.rule)
    match error:
        case Refused():
            return _error_page(request, 403, error.detail, error.rule)
        case NotFound():
            return _error_page(request, 404)
        case Invalid():
            return _error_page(request, 400, error.detail)
        case Conflict():
            return _error_page(request, 409, error.detail, error.rule)
        case Unavailable():
            return _error_page(request, 503)
        case _:
            return _error_page(request, 503)


def _bad_field(request: AnyRequest, error: BadField) -> Template:
    _logged(request, 400, field=error.field)
    return _error_page(request, 400, f"{error.field}")


def _http_error(request: AnyRequest, error: HTTPException) -> Template:
    status = error.status_code
    _logged(request, status)
    if isinstance(error, PermissionDeniedException) and "CSRF" in str(error.detail):
        # A form from before the app's secret changed, or from another site. The cookie is
        # dropped, so the form reloaded carries a fresh token and goes through.
        answer = _error_page(request, 403, None, "csrf")
        answer.delete_cookie(CSRF_COOKIE)
        return answer
    if isinstance(error, NotFoundException) or status == 404:
        return _error_page(request, 404)
    if status == 405:
        return _error_page(request, 404)
    fields = [
        str(e.get("key")) for e in (error.extra or []) if isinstance(e, dict) and e.get("key")
    ]
    return _error_page(request, status if status < 500 else 500, ", ".join(fields) or None)


def _failed(request: AnyRequest, error: Exception) -> Template:
    refused(request, "failed", error=error)  # logged once, with the request, as request_failed
    return _error_page(request, 500)
