"""What every service counts and measures, for dashboards and alerts.

The metrics are OpenTelemetry's. Each service serves them as Prometheus text on its own
`GET /metrics` (open like /health, left out of the OpenAPI document), and pushes them over OTLP
when `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`) is set, as traces
are; the deploy collector serves those to Prometheus. Names as Prometheus shows them:

| metric | kind | labels | what |
|---|---|---|---|
| `http_server_request_duration_seconds` | histogram | `http_request_method`, `http_route`, `http_response_status_code` | every request (health probes and /metrics aside), by route template, never by path |
| `stafett_commands_total` | counter | `command`, `outcome`, `rule` | commands over HTTP: `accepted`, `refused` (with the rule, or what was wrong: `invalid-input`, `not-authenticated`, ...) or `failed` |
| `stafett_events_appended_total` | counter | `stream` | events written to the service's stream |
| `stafett_events_processed_total` | counter | `policy`, `upstream`, `outcome` | upstream events a policy handled: `processed`, `already processed`, `parked` |
| `stafett_processing_lag` | gauge | `policy`, `upstream` | upstream events a policy has still to process (the true lag) |
| `stafett_processing_parked` | gauge | `policy`, `upstream` | parked upstream events not yet processed again |
| `stafett_notifications_total` | counter | `channel`, `outcome` | delivery attempts of notify: `sent`, or `failed` (retried, then `NotificationFailed`) |
| `stafett_projection_applied_total` | counter | `stream` | events applied to the read models |
| `stafett_archive_deliveries_total` | counter | `archive`, `outcome` | closed cases handed to the archive (`folder` or `http`): `delivered`, or `failed` (tried again later) |
| `stafett_erasures_total` | counter | `reason` | children erased (their key deleted), by the fixed reason: `retention_period_ended`, `erasure_requested`, `registered_in_error` |
| `stafett_projection_lag` | gauge | `stream` | events the read models have still to apply (as `/lag` says) |
| `stafett_nats_reconnects_total` | counter | `connection` | the NATS connection came back after it was lost |

A policy is labelled by the name of its process application and the stream it follows
(`policy="notify", upstream="case"`). No label holds a person, a case or anything else a request
names: their number stays bounded.
Gauges are read when the metrics are collected (`observe`), from a worker thread, so that
reading one may ask the store.
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import structlog
from opentelemetry import metrics
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from prometheus_client import CollectorRegistry, PlatformCollector, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

__all__ = [
    "MEDIA_TYPE",
    "archive_delivery_attempted",
    "child_erased",
    "command_answered",
    "configure_metrics",
    "event_processed",
    "events_appended",
    "nats_reconnected",
    "notification_attempted",
    "observe",
    "projection_applied",
    "prometheus_text",
    "request_served",
]

MEDIA_TYPE = CONTENT_TYPE_LATEST.removesuffix("; charset=utf-8")  # the server adds the charset
_OTLP_ENDPOINT_VARIABLES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT")
# Seconds, for requests that take from a millisecond to the longest a client waits.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)

log = structlog.get_logger(__name__)
# Instruments made before the provider is configured are bound to it once it is.
_meter = metrics.get_meter("stafett")

_requests = _meter.create_histogram(
    "http.server.request.duration",
    unit="s",
    description="HTTP requests answered, by route template and status",
    explicit_bucket_boundaries_advisory=_LATENCY_BUCKETS,
)
_commands = _meter.create_counter(
    "stafett.commands",
    unit="{command}",
    description="commands over HTTP: accepted, refused (by rule) or failed",
)
_appended = _meter.create_counter(
    "stafett.events.appended", unit="{event}", description="events written, by stream"
)
_processed = _meter.create_counter(
    "stafett.events.processed",
    unit="{event}",
    description="upstream events a policy handled, by outcome",
)
_notifications = _meter.create_counter(
    "stafett.notifications",
    unit="{attempt}",
    description="notification delivery attempts, by channel and outcome",
)
_applied = _meter.create_counter(
    "stafett.projection.applied",
    unit="{event}",
    description="events applied to the read models, by stream",
)
_archive_deliveries = _meter.create_counter(
    "stafett.archive.deliveries",
    unit="{delivery}",
    description="closed cases handed to the archive, by archive and outcome",
)
_erasures = _meter.create_counter(
    "stafett.erasures", unit="{child}", description="children erased, by reason"
)
_reconnects = _meter.create_counter(
    "stafett.nats.reconnects",
    unit="{reconnect}",
    description="the NATS connection came back after it was lost",
)

Attributes = tuple[tuple[str, str], ...]
Reading = Callable[[], float | None]


class _Gauges:
    """What each gauge reads when metrics are collected: one reading per set of labels."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._readings: dict[str, dict[Attributes, Reading]] = {}

    def add(self, gauge: str, labels: Mapping[str, str], read: Reading) -> Callable[[], None]:
        key = tuple(sorted(labels.items()))
        with self._lock:
            self._readings.setdefault(gauge, {})[key] = read

        def forget() -> None:
            with self._lock:
                if self._readings.get(gauge, {}).get(key) is read:
                    del self._readings[gauge][key]

        return forget

    def callback(self, gauge: str) -> Callable[[CallbackOptions], Iterable[Observation]]:
        def observations(_: CallbackOptions) -> Iterable[Observation]:
            with self._lock:
                readings = list(self._readings.get(gauge, {}).items())
            for labels, read in readings:
                try:
                    value = read()
                except Exception as error:  # e.g. the store does not answer: no value this time
                    log.debug("gauge not read", gauge=gauge, reason=f"{type(error).__name__}")
                    continue
                if value is not None:
                    yield Observation(value, dict(labels))

        return observations


