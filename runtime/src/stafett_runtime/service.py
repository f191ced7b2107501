"""One shape for every service's HTTP side: a Litestar app in front of an application.

`http_app` puts together what each service would otherwise repeat: bearer-token authentication,
correlation ids, tracing, health and readiness, the OpenAPI document (at /schema), and one
mapping from domain outcomes to HTTP answers:

| outcome | status |
|---|---|
| invalid input: a field missing, unknown or of the wrong type | 422, naming field and why |
| `NotAllowed` | 403, naming the rule where one refused |
| the aggregate does not exist | 404 |
| `StaleVersion`, or a concurrent write (`IntegrityError`) | 409 |
| `RuleViolation` | 409, naming the rule |
| the population register or the event store does not answer | 503, with Retry-After |

Nothing is stored when a command is refused: the domain decides before anything is written, and
the store writes all of a command's events or none.

Application code is synchronous: handlers call it with `await call(fn, ...)`, on a worker thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, ParamSpec, TypeVar

import uvicorn
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError, OperationalError
from litestar import Litestar, Request, Response
from litestar.exceptions import ValidationException
from litestar.openapi import OpenAPIConfig
from litestar.types import ControllerRouterHandler, LifespanHook

from stafett_runtime.auth import TokenVerifier, bearer_token_auth, bearer_token_openapi
from stafett_runtime.domain import NotAllowed, RuleViolation, StaleVersion
from stafett_runtime.health import Readiness, health_routes
from stafett_runtime.kernel import Kernel
from stafett_runtime.logging import CorrelationMiddleware
from stafett_runtime.register import RegisterUnavailableError
from stafett_runtime.settings import Settings
from stafett_runtime.threads import call

__all__ = ["call", "http_app", "serve"]
from stafett_runtime.tracing import http_tracing_middleware

P = ParamSpec("P")
T = TypeVar("T")


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
    return Litestar(
        route_handlers=[*route_handlers, *health_routes(readiness)],
        middleware=[
            CorrelationMiddleware(),
            bearer_token_auth(verifier),
            *http_tracing_middleware(),
        ],
        exception_handlers={
            ValidationException: _invalid,
            NotAllowed: _not_allowed,
            AggregateNotFoundError: _not_found,
            StaleVersion: _answer(409),
            IntegrityError: _concurrent_write,
            RuleViolation: _rule_violated,
            RegisterUnavailableError: _unavailable,
            OperationalError: _unavailable,
        },
        openapi_config=OpenAPIConfig(
            title=f"Stafett {service}",
            version="1",
            description=description,
            components=components,
            security=security,
            path="/schema",
        ),
        logging_config=None,  # stafett_runtime.logging owns the log format
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )


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


def _body(status: int, detail: str, extra: Any = None) -> Response[dict[str, Any]]:
    content: dict[str, Any] = {"status_code": status, "detail": detail}
    if extra is not None:
        content["extra"] = extra
    return Response(content, status_code=status)


def _answer(status: int) -> Callable[[Request[Any, Any, Any], Exception], Response[Any]]:
    def handler(_: Request[Any, Any, Any], error: Exception) -> Response[Any]:
        return _body(status, str(error))

    return handler


def _not_allowed(_: Request[Any, Any, Any], error: NotAllowed) -> Response[Any]:
    return _body(403, str(error), None if error.rule is None else {"rule": error.rule})


def _unavailable(_: Request[Any, Any, Any], error: Exception) -> Response[Any]:
    answer = _body(503, f"unavailable, try again shortly: {error}")
    answer.headers["Retry-After"] = "1"
    return answer


def _invalid(_: Request[Any, Any, Any], error: ValidationException) -> Response[Any]:
    # Litestar says which field and why in `extra`; the status for unusable input is 422.
    return _body(422, error.detail, error.extra)


def _not_found(_: Request[Any, Any, Any], error: AggregateNotFoundError) -> Response[Any]:
    return _body(404, f"not found: {error}")


def _concurrent_write(_: Request[Any, Any, Any], error: IntegrityError) -> Response[Any]:
    return _body(409, "someone else changed it at the same time: reload and try again")


def _rule_violated(_: Request[Any, Any, Any], error: RuleViolation) -> Response[Any]:
    return _body(409, error.message, {"rule": error.rule})
