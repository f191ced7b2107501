"""Traces that follow one piece of work across HTTP requests and NATS messages.

A concern raised over HTTP becomes events that other services pick up from JetStream; the trace
context rides in the NATS message headers (W3C `traceparent`/`tracestate`), so the whole chain is
one trace. Spans go

- to an OTLP collector when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`)
  is set;
- to a file of JSON lines, one span each, when `STAFETT_TRACE_FILE` names one (`stafett up
  --trace` sets it for every service): for a look at a trace without a collector;
- nowhere otherwise; the ids still tie each log line to its trace (`stafett_runtime.logging`).

What makes spans: every HTTP request but the health probes and /metrics (a server span named by
its route); every upstream event a policy processes (`stafett_runtime.processing`); each write
to a stream (`publishing`); each batch the projection applies; each email and webhook notify
sends.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from litestar.enums import ScopeType
from litestar.middleware import ASGIMiddleware
from litestar.plugins.opentelemetry import OpenTelemetryConfig
from litestar.plugins.opentelemetry.middleware import OpenTelemetryInstrumentationMiddleware
from litestar.types import ASGIApp, Middleware, Receive, Scope, Send
from opentelemetry import propagate, trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.semconv.attributes.http_attributes import HTTP_ROUTE

_OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
TRACE_FILE_VARIABLE = "STAFETT_TRACE_FILE"
# Paths that are asked every few seconds by machines: a span each would drown the real ones.
UNTRACED_PATHS = [r"^/health(/|$)", r"^/metrics$"]

_tracer = trace.get_tracer("stafett")


def configure_tracing(
    service: str,
    exporter: SpanExporter | None = None,
    *,
    set_global: bool = True,
    environ: Mapping[str, str] = os.environ,
) -> TracerProvider:
    """A tracer provider for `service` that exports to `exporter`, else to OTLP and to the trace
    file, each if configured.

    OpenTelemetry lets the global provider be set only once per process; later attempts are
    ignored with a warning.
    """
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: service}))
    if exporter is not None:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    else:
        if any(environ.get(variable) for variable in _OTLP_ENDPOINT_VARIABLES):
            # The exporter reads its endpoint, headers and timeout from the same variables.
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        if trace_file := environ.get(TRACE_FILE_VARIABLE):
            provider.add_span_processor(SimpleSpanProcessor(JsonLinesSpanExporter(trace_file)))
    if set_global:
        trace.set_tracer_provider(provider)
    return provider


class JsonLinesSpanExporter(SpanExporter):
    """Appends each span to a file as one line of JSON (OpenTelemetry's own rendering).

    Every service of `stafett up` appends to the same file: each line is one write to a file
    opened for appending, so lines of different processes never interleave.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        for span in spans:
            os.write(self._fd, (span.to_json(indent=None) + "\n").encode())
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        os.close(self._fd)


def inject_trace_context(headers: dict[str, str]) -> None:
    """Add the current trace context to the headers of an outgoing NATS message."""
    propagate.inject(headers)


@contextmanager
def publishing(stream: str, count: int) -> Iterator[trace.Span]:
    """A producer span around one write of `count` messages to `stream` (one publish, or one
    atomic batch). Inject the trace context inside it, so that whoever reads the messages
    continues from the write."""
    with _tracer.start_as_current_span(
        f"publish {stream}",
        kind=trace.SpanKind.PRODUCER,
        attributes={
            "messaging.system": "nats",
            "messaging.operation.type": "send",
            "messaging.destination.name": stream,
            "messaging.batch.message_count": count,
        },
    ) as span:
        yield span


def http_tracing_middleware(
    provider: TracerProvider | None = None, *, within: Callable[[ASGIApp], ASGIApp] | None = None
) -> list[Middleware]:
    """Middleware that gives every HTTP request but the health probes and /metrics a server span
    (global provider if None).

    Litestar moves the OpenTelemetry part outside all other middleware and exception handling,
    wherever it stands in the list, so the span covers the whole request. `within` wraps what
    runs inside the span, around the app's exception handling: the place to see every answer,
    refusals included, under the request's trace (`stafett_runtime.service`).
    """
    middleware_class = OpenTelemetryInstrumentationMiddleware
    if within is not None:
        wrap = within

        class _WithinTheSpan(OpenTelemetryInstrumentationMiddleware):
            def __init__(self, app: ASGIApp, config: OpenTelemetryConfig) -> None:
                super().__init__(wrap(app), config)

        middleware_class = _WithinTheSpan
    config = OpenTelemetryConfig(
        tracer_provider=provider,
        # Requests are measured by route in `stafett_runtime.metrics`; the instrumentation's own
        # measures would repeat them, labelled by raw path.
        meter_provider=NoOpMeterProvider(),
        scope_span_details_extractor=_span_details_before_routing,
        # One span per request: the extra spans per ASGI send and receive are noise.
        exclude_spans=["receive", "send"],
        exclude=UNTRACED_PATHS,
        middleware_class=middleware_class,
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
