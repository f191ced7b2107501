"""Traces that follow one piece of work across HTTP requests and NATS messages.

A concern raised over HTTP becomes events that other services pick up from JetStream; the trace
context rides in the NATS message headers (W3C `traceparent`/`tracestate`), so the whole chain is
one trace. Spans go to an OTLP collector when `OTEL_EXPORTER_OTLP_ENDPOINT` (or
`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, and nowhere otherwise.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.plugins.opentelemetry import OpenTelemetryConfig
from litestar.types import ASGIApp, Middleware, Receive, Scope, Send
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.semconv.attributes.http_attributes import HTTP_ROUTE

_OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def configure_tracing(
    service: str, exporter: SpanExporter | None = None, *, set_global: bool = True
) -> TracerProvider:
    """A tracer provider for `service` that exports to `exporter`, else to OTLP if configured.

    OpenTelemetry lets the global provider be set only once per process; later attempts are
    ignored with a warning.
    """
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif any(os.environ.get(variable) for variable in _OTLP_ENDPOINT_VARIABLES):
        # The exporter reads its endpoint, headers and timeout from the same variables.
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if set_global:
        trace.set_tracer_provider(provider)
    return provider


def inject_trace_context(headers: dict[str, str]) -> None:
    """Add the current trace context to the headers of an outgoing NATS message."""
    propagate.inject(headers)


def extract_trace_context(headers: Mapping[str, str] | None) -> Context:
    """The trace context an incoming NATS message carries, to start its spans under."""
    return propagate.extract(headers or {})


def http_tracing_middleware(provider: TracerProvider | None = None) -> list[Middleware]:
    """Middleware that gives every HTTP request a server span (global provider if None).

    Litestar moves the OpenTelemetry part outside all other middleware and exception handling,
    wherever it stands in the list, so the span covers the whole request.
    """
    config = OpenTelemetryConfig(
        tracer_provider=provider,
        scope_span_details_extractor=_span_details_before_routing,
        # One span per request: the extra spans per ASGI send and receive are noise.
        exclude_spans=["receive", "send"],
    )
    return [config.middleware, _NameSpanByRoute()]


def _span_details_before_routing(scope: Scope) -> tuple[str, dict[str, Any]]:
    # The span is named by the route template once one matches (see below), never by the raw
    # path: paths hold ids, which make span names unbounded and say more than a name should.
    return str(scope.get("method", scope["type"])), {}


class _NameSpanByRoute(ASGIMiddleware):
    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Scope, receive: Receive, send: Send, next_app: ASGIApp) -> None:
        route = scope["path_template"]
        span = trace.get_current_span()
        span.update_name(f"{scope.get('method')} {route}")
        span.set_attribute(HTTP_ROUTE, route)
        await next_app(scope, receive, send)