_gauges = _Gauges()
GAUGES = {
    "stafett.processing.lag": "upstream events a policy has still to process",
    "stafett.processing.parked": "parked upstream events not yet processed again",
    "stafett.projection.lag": "events the read models have still to apply, by stream",
}
for _name, _description in GAUGES.items():
    _meter.create_observable_gauge(
        _name, callbacks=[_gauges.callback(_name)], unit="{event}", description=_description
    )


def observe(gauge: str, labels: Mapping[str, str], read: Reading) -> Callable[[], None]:
    """Report `read()` as the value of `gauge` with `labels` whenever metrics are collected
    (None, or an exception, reports nothing that time); returns the function that stops it."""
    if gauge not in GAUGES:
        raise ValueError(f"unknown gauge {gauge!r}: expected one of {', '.join(GAUGES)}")
    return _gauges.add(gauge, labels, read)


class _Configured:
    """The process's meter provider and the registry /metrics serves: made once per process,
    because OpenTelemetry lets the global provider be set only once."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.registry: CollectorRegistry | None = None

    def ensure(self, service: str, environ: Mapping[str, str]) -> CollectorRegistry:
        with self._lock:
            if self.registry is None:
                registry = CollectorRegistry()
                ProcessCollector(registry=registry)  # CPU, memory, open files of the process
                PlatformCollector(registry=registry)
                # Labels name the work, not the library that measured it.
                prometheus = PrometheusMetricReader(registry=registry, scope_info_enabled=False)
                readers: list[MetricReader] = [prometheus]
                if any(environ.get(variable) for variable in _OTLP_ENDPOINT_VARIABLES):
                    # The exporter reads its endpoint, headers and timeout from the same variables.
                    readers.append(PeriodicExportingMetricReader(OTLPMetricExporter()))
                resource = Resource.create({SERVICE_NAME: service})
                metrics.set_meter_provider(MeterProvider(resource=resource, metric_readers=readers))
                self.registry = registry
            return self.registry


_configured = _Configured()


def configure_metrics(service: str, environ: Mapping[str, str] = os.environ) -> None:
    """Measure from now on, for /metrics and, if configured, OTLP; the first call per process
    counts (every service's app calls it: `stafett_runtime.service.http_app`)."""
    _configured.ensure(service, environ)


def prometheus_text() -> bytes:
    """Every metric of the process as Prometheus text; blocks while gauges are read."""
    registry = _configured.registry
    return b"" if registry is None else generate_latest(registry)


# What the services report. Each is one call where the thing happens.


def request_served(method: str, route: str | None, status: int, seconds: float) -> None:
    attributes: dict[str, Any] = {
        "http.request.method": method,
        "http.response.status_code": status,
    }
    if route is not None:  # a request no route matched has no route, and never its raw path
        attributes["http.route"] = route
    _requests.record(seconds, attributes)


def command_answered(command: str, outcome: str, rule: str | None = None) -> None:
    """A command over HTTP: `accepted`, `refused` (naming its `rule`) or `failed`."""
    _commands.add(1, {"command": command, "outcome": outcome, "rule": rule or ""})


def events_appended(stream: str, count: int) -> None:
    _appended.add(count, {"stream": stream})


def event_processed(
    policy: str, upstream: str, position: int, event_type: str, outcome: str
) -> None:
    """A policy handled one upstream event: logged at info (under the event's correlation id
    and trace, bound while it is handled) and counted. `outcome`: `processed`, `already
    processed`, or `parked`."""
    log.info(
        "event_processed",
        policy=policy,
        upstream=upstream,
        position=position,
        event_type=event_type,
        outcome=outcome,
    )
    _processed.add(1, {"policy": policy, "upstream": upstream, "outcome": outcome})


def notification_attempted(channel: str, outcome: str) -> None:
    """One delivery attempt on `channel`: `sent` or `failed`."""
    _notifications.add(1, {"channel": channel, "outcome": outcome})


def projection_applied(stream: str, count: int) -> None:
    _applied.add(count, {"stream": stream})


def archive_delivery_attempted(archive: str, outcome: str) -> None:
    """One attempt at handing a closed case to the `archive` (`folder` or `http`): `delivered`
    or `failed`."""
    _archive_deliveries.add(1, {"archive": archive, "outcome": outcome})


def child_erased(reason: str) -> None:
    """A child was erased (newly: erasing one erased already counts nothing), for `reason`."""
    _erasures.add(1, {"reason": reason})


def nats_reconnected(connection: str) -> None:
    _reconnects.add(1, {"connection": connection})
