"""Every log line is one JSON object that names the service and the correlation id of its work."""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import structlog
from litestar import Litestar, get
from litestar.testing import TestClient

from stafett_runtime.logging import (
    configure_logging,
    correlation,
    current_correlation_id,
)
from stafett_runtime.served import ServedRequests

HEX_UUID = re.compile(r"[0-9a-f]{32}")


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


def test_a_structlog_event_is_one_json_line_with_time_level_event_and_service(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("case")

    structlog.get_logger("case.api").info("concern_raised", concern_id="c-1")

    [line] = log_lines(capsys)
    assert line["event"] == "concern_raised"
    assert line["level"] == "info"
    assert line["service"] == "case"
    assert line["concern_id"] == "c-1"
    assert line["logger"] == "case.api"
    logged_at = datetime.fromisoformat(line["timestamp"])
    assert logged_at.utcoffset() == timedelta(0)
    assert abs(datetime.now(UTC) - logged_at) < timedelta(minutes=1)


def test_a_standard_library_log_record_gets_the_same_shape(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("case")

    logging.getLogger("nats.aio.client").warning("disconnected from %s", "nats://nats:4222")

    [line] = log_lines(capsys)
    assert line["event"] == "disconnected from nats://nats:4222"
    assert line["level"] == "warning"
    assert line["service"] == "case"
    assert line["logger"] == "nats.aio.client"
    assert "timestamp" in line


def test_an_exception_is_logged_as_data(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("case")

    try:
        raise RuntimeError("stream not found")
    except RuntimeError:
        logging.getLogger("case.store").exception("append_failed")

    [line] = log_lines(capsys)
    assert line["event"] == "append_failed"
    assert line["exception"][0]["exc_type"] == "RuntimeError"
    assert line["exception"][0]["exc_value"] == "stream not found"


def test_events_below_the_level_are_dropped(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("case", level="WARNING")

    structlog.get_logger().info("routine")
    logging.getLogger("nats").info("routine")
    structlog.get_logger().warning("unusual")

    assert [line["event"] for line in log_lines(capsys)] == ["unusual"]


def test_the_console_format_is_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("case", fmt="console")

    structlog.get_logger().info("concern_raised", concern_id="c-1")

    out = capsys.readouterr().out
    assert "concern_raised" in out
    assert "concern_id=c-1" in out
    assert "service=case" in out
    assert not out.startswith("{")


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="xml"):
        configure_logging("case", fmt="xml")


def test_everything_logged_inside_a_correlation_carries_its_id(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("case")

    with correlation("req-42") as correlation_id:
        structlog.get_logger().info("concern_raised")
        logging.getLogger("nats").warning("slow_ack")
    structlog.get_logger().info("idle")

    assert correlation_id == "req-42"
    lines = log_lines(capsys)
    assert [line.get("correlation_id") for line in lines] == ["req-42", "req-42", None]


def test_a_correlation_without_an_id_makes_one() -> None:
    with correlation(None) as correlation_id:
        assert HEX_UUID.fullmatch(correlation_id)
        assert current_correlation_id() == correlation_id
    assert current_correlation_id() is None


def test_a_nested_correlation_restores_the_outer_id_when_it_ends() -> None:
    with correlation("outer"):
        with correlation("inner"):
            assert current_correlation_id() == "inner"
        assert current_correlation_id() == "outer"


@get("/whoami", sync_to_thread=False)
def whoami() -> dict[str, str | None]:
    structlog.get_logger().info("whoami_asked")
    return {"correlation_id": current_correlation_id()}


def app_with_correlation() -> Litestar:
    """An app that binds correlation ids as every service's does (`served.ServedRequests`)."""
    return Litestar(route_handlers=[whoami], middleware=[ServedRequests], logging_config=None)


def test_a_request_is_logged_and_answered_with_the_correlation_id_it_brought(
    capsys: pytest.CaptureFixture[str],
) -> None:
    configure_logging("case")

    with TestClient(app_with_correlation()) as client:
        response = client.get("/whoami", headers={"X-Correlation-Id": "req-42"})

    assert response.headers["X-Correlation-Id"] == "req-42"
    assert response.json() == {"correlation_id": "req-42"}
    [logged] = [line for line in log_lines(capsys) if line["event"] == "whoami_asked"]
    assert logged["correlation_id"] == "req-42"


def test_a_request_without_a_correlation_id_gets_a_new_one() -> None:
    with TestClient(app_with_correlation()) as client:
        first = client.get("/whoami")
        second = client.get("/whoami")

    correlation_id = first.headers["X-Correlation-Id"]
    assert HEX_UUID.fullmatch(correlation_id)
    assert first.json() == {"correlation_id": correlation_id}
    assert second.headers["X-Correlation-Id"] != correlation_id


def test_a_correlation_id_that_is_not_a_plain_token_is_replaced() -> None:
    with TestClient(app_with_correlation()) as client:
        response = client.get("/whoami", headers={"X-Correlation-Id": "x" * 500})

    assert HEX_UUID.fullmatch(response.headers["X-Correlation-Id"])
