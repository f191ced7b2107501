"""Fixtures for tests across services: each service runs as its own process, as in production,
under its own NATS user (`tests.platform.Platform`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.platform import Platform


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[Platform]:
    """nats-server with per-service users on the test's own data folder; the test starts the
    services it needs with `platform.start("consent", "case", ...)`."""
    running = Platform(tmp_path)
    try:
        yield running
    finally:
        running.stop()
