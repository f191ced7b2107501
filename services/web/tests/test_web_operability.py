"""The web app is operated as every service is (issue 19): one log line per request, with its
correlation id, and its measures at GET /metrics, open to the scraper as on the services."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
import structlog

from stafett_runtime import metrics
from stafett_runtime.logging import configure_logging
from stafett_web.testing import Browser


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = set(root.handlers), root.level
    yield
    for handler in set(root.handlers) - handlers:
        root.removeHandler(handler)
    root.setLevel(level)
    structlog.reset_defaults()


def requests_logged(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    return [line for line in lines if str(line.get("event", "")).startswith("request_")]


def test_a_page_request_is_logged_once_with_its_route_status_and_correlation_id(
    browser: Browser, capsys: pytest.CaptureFixture[str]
) -> None:
    configure_logging("web")
    capsys.readouterr()

    # When someone asks for a page, naming a correlation id
    answer = browser.client.get("/worklist", headers={"X-Correlation-Id": "web-7"})

    # Then one line says so, by route, and the answer carries the id back
    assert answer.headers["X-Correlation-Id"] == "web-7"
    [line] = requests_logged(capsys)
    assert (line["method"], line["route"], line["status"]) == ("GET", "/worklist", 303)
    assert line["correlation_id"] == "web-7"
    assert line["duration_ms"] >= 0


def test_metrics_are_served_without_signing_in_and_count_the_pages_asked_for(
    browser: Browser,
) -> None:
    metrics.configure_metrics("web")
    browser.client.get("/worklist")

    answer = browser.client.get("/metrics")

    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain; version=")
    counted = [
        line
        for line in answer.text.splitlines()
        if line.startswith("http_server_request_duration_seconds_count{")
        and 'http_route="/worklist"' in line
    ]
    assert counted, answer.text[:2000]
    assert float(counted[0].rpartition(" ")[2]) >= 1


def test_a_page_that_fails_is_logged_once_as_a_failed_request_with_its_error(
    browser: Browser, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    configure_logging("web")
    capsys.readouterr()

    # Given a page whose handler fails (a fault in the web app itself)
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the front page broke")

    monkeypatch.setattr("stafett_web.routes.auth.page", broken)

    # When someone asks for it
    answer = browser.client.get("/", headers={"X-Correlation-Id": "web-500"})

    # Then they get the error page, and the failure is one log line, with the error
    assert answer.status_code == 500
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]
    failed = [line for line in lines if line.get("level") == "error"]
    assert [line["event"] for line in failed] == ["request_failed"]
    assert (failed[0]["route"], failed[0]["correlation_id"]) == ("/", "web-500")
    assert "the front page broke" in json.dumps(failed[0]["exception"])
