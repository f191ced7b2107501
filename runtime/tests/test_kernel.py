"""A service's kernel while its nats-server is away: every call fails at once as unavailable
(503 for a client), and the kernel still closes."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from eventsourcing.persistence import OperationalError

from stafett_contracts.personal import PersonalData
from stafett_runtime.auth import DevelopmentKey
from stafett_runtime.register import FileRegister
from stafett_runtime.testing import NatsTestServer, kernel_for_tests

WAITING_WOULD_TAKE = 30  # seconds; a call that fails at once never comes near it


async def test_while_nats_is_away_a_kernel_call_fails_as_unavailable_instead_of_waiting(
    nats_server: NatsTestServer, tmp_path: Path
) -> None:
    # Given a case service's kernel, open, that seals children's personal data
    kernel = kernel_for_tests(
        "case",
        nats_server.url,
        key=DevelopmentKey.load_or_create(tmp_path / "key.pem"),
        register=FileRegister(tmp_path / "register.json"),
        child_keys="seal",
    )
    await kernel.open()
    # When its nats-server goes away
    nats_server.stop()
    # Then sealing a child's data, and reading a case, each fail as unavailable
    sealing = kernel.seal(PersonalData(name="Kari Nordmann"), "child-1")
    with pytest.raises(OperationalError, match="unreachable"):
        await asyncio.wait_for(sealing, WAITING_WOULD_TAKE)
    reading = kernel.core.read_all("CASE", "case.events.>")
    with pytest.raises(OperationalError, match="unreachable"):
        await asyncio.wait_for(reading, WAITING_WOULD_TAKE)
    # And the kernel closes without waiting for the server
    await asyncio.wait_for(kernel.close(), WAITING_WOULD_TAKE)
