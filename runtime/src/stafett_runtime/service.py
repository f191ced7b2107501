"""One shape for every service's HTTP side: a Litestar app in front of an application.

`http_app` puts together what each service would otherwise repeat: bearer-token authentication,
correlation ids, tracing, a log line and metrics per request, health and readiness, metrics
(`GET /metrics`, `stafett_runtime.metrics`), the OpenAPI document and its page (at /schema,
`stafett_runtime.apidocs`), and one mapping from domain outcomes to HTTP answers, each refusal
with the body `{status_code, detail, extra?}`:

| outcome | status |
|---|---|
| invalid input: a field missing, unknown or of the wrong type | 422, naming field and why |
| `NotAllowed` | 403, naming the rule where one refused |
| the aggregate does not exist | 404 |
| `StaleVersion`, or a concurrent write (`IntegrityError`) | 409 |
| `RuleViolation` | 409, naming the rule |
| the population register or the event store does not answer | 503, with Retry-After |
| a body that is not valid UTF-8 or JSON, or nests too deeply | 400 |
| a body over `MAX_BODY_BYTES` | 413 |
| anything else (a fault of ours) | 500, with no detail; the exception is logged |

Every request is logged once, when it is answered, under its correlation id (the client's
`X-Correlation-Id`, or a new one, returned in the answer) and its trace id: method, route
template, status, duration, and the verified token's person and role (never the token, never the
raw path, never a body). A refusal is logged at info with its rule and reason, a 5xx at error
with the exception. Health probes and /metrics are neither logged nor traced nor measured.

Each process also serves `GET /metrics` (open, like the health routes, and not in the OpenAPI
document) and reports each policy's lag and parked events as gauges.

A service with policies (`Readiness.add_policy`) also has `POST /processing/parked/retry`, for
an administrator: it processes the policies' parked events again (`stafett retry`), all of them,
those of one `upstream`, or the one at `position`, and answers what became of each (404 when
nothing is parked there). It is an operator's route, like the health routes: not in the OpenAPI
document.

Nothing is stored when a command is refused: the domain decides before anything is written, and
the store writes all of a command's events or none.

Application code is synchronous: handlers call it with `await call(fn, ...)`, on a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any

import msgspec
import structlog
import uvicorn
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, OperationalError
from litestar import Litestar, Request, Response, post
from litestar.exceptions import HTTPException, NotFoundException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.openapi import OpenAPIConfig
from litestar.params import JSONBody
from litestar.status_codes import HTTP_200_OK
from litestar.types import (
    ControllerRouterHandler,
    LifespanHook,
)

from stafett_contracts.envelope import ServiceRef
from stafett_contracts.identity import Actor, Role
from stafett_runtime import metrics
from stafett_runtime.apidocs import LocalSwaggerUI, document_refusals, refusals, schema_router
from stafett_runtime.auth import (
    TokenVerifier,
    bearer_token_auth,
    bearer_token_openapi,
    require_role,
)
from stafett_runtime.domain import NotAllowed, RuleViolation, StaleVersion
from stafett_runtime.follower import Follower
from stafett_runtime.health import Readiness, health_routes
from stafett_runtime.kernel import Kernel
from stafett_runtime.keystore import ChildErasedError, KeyStoreError
from stafett_runtime.processing import RetryOutcome
from stafett_runtime.register import RegisterUnavailableError
from stafett_runtime.served import ServedRequests, metrics_route, refused
from stafett_runtime.settings import Settings
from stafett_runtime.threads import call
from stafett_runtime.tracing import http_tracing_middleware

__all__ = ["MAX_BODY_BYTES", "call", "http_app", "refusals", "serve"]

SCHEMA_PATH = "/schema"
# The largest request body a service reads: a command with every free-text field at its limit
# fits many times over; anything larger is refused (413) before it is parsed.
MAX_BODY_BYTES = 256 * 1024

log = structlog.get_logger(__name__)


def http_app(
    *,
    service: str,
    route_handlers: Sequence[ControllerRouterHandler],
    readiness: Readiness,
    verifier: TokenVerifier | None = None,
    kernel: Kernel | None = None,
    description: str = "",
    on_startup: Sequence[LifespanHook] = (),
    on_shutdown: Sequence[LifespanHook] = (),
) -> Litestar:
    """The service's app; with a `kernel`, its connection opens first and closes last, and its
    verifier checks the tokens."""
    if kernel is not None:
        verifier = kernel.verifier
        readiness.add("nats", kernel.check)
        on_startup = [kernel.open, *on_startup]
        on_shutdown = [*on_shutdown, kernel.close]
    if verifier is None:
        raise TypeError("http_app needs a kernel or a verifier")
    components, security = bearer_token_openapi()
    metrics.configure_metrics(service)
    stop_watching: list[Callable[[], None]] = []

    async def watch_policies() -> None:
        for follower in readiness.policies.values():
            stop_watching.extend(_watch(follower))

    async def stop_watching_policies() -> None:
        while stop_watching:
            stop_watching.pop()()

    app = Litestar(
        route_handlers=[
            *route_handlers,
            *health_routes(readiness),
            *processing_routes(readiness.policies),
            metrics_route,
        ],
        middleware=[
            bearer_token_auth(verifier),
            *http_tracing_middleware(within=ServedRequests),
        ],
        exception_handlers={
            ValidationException: _invalid,
            HTTPException: _http_error,
            NotAllowed: _not_allowed,
            AggregateNotFoundError: _not_found,
            StaleVersion: _stale,
            IntegrityError: _concurrent_write,
            RuleViolation: _rule_violated,
            ChildErasedError: _child_erased,
            KeyStoreError: _unavailable,
            RegisterUnavailableError: _unavailable,
            OperationalError: _unavailable,
            UnicodeDecodeError: _unreadable_body,
            RecursionError: _unreadable_body,
            Exception: _failed,
        },
        request_max_body_size=MAX_BODY_BYTES,
        openapi_config=OpenAPIConfig(
            title=f"Stafett {service}",
            version="1",
            description=description,
            components=components,
            security=security,
            path=SCHEMA_PATH,
            render_plugins=[LocalSwaggerUI()],
            openapi_router=schema_router(SCHEMA_PATH),
        ),
        logging_config=None,  # stafett_runtime.logging owns the log format
        on_startup=[*on_startup, watch_policies],
        on_shutdown=[stop_watching_policies, *on_shutdown],
    )
    document_refusals(app.openapi_schema)
    return app


def _watch(follower: Follower) -> list[Callable[[], None]]:
    """A policy's lag and parked events as gauges, read from the store when metrics are read."""
    labels = {"policy": follower.policy.name, "upstream": follower.upstream.name}
    return [
        metrics.observe("stafett.processing.lag", labels, follower.loop.lag),
        metrics.observe("stafett.processing.parked", labels, lambda: len(follower.loop.parked())),
    ]


