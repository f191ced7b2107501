"""Logs that a machine can follow one request or message through every service.

Each line on stdout is one JSON object with the time, the level, the event, the service and
whatever is bound to the current context: above all the `correlation_id` that travels with a
request and the events it causes, and the `trace_id` of the OpenTelemetry span current where the
line is logged, so a log line leads to its trace and back. Both are on every line logged while a
request or an upstream event is handled, whoever logs it. Logs from libraries that use the
standard `logging` module get the same shape, so a log collector needs to understand only one
format. The console format is for people at a terminal.

What is logged of the work itself: one line per HTTP request (`stafett_runtime.service`), one
per upstream event a policy processes (`stafett_runtime.metrics.event_processed`). Never a token
and never personal data: a person by their id, a case by its pseudonymous id.
"""

from __future__ import annotations

import logging
import re
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import structlog
from litestar.datastructures import Headers
from litestar.types import Scope
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from structlog.typing import EventDict, Processor, WrappedLogger

CORRELATION_HEADER = "X-Correlation-Id"
BAGGAGE_KEY = "correlation_id"
# A client's id is echoed into logs and headers, so only a plain token of sane length is taken.
_ACCEPTABLE_CORRELATION_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_HANDLER_NAME = "stafett"


def configure_logging(service: str, level: str = "INFO", fmt: str = "json") -> None:
    """Send structlog and standard-library logs, from `level` up, to stdout in format `fmt`.

    Calling it again replaces the earlier configuration. Build the Litestar app with
    `logging_config=None` (and run uvicorn with `log_config=None`): their defaults replace the
    root logger's handlers, and with them this configuration.
    """
    renderer: Processor
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
    elif fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=sys.stdout.isatty())
    else:
        raise ValueError(f"unknown log format {fmt!r}: expected json or console")

    def add_service(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
        event.setdefault("service", service)
        return event

    common: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        add_trace_id,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_service,
    ]
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *common,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=common,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            # JSON carries tracebacks as data; the console renderer prints them itself.
            *([structlog.processors.dict_tracebacks] if fmt == "json" else []),
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(formatter)

    root = logging.getLogger()
    for earlier in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(earlier)
    root.addHandler(handler)
    root.setLevel(level.upper())


def add_trace_id(_: WrappedLogger, __: str, event: EventDict) -> EventDict:
    """The id of the trace being recorded where the line is logged, if any."""
    span_context = trace.get_current_span().get_span_context()
    if span_context.is_valid:
        event.setdefault("trace_id", format(span_context.trace_id, "032x"))
    return event


@contextmanager
def correlation(correlation_id: str | None = None) -> Iterator[str]:
    """Bind a correlation id (a new one when None) to everything logged inside; yield it.

    It also rides in the OpenTelemetry baggage, so it travels wherever the trace context does:
    into the headers of the events written inside, and on to the services that handle them.
    """
    correlation_id = correlation_id or uuid.uuid4().hex
    token = otel_context.attach(baggage.set_baggage(BAGGAGE_KEY, correlation_id))
    try:
        with structlog.contextvars.bound_contextvars(correlation_id=correlation_id):
            yield correlation_id
    finally:
        otel_context.detach(token)


def current_correlation_id() -> str | None:
    """The correlation id bound to the current context, to pass on to the next hop."""
    value = structlog.contextvars.get_contextvars().get("correlation_id")
    return value if isinstance(value, str) else None


def correlation_id_in(context: otel_context.Context) -> str | None:
    """The correlation id carried by an incoming message's context (see `correlation`)."""
    value = baggage.get_baggage(BAGGAGE_KEY, context)
    return value if isinstance(value, str) and _ACCEPTABLE_CORRELATION_ID.fullmatch(value) else None


def offered_correlation_id(scope: Scope) -> str | None:
    """The request's `X-Correlation-Id`, if it is a plain token of sane length."""
    offered = Headers.from_scope(scope).get(CORRELATION_HEADER)
    return offered if offered and _ACCEPTABLE_CORRELATION_ID.fullmatch(offered) else None
