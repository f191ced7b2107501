"""Fixtures for the runtime's tests: an environment on a fresh nats-server, and an upstream app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from example_apps import Orders
from stafett_runtime.testing import NatsTestServer


@pytest.fixture
def env(nats_server: NatsTestServer) -> dict[str, str]:
    """The eventsourcing environment of an application on the JetStream store."""
    return {"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": nats_server.url}


@pytest.fixture
def orders(env: dict[str, str]) -> Iterator[Orders]:
    app = Orders(env)
    yield app
    app.close()
