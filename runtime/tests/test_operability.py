"""An operator follows the work: one log line per request and per processed event, each with its
correlation id and trace id, and metrics on every service's /metrics."""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import pytest
import structlog
from litestar import Litestar, post
from litestar.params import JSONBody
from litestar.testing import TestClient
from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from test_processing_heals import ConsentLog, ConsentNotes

from stafett_contracts.identity import Actor, Role
from stafett_runtime import metrics
from stafett_runtime.auth import DevelopmentKey, TokenVerifier
from stafett_runtime.domain import RuleViolation
from stafett_runtime.follower import Follower
from stafett_runtime.health import Readiness
from stafett_runtime.logging import configure_logging, correlation
from stafett_runtime.service import http_app

TEACHER = Actor(person="laerer-1", role=Role.EMPLOYEE, service="skole-lia")
TRACE_PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"


class Command(msgspec.Struct, forbid_unknown_fields=True):
    outcome: str


@post("/commands")
async def command(data: JSONBody[Command]) -> dict[str, int]:
    if data.outcome == "rule":
        raise RuleViolation("level-3-needs-coordinator", "level 3 needs a coordinator")
    if data.outcome == "crash":
        raise RuntimeError("boom")
    return {"version": 1}


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = set(root.handlers), root.level
    yield
    for handler in set(root.handlers) - handlers:
        root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def log_lines(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def service(tmp_path: Path, readiness: Readiness | None = None) -> tuple[Litestar, str]:
    """The test service of test_service, and a teacher's bearer token for it."""
    key = DevelopmentKey.load_or_create(tmp_path / "key.pem")
    app = http_app(
        service="test",
        route_handlers=[command],
        readiness=readiness or Readiness(),
        verifier=TokenVerifier(key.public_key),
    )
    return app, key.mint(TEACHER)


def requests_logged(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    return [line for line in log_lines(capsys) if str(line["event"]).startswith("request_")]


def test_a_request_is_logged_once_with_its_route_status_person_correlation_and_trace(
    spans: InMemorySpanExporter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("test")
    app, token = service(tmp_path)
    headers = {
        "Authorization": f"Bearer {token}",
        "X-Correlation-Id": "req-42",
        "traceparent": TRACE_PARENT,
    }

    # When a teacher's command is accepted
    with TestClient(app) as http:
        answer = http.post("/commands", json={"outcome": "ok"}, headers=headers)

    # Then one line says so, with the route (not the path), who, and the ids to follow it by
    assert answer.status_code == 201
    assert answer.headers["X-Correlation-Id"] == "req-42"
    [line] = requests_logged(capsys)
    assert line["event"] == "request_served"
    assert line["level"] == "info"
    assert (line["method"], line["route"], line["status"]) == ("POST", "/commands", 201)
    assert line["person"] == TEACHER.person
    assert line["role"] == "employee"
    assert line["correlation_id"] == "req-42"
    assert line["trace_id"] == CALLER_TRACE
    assert line["duration_ms"] >= 0
    assert token not in json.dumps(line)


def test_a_refusal_is_logged_at_info_with_its_rule_and_reason(
    spans: InMemorySpanExporter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("test")
    app, token = service(tmp_path)
    auth = {"Authorization": f"Bearer {token}", "traceparent": TRACE_PARENT}

    # When a rule refuses one command, and another comes without a token
    with TestClient(app) as http:
        refused = http.post("/commands", json={"outcome": "rule"}, headers=auth)
        unknown = http.post("/commands", json={"outcome": "ok"})

    # Then each is one line at info, naming the rule that refused or what was wrong
    assert (refused.status_code, unknown.status_code) == (409, 401)
    lines = requests_logged(capsys)
    assert [line["status"] for line in lines] == [409, 401]
    by_rule, without_token = lines
    assert {line["level"] for line in lines} == {"info"}
    assert by_rule["event"] == "request_refused"
    assert by_rule["rule"] == "level-3-needs-coordinator"
    assert by_rule["reason"] == "level 3 needs a coordinator"
    assert by_rule["trace_id"] == CALLER_TRACE
    assert without_token["reason"] == "missing bearer token"
    assert "person" not in without_token
    assert re.fullmatch(r"[0-9a-f]{32}", without_token["correlation_id"])


def test_an_unexpected_error_is_logged_at_error_with_the_exception(
    spans: InMemorySpanExporter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("test")
    app, token = service(tmp_path)

    # When a command fails with an error of ours
    with TestClient(app, raise_server_exceptions=False) as http:
        answer = http.post(
            "/commands",
            json={"outcome": "crash"},
            headers={"Authorization": f"Bearer {token}", "X-Correlation-Id": "req-500"},
        )

    # Then the caller learns only that it failed, and the one line holds the exception
    assert answer.status_code == 500
    assert "boom" not in answer.text
    [line] = requests_logged(capsys)
    assert line["event"] == "request_failed"
    assert line["level"] == "error"
    assert line["correlation_id"] == "req-500"
    assert line["exception"][0]["exc_type"] == "RuntimeError"
    assert line["exception"][0]["exc_value"] == "boom"


def test_health_probes_and_metrics_are_neither_logged_nor_traced(
    spans: InMemorySpanExporter, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("test")
    app, _ = service(tmp_path)

    with TestClient(app) as http:
        probes = [http.get(path) for path in ("/health/live", "/health/ready", "/metrics")]

    assert [probe.status_code for probe in probes] == [200, 200, 200]
    assert requests_logged(capsys) == []
    assert spans.get_finished_spans() == ()


def test_an_event_processed_is_logged_with_the_correlation_and_trace_of_the_request_behind_it(
    spans: InMemorySpanExporter, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("case")

    # Given the handling of an upstream event, under the correlation and trace it carried
    with (
        correlation("req-42"),
        trace.get_tracer("test").start_as_current_span("process ConsentGiven") as handling,
    ):
        # When the policy has processed it
        metrics.event_processed(
            "consent-policy", "consent", 17, "consent.ConsentGiven@1", "processed"
        )

    # Then one line says which event, how it went, and the ids to follow it by
    [line] = [line for line in log_lines(capsys) if line["event"] == "event_processed"]
    assert line["level"] == "info"
    assert (line["upstream"], line["position"]) == ("consent", 17)
    assert (line["event_type"], line["outcome"]) == ("consent.ConsentGiven@1", "processed")
    assert line["correlation_id"] == "req-42"
    assert line["trace_id"] == format(handling.get_span_context().trace_id, "032x")


def scraped(http: TestClient[Litestar]) -> dict[str, float]:
    """The samples of the service's /metrics, asked as Prometheus asks: without a token."""
    answer = http.get("/metrics")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    return samples_in(answer.text)


def samples_in(text: str) -> dict[str, float]:
    """Prometheus text as {name and labels: value}."""
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def sample(samples: dict[str, float], name: str, **labels: str) -> float:
    """The value of the one sample of `name` whose labels include `labels` (0 if none)."""
    wanted = [f'{key}="{value}"' for key, value in labels.items()]
    found = [
        v
        for key, v in samples.items()
        if key.split("{")[0] == name and all(w in key for w in wanted)
    ]
    assert len(found) <= 1, f"{name} {labels}: {len(found)} samples"
    return found[0] if found else 0.0


def test_metrics_count_commands_by_outcome_and_rule_and_time_requests_by_route(
    tmp_path: Path,
) -> None:
    app, token = service(tmp_path)
    auth = {"Authorization": f"Bearer {token}"}
    with TestClient(app) as http:
        before = scraped(http)

        # When one command is accepted and one refused by a rule, without a token on /metrics
        http.post("/commands", json={"outcome": "ok"}, headers=auth)
        http.post("/commands", json={"outcome": "rule"}, headers=auth)
        after = scraped(http)

    # Then /metrics counts each by outcome and rule, and times each by route and status
    def more(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert more("stafett_commands_total", command="/commands", outcome="accepted") == 1
    rule = "level-3-needs-coordinator"
    assert more("stafett_commands_total", command="/commands", outcome="refused", rule=rule) == 1
    duration = "http_server_request_duration_seconds_count"
    assert more(duration, http_route="/commands", http_response_status_code="201") == 1
    assert more(duration, http_route="/commands", http_response_status_code="409") == 1
    assert sample(after, "http_server_request_duration_seconds_count", http_route="/metrics") == 0


def test_metrics_report_each_policys_true_lag_and_parked_events(
    env: dict[str, str], tmp_path: Path
) -> None:
    # Given three consents given while the notes service's policy does not run, the handling of
    # one of which fails again and again
    consents = ConsentLog(env)
    notes = ConsentNotes(env)
    given = [consents.give() for _ in range(3)]
    notes.failing.add(given[1])
    follower = Follower(notes, "consent", env, retry_seconds=0.1)
    readiness = Readiness()
    readiness.add_policy("consent-policy", follower)
    app, _ = service(tmp_path, readiness)
    labels = {"policy": notes.name, "upstream": "consent"}
    try:
        with TestClient(app) as http:
            # Then /metrics says the policy has three events to process, none parked
            waiting = scraped(http)
            assert sample(waiting, "stafett_processing_lag", **labels) == 3
            assert sample(waiting, "stafett_processing_parked", **labels) == 0

            # And when it has processed them: none to process, one parked
            follower.start()
            deadline = time.monotonic() + 30
            while sample(now := scraped(http), "stafett_processing_lag", **labels):
                assert time.monotonic() < deadline, "the policy did not catch up in 30 s"
                time.sleep(0.1)
            assert sample(now, "stafett_processing_parked", **labels) == 1
        # And once the service has stopped, its policy is no longer reported
        stopped = samples_in(metrics.prometheus_text().decode())
        assert sample(stopped, "stafett_processing_parked", **labels) == 0
    finally:
        follower.stop()
        consents.close()
