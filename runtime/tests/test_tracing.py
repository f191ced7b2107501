"""One trace follows the work from an HTTP request through the NATS messages it causes.

OpenTelemetry lets a process set its global tracer provider only once, so these tests use the
provider objects directly, and the one test of the global provider runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from litestar import Litestar, get
from litestar.params import FromPath
from litestar.testing import TestClient
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from stafett_runtime.tracing import (
    configure_tracing,
    http_tracing_middleware,
    inject_trace_context,
    publishing,
)


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def provider(exporter: InMemorySpanExporter) -> Iterator[TracerProvider]:
    provider = configure_tracing("case", exporter, set_global=False)
    yield provider
    provider.shutdown()


def test_spans_name_the_service_that_made_them(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with provider.get_tracer("test").start_as_current_span("raise_concern"):
        pass

    [span] = exporter.get_finished_spans()
    assert span.resource.attributes["service.name"] == "case"


@get("/concerns/{concern_id:str}", sync_to_thread=False)
def show_concern(concern_id: FromPath[str]) -> dict[str, str]:
    return {"concern_id": concern_id}


def traced_app(provider: TracerProvider) -> Litestar:
    return Litestar(
        route_handlers=[show_concern],
        middleware=http_tracing_middleware(provider),
        logging_config=None,
    )


def test_an_http_request_gets_one_server_span_named_by_its_route(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with TestClient(traced_app(provider)) as client:
        response = client.get("/concerns/c-1")

    assert response.status_code == 200
    [span] = exporter.get_finished_spans()
    assert span.kind is SpanKind.SERVER
    assert span.name == "GET /concerns/{concern_id}"
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/concerns/{concern_id}"
    assert span.attributes["http.status_code"] == 200


def test_a_request_that_matches_no_route_gets_a_span_named_by_its_method_alone(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    with TestClient(traced_app(provider)) as client:
        response = client.get("/cases/c-1/children")

    assert response.status_code == 404
    [span] = exporter.get_finished_spans()
    assert span.name == "GET"
    assert span.attributes is not None
    assert span.attributes["http.status_code"] == 404


def test_an_http_request_that_carries_trace_context_continues_that_trace(
    provider: TracerProvider, exporter: InMemorySpanExporter
) -> None:
    caller_trace_id = "4bf92f3577b34da6a3ce929d0e0e4736"
    traceparent = f"00-{caller_trace_id}-00f067aa0ba902b7-01"

    with TestClient(traced_app(provider)) as client:
        client.get("/concerns/c-1", headers={"traceparent": traceparent})

    [span] = exporter.get_finished_spans()
    assert format(span.context.trace_id, "032x") == caller_trace_id


@pytest.fixture
def otlp_collector() -> Iterator[tuple[str, list[str]]]:
    """A stand-in OTLP collector: its URL, and the paths it received posts on."""
    received: list[str] = []

    class Collector(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            received.append(self.path)
            self.send_response(200)
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", received
    server.shutdown()
    server.server_close()


def test_spans_go_to_the_otlp_endpoint_when_one_is_configured(
    monkeypatch: pytest.MonkeyPatch, otlp_collector: tuple[str, list[str]]
) -> None:
    endpoint, received = otlp_collector
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    provider = configure_tracing("case", set_global=False)

    with provider.get_tracer("test").start_as_current_span("raise_concern"):
        pass
    provider.force_flush()
    provider.shutdown()

    assert received == ["/v1/traces"]


def test_the_provider_becomes_the_global_one_when_asked() -> None:
    program = textwrap.dedent(
        """
        from opentelemetry import trace
        from stafett_runtime.tracing import configure_tracing

        assert configure_tracing("case") is trace.get_tracer_provider()
        assert configure_tracing("meeting", set_global=False) is not trace.get_tracer_provider()
        """
    )
    subprocess.run([sys.executable, "-c", program], check=True, timeout=60)


def test_spans_go_to_the_trace_file_as_json_lines_when_one_is_named(tmp_path: Path) -> None:
    # Given a service told to write its spans to a file (`stafett up --trace`)
    trace_file = tmp_path / "traces.jsonl"
    provider = configure_tracing(
        "case", set_global=False, environ={"STAFETT_TRACE_FILE": str(trace_file)}
    )

    # When it records two spans
    tracer = provider.get_tracer("test")
    with tracer.start_as_current_span("raise_concern"), tracer.start_as_current_span("append"):
        pass
    provider.shutdown()

    # Then each is one line of JSON, naming its service and trace
    inner, outer = (json.loads(line) for line in trace_file.read_text().splitlines())
    assert (inner["name"], outer["name"]) == ("append", "raise_concern")
    assert inner["context"]["trace_id"] == outer["context"]["trace_id"]
    assert outer["resource"]["attributes"]["service.name"] == "case"


def test_a_write_to_a_stream_is_a_producer_span_whose_readers_continue_its_trace(
    spans: InMemorySpanExporter,
) -> None:
    headers: dict[str, str] = {}
    with publishing("CASE", 3) as publish:
        inject_trace_context(headers)

    [span] = spans.get_finished_spans()
    assert span.name == "publish CASE"
    assert span.kind is SpanKind.PRODUCER
    assert span.attributes is not None
    assert span.attributes["messaging.destination.name"] == "CASE"
    assert span.attributes["messaging.batch.message_count"] == 3
    assert format(publish.get_span_context().span_id, "016x") in headers["traceparent"]