class RetryParked(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Which parked events to process again: every one, those of one upstream, or one."""

    upstream: ServiceRef | None = None  # the service whose stream holds it: "consent"
    position: Annotated[int, msgspec.Meta(ge=1)] | None = None  # its sequence in that stream


class RetryAnswer(msgspec.Struct, frozen=True):
    retried: list[RetryOutcome]


def processing_routes(policies: Mapping[str, Follower]) -> list[HTTPRouteHandler]:
    """The administrator's route to the policies' parked events; none without policies."""
    if not policies:
        return []

    @post(
        "/processing/parked/retry",
        guards=[require_role(Role.ADMINISTRATOR)],
        include_in_schema=False,
        status_code=HTTP_200_OK,
    )
    async def retry(request: Request[Actor, Any, Any], data: JSONBody[RetryParked]) -> RetryAnswer:
        followers = [f for f in policies.values() if data.upstream in (None, f.upstream.name)]
        if not followers:
            raise NotFoundException(f"this service follows no stream named {data.upstream}")
        retried: list[RetryOutcome] = []
        for follower in followers:
            retried += await call(follower.retry, request.user, data.position)
        if data.position is not None and not retried:
            raise NotFoundException(f"nothing is parked at position {data.position}")
        return RetryAnswer(retried=retried)

    return [retry]


def serve(app: Litestar, settings: Settings) -> None:
    """Serve until SIGTERM or Ctrl-C; uvicorn then stops taking requests and finishes the rest."""
    uvicorn.run(
        app,
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=10,
    )


def _answer(
    request: Request[Any, Any, Any],
    status: int,
    detail: str,
    extra: Any = None,
    error: BaseException | None = None,
) -> Response[dict[str, Any]]:
    """The answer; why it was refused (its rule) or failed (the exception: the caller sees only
    that it failed) goes into the request's one log line (`ServedRequests`)."""
    refused(request, detail, extra.get("rule") if isinstance(extra, dict) else None, error)
    content: dict[str, Any] = {"status_code": status, "detail": detail}
    if extra is not None:
        content["extra"] = extra
    return Response(content, status_code=status)


def _http_error(request: Request[Any, Any, Any], error: HTTPException) -> Response[Any]:
    answer = _answer(request, error.status_code, error.detail, error.extra or None)
    answer.headers.update(error.headers or {})
    return answer


def _not_allowed(request: Request[Any, Any, Any], error: NotAllowed) -> Response[Any]:
    return _answer(request, 403, str(error), None if error.rule is None else {"rule": error.rule})


def _unavailable(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    answer = _answer(request, 503, f"unavailable, try again shortly: {error}")
    answer.headers["Retry-After"] = "1"
    return answer


def _invalid(request: Request[Any, Any, Any], error: ValidationException) -> Response[Any]:
    # Litestar says which field and why in `extra`; the status for unusable input is 422.
    return _answer(request, 422, error.detail, error.extra)


def _not_found(request: Request[Any, Any, Any], error: AggregateNotFoundError) -> Response[Any]:
    return _answer(request, 404, f"not found: {error}")


def _stale(request: Request[Any, Any, Any], error: StaleVersion) -> Response[Any]:
    return _answer(request, 409, str(error), {"rule": "expected-version"})


def _concurrent_write(request: Request[Any, Any, Any], error: IntegrityError) -> Response[Any]:
    detail = "someone else changed it at the same time: reload and try again"
    return _answer(request, 409, detail, {"rule": "one-write-at-a-time"})


ERASED_CHILD_STAYS_ERASED = "erased-child-stays-erased"


def _rule_violated(request: Request[Any, Any, Any], error: RuleViolation) -> Response[Any]:
    return _answer(request, 409, error.message, {"rule": error.rule})


def _child_erased(request: Request[Any, Any, Any], error: ChildErasedError) -> Response[Any]:
    # Nothing new is written about a child whose key was deleted: sealing refuses, and so do we.
    return _answer(request, 409, str(error), {"rule": ERASED_CHILD_STAYS_ERASED})


def _unreadable_body(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    # Raised while the JSON body is decoded: not valid UTF-8, or nested deeper than the decoder
    # goes. The body is the client's mistake, so it is a 400, never a 500.
    why = "is not valid UTF-8" if isinstance(error, UnicodeDecodeError) else "nests too deeply"
    return _answer(request, 400, f"the request body {why}", {"key": "body"})


def _failed(request: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    return _answer(
        request, 500, "internal error: it is logged under this request's id", None, error
    )
