"""One trace, and one correlation id, follow work from one service's write to another's handling."""

from __future__ import annotations

import time

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from example_apps import Orders, Tallies
from stafett_runtime.logging import correlation
from stafett_runtime.processing import ProcessingLoop, Upstream


def test_the_handling_in_another_application_continues_the_trace_of_the_write(
    spans: InMemorySpanExporter, orders: Orders, env: dict[str, str]
) -> None:
    # Given an order placed inside a span of the orders service, for request "req-42"
    with (
        correlation("req-42"),
        trace.get_tracer("orders").start_as_current_span("place order") as placing,
    ):
        orders.place()
    # When the tallies service handles the event from the stream
    tallies = Tallies(env)
    loop = ProcessingLoop(tallies, Upstream.named("orders", env))
    loop.start()
    try:
        deadline = time.monotonic() + 30
        while loop.lag() and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        loop.stop()
        tallies.close()
    # Then the write is a producer span under the placing span
    finished = spans.get_finished_spans()
    writes = [s for s in finished if s.name == "publish ORDERS"]
    assert len(writes) == 1
    (write,) = writes
    assert write.kind == trace.SpanKind.PRODUCER
    assert write.parent is not None
    assert write.parent.span_id == placing.get_span_context().span_id
    # And its handling span belongs to the same trace, as a child of the write
    handling = [s for s in finished if s.name == "process Order.Placed"]
    assert len(handling) == 1
    (span,) = handling
    assert span.context is not None
    assert span.parent is not None
    assert span.context.trace_id == placing.get_span_context().trace_id
    assert write.context is not None
    assert span.parent.span_id == write.context.span_id
    assert span.kind == trace.SpanKind.CONSUMER
    # And the handling is correlated with the request that caused it
    assert span.attributes is not None
    assert span.attributes["correlation_id"] == "req-42"
