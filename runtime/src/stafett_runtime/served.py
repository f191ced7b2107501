"""What every HTTP app of the platform does around each request, the web app's too: binds its
correlation id (the client's `X-Correlation-Id`, or a new one, returned in the answer), logs it
in one line once it is answered, under its correlation id and trace id (method, route template,
status, duration, the verified person and role; never the token, the raw path or a body),
measures it (`stafett_runtime.metrics`), and serves `GET /metrics`.

A refusal is logged at info with its rule and reason (the app's exception handlers say them with
`refused`), a 5xx at error with the exception. Health probes and /metrics are neither logged
nor traced nor measured.

    Litestar(
        route_handlers=[..., metrics_route],
        middleware=[*http_tracing_middleware(within=ServedRequests)],
    )
"""

from __future__ import annotations

import time
from typing import Any, NamedTuple

import structlog
from litestar import Request, get
from litestar.datastructures import MutableScopeHeaders
from litestar.enums import ScopeType
from litestar.types import ASGIApp, HTTPScope, Message, Receive, Scope, Send

from stafett_contracts.identity import Actor
from stafett_runtime import metrics
from stafett_runtime.logging import CORRELATION_HEADER, correlation, offered_correlation_id
from stafett_runtime.threads import call

__all__ = ["ServedRequests", "metrics_route", "refused"]

log = structlog.get_logger(__name__)


@get(
    "/metrics",
    include_in_schema=False,
    exclude_from_auth=True,  # open, as the health routes: scraped by Prometheus
    media_type=metrics.MEDIA_TYPE,
)
async def metrics_route() -> bytes:
    return await call(metrics.prometheus_text)  # gauges read the store: off the event loop


# Requests that machines make every few seconds: a log line or a measurement each is noise.
_UNRECORDED = ("/health/", "/metrics")
_REFUSED = "stafett.refused"  # where an answer of `_answer` says why, in the request's state
# What a refusal without a named rule was about, for the commands' metric.
_REFUSED_FOR = {
    400: "unreadable-body",
    401: "not-authenticated",
    403: "not-allowed",
    404: "not-found",
    409: "conflict",
    413: "body-too-large",
    422: "invalid-input",
}


class _Refusal(NamedTuple):
    reason: str
    rule: str | None
    error: BaseException | None


class ServedRequests:
    """Around each request, inside its trace span (`tracing.http_tracing_middleware`'s `within`)
    and outside the app's exception handling, so that it sees every answer: binds the request's
    correlation id, returns it in `X-Correlation-Id`, and once the request is answered logs it in
    one line and measures it (`stafett_runtime.metrics`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        with correlation(offered_correlation_id(scope)) as correlation_id:
            status = 500  # unless the app answers

            async def send_with_correlation_id(message: Message) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                    MutableScopeHeaders.from_message(message)[CORRELATION_HEADER] = correlation_id
                await send(message)

            if scope["path"].startswith(_UNRECORDED):
                await self.app(scope, receive, send_with_correlation_id)
                return
            started = time.perf_counter()
            try:
                await self.app(scope, receive, send_with_correlation_id)
            except Exception as escaped:  # the exception handlers failed too
                _served(scope, 500, time.perf_counter() - started, escaped)
                raise
            _served(scope, status, time.perf_counter() - started)


def _served(
    scope: HTTPScope, status: int, seconds: float, escaped: Exception | None = None
) -> None:
    """The request's one log line, and its measures."""
    method = scope["method"]
    # The route template once one matched; never the raw path, which may hold anything.
    route = scope.get("path_template") if scope.get("route_handler") is not None else None
    refusal = scope.get("state", {}).get(_REFUSED)
    if not isinstance(refusal, _Refusal):
        refusal = _Refusal("failed" if escaped else "", None, escaped)
    actor = scope.get("user")
    who = {"person": actor.person, "role": str(actor.role)} if isinstance(actor, Actor) else {}
    line = {
        "method": method,
        "route": route,
        "status": status,
        "duration_ms": round(seconds * 1000, 1),
        **who,
    }
    if status >= 500:
        log.error("request_failed", **line, reason=refusal.reason, exc_info=refusal.error)
    elif status >= 400:
        log.info("request_refused", **line, reason=refusal.reason[:500], rule=refusal.rule)
    else:
        log.info("request_served", **line)
    metrics.request_served(method, route, status, seconds)
    if method == "POST" and route is not None:
        if status < 400:
            metrics.command_answered(route, "accepted")
        elif status < 500:
            rule = refusal.rule or _REFUSED_FOR.get(status, str(status))
            metrics.command_answered(route, "refused", rule)
        else:
            metrics.command_answered(route, "failed")


def refused(
    request: Request[Any, Any, Any],
    reason: str,
    rule: str | None = None,
    error: BaseException | None = None,
) -> None:
    """Why the request was refused (its rule) or failed (the exception), for its log line."""
    request.scope.setdefault("state", {})[_REFUSED] = _Refusal(reason, rule, error)
