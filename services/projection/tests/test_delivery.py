"""Archive delivery (DOMAIN.md rule 10): each closing of a case reaches the archive once.

Against a real nats-server: events are published to CASE as the case service would, the
projection follows them, and the delivery's rounds are run one at a time by the test, with a
clock of the test's own for the pauses between attempts (no waiting on real time). What was
delivered is read where the rule says it is recorded: `ArchiveDelivered` on the AUDIT stream;
each failed attempt is `ArchiveDeliveryFailed` there too.
"""

from __future__ import annotations

import json
import stat
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import msgspec
import nats
import pytest
from nats.aio.client import Client

from bench.history import ensure_streams, publish
from stafett_contracts import case as c
from stafett_contracts.audit import ArchiveDeliveryFailed
from stafett_contracts.envelope import Event
from stafett_contracts.identity import Actor, Role
from stafett_contracts.personal import SealedText
from stafett_contracts.retention import RetentionLedger
from stafett_projection.delivery import (
    Archive,
    ArchiveDelivery,
    FolderArchive,
    HttpArchive,
)
from stafett_projection.projection import Projection
from stafett_projection.store import Database
from stafett_projection.testing import FakeArchive, fake_archive
from stafett_runtime.auth import DevelopmentKey
from stafett_runtime.kernel import Kernel
from stafett_runtime.keystore import ChildKeys
from stafett_runtime.register import FileRegister
from stafett_runtime.testing import NatsTestServer, a_child, kernel_for_tests

TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service="barnehage-solsikke")
OSLO = ZoneInfo("Europe/Oslo")
INTERVAL = 30.0  # seconds between rounds: the first pause after a failure
WORRY = "Trekker seg unna i lek, gråter ved henting."


@dataclass
class Clock:
    """The delivery's monotonic clock, moved by the test."""

    now: float = 1_000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class World:
    nc: Client  # the test's own connection, publishing as the services would
    kernel: Kernel
    database: Database
    clock: Clock = field(default_factory=Clock)
    projection: Projection | None = None

    async def start_projection(self, database: Database | None = None) -> Projection:
        if self.projection is not None:
            await self.projection.stop()
        self.database = database or self.database
        self.projection = Projection(self.database)
        await self.projection.start(self.kernel.nc, self.kernel.directory)
        return self.projection

    def delivery(self, archive: Archive) -> ArchiveDelivery:
        assert self.projection is not None
        return ArchiveDelivery(self.projection, self.kernel, archive, INTERVAL, OSLO, self.clock)

    async def publish(self, *events: Event) -> None:
        await publish(self.nc, list(events), in_flight=1)
        assert self.projection is not None
        for stream in ("CASE", "AUDIT"):
            last = (await self.nc.jetstream().stream_info(stream)).state.last_seq
            assert await self.projection.wait_for(stream, last)

    async def audit(self, kind: str) -> list[dict[str, Any]]:
        """The AUDIT stream's records of one kind, oldest first."""
        js = self.nc.jetstream()
        last = (await js.stream_info("AUDIT")).state.last_seq
        found = []
        for seq in range(1, last + 1):
            message = await js.get_msg("AUDIT", seq)
            if (message.subject or "").endswith(f".{kind}"):
                found.append(json.loads(message.data or b"{}"))
        return found

    async def seal(self, text: str, child_id: UUID) -> SealedText:
        keys = await ChildKeys.bind(self.nc, environ={})
        return await keys.seal_text(text, str(child_id))


class Case:
    """One case, told in CASE events with their versions."""

    def __init__(self) -> None:
        self.case_id, self.child_id, self.version = uuid4(), a_child("mor-1").child_id, 0

    def env(self) -> dict[str, Any]:
        self.version += 1
        return {
            "event_id": uuid4(),
            "aggregate_id": self.case_id,
            "aggregate_version": self.version,
            "occurred_at": datetime.now(UTC) - timedelta(days=10 - self.version),
            "actor": TEACHER,
            "correlation_id": "test",
        }

    def raised(self, concern: SealedText | str) -> Event:
        return c.ConcernRaised(
            **self.env(), child_id=self.child_id, unit="barnehage-solsikke", concern=concern
        )

    def closed(self) -> Event:
        return c.CaseClosed(**self.env(), at_level=0, reason="Løst i barnehagen.")

    def reopened(self) -> Event:
        return c.CaseReopened(**self.env(), reason="Bekymringen kom tilbake.")


@pytest.fixture
async def world(nats_server: NatsTestServer, tmp_path: Path) -> AsyncIterator[World]:
    nc = await nats.connect(nats_server.url)
    await ensure_streams(nc)
    kernel = kernel_for_tests(
        "projection",
        nats_server.url,
        key=DevelopmentKey.load_or_create(tmp_path / "key.pem"),
        register=FileRegister(tmp_path / "register.json"),
        child_keys="open",
    )
    await kernel.open()  # makes AUDIT, where the delivery records what it did
    world = World(nc, kernel, Database(f"sqlite:///{tmp_path / 'projection.sqlite3'}"))
    await world.start_projection()
    try:
        yield world
    finally:
        if world.projection is not None:
            await world.projection.stop()
        await kernel.close()
        await nc.close()


async def test_a_closed_case_is_delivered_once_to_a_private_folder_and_again_after_reopening(
    world: World, tmp_path: Path
) -> None:
    # Given a case whose worry is sealed under the child's key, closed
    case = Case()
    await world.publish(case.raised(await world.seal(WORRY, case.child_id)), case.closed())
    folder = tmp_path / "archive"
    delivery = world.delivery(FolderArchive(folder))

    # When the delivery runs a round, and another
    await delivery.round()
    await delivery.round()

    # Then the closing is delivered once: the payload and a document per language, each
    # readable by its owner only, in a folder of the owner's only
    stem = f"{case.case_id}-v2"
    assert sorted(p.name for p in folder.iterdir()) == [
        f"{stem}.en.md",
        f"{stem}.json",
        f"{stem}.nb.md",
    ]
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert {stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()} == {0o600}
    # and the documents say what was written, opened from its seal
    assert WORRY in (folder / f"{stem}.nb.md").read_text()
    payload = json.loads((folder / f"{stem}.json").read_bytes())
    assert payload["case_version"] == 2
    assert set(payload["documents"]) == {"nb", "en"}
    delivered = await world.audit("ArchiveDelivered")
    assert [(d["case_id"], d["case_version"], d["archive"]) for d in delivered] == [
        (str(case.case_id), 2, "folder")
    ]

    # When the case is reopened and closed again
    await world.publish(case.reopened(), case.closed())
    await delivery.round()

    # Then the new closing is delivered too, as of its own version
    assert (folder / f"{case.case_id}-v4.json").exists()
    delivered = await world.audit("ArchiveDelivered")
    assert [d["case_version"] for d in delivered] == [2, 4]


@pytest.fixture
def archive() -> Iterator[FakeArchive]:
    with fake_archive(failures=2, reference="ARK-2025-17") as running:
        yield running


async def test_a_failing_archive_is_tried_again_after_pauses_that_double_and_recorded_on_success(
    world: World, archive: FakeArchive
) -> None:
    # Given a closed case, and an archive's HTTP API that is down for two deliveries
    case = Case()
    await world.publish(case.raised("Sliten om morgenen."), case.closed())
    delivery = world.delivery(HttpArchive(archive.url, token="archive-secret"))

    # When the first round tries it
    await delivery.round()
    # Then the attempt failed: nothing is recorded as delivered, the failure is, for the operators
    assert len(archive.received) == 1
    assert await world.audit("ArchiveDelivered") == []
    failed = await world.audit("ArchiveDeliveryFailed")
    assert [(f["case_id"], f["case_version"], f["archive"]) for f in failed] == [
        (str(case.case_id), 2, "http")
    ]
    assert "503" in failed[0]["error"]

    # When rounds come before the pause is over, then they leave the case alone
    world.clock.advance(INTERVAL - 1)
    await delivery.round()
    assert len(archive.received) == 1
    # When the pause is over, it is tried again, fails, and the next pause is twice as long
    world.clock.advance(1)
    await delivery.round()
    assert len(archive.received) == 2
    world.clock.advance(INTERVAL)
    await delivery.round()
    assert len(archive.received) == 2
    world.clock.advance(INTERVAL)
    await delivery.round()

    # Then the third attempt is taken, and only now is the delivery recorded, once
    assert len(archive.received) == 3
    delivered = await world.audit("ArchiveDelivered")
    assert [(d["case_id"], d["archive"], d["reference"]) for d in delivered] == [
        (str(case.case_id), "http", "ARK-2025-17")
    ]
    # with the same idempotency key each time, and the archive's token
    assert len({r.key for r in archive.received}) == 1
    assert {r.authorization for r in archive.received} == {"Bearer archive-secret"}
    # and each failure recorded; once delivered, the next round leaves the case alone
    assert len(await world.audit("ArchiveDeliveryFailed")) == 2
    world.clock.advance(10 * INTERVAL)
    await delivery.round()
    assert len(archive.received) == 3


async def test_a_failing_delivery_is_shown_with_its_attempts_and_last_error_from_the_streams(
    world: World, archive: FakeArchive
) -> None:
    # Given a closed case whose archive fails twice
    case = Case()
    raised, closed = case.raised("Mye fravær."), case.closed()
    await world.publish(raised, closed)
    delivery = world.delivery(HttpArchive(archive.url))
    await delivery.round()
    world.clock.advance(INTERVAL)
    await delivery.round()

    # When the retention ledger (what `stafett status` shows) reads the streams' events
    ledger = RetentionLedger()
    for event in (raised, closed):
        ledger.take_in(event)
    for record in await world.audit("ArchiveDeliveryFailed"):
        ledger.take_in(msgspec.convert(record, ArchiveDeliveryFailed))

    # Then the case waits for the archive, after two failed attempts, with the archive's answer
    (waiting,) = ledger.awaiting_archive()
    assert waiting.case_id == case.case_id
    assert waiting.attempts_failed == 2
    assert waiting.last_error is not None
    assert "503" in waiting.last_error
    assert waiting.next_attempt_at is not None
    assert waiting.next_attempt_at > datetime.now(UTC)


async def test_a_restarted_delivery_resumes_without_delivering_anything_twice(
    world: World, tmp_path: Path
) -> None:
    # Given one case delivered before the projection stops
    folder = tmp_path / "archive"
    first = Case()
    await world.publish(first.raised("Uro i klassen."), first.closed())
    await world.delivery(FolderArchive(folder)).round()
    assert len(await world.audit("ArchiveDelivered")) == 1
    (folder / f"{first.case_id}-v2.json").unlink()  # were it delivered again, it would be back

    # When another case closes, and the projection starts again from nothing (a new database,
    # a delivery without memory), rebuilt from the streams
    assert world.projection is not None
    await world.projection.stop()
    world.projection = None
    second = Case()
    await publish(world.nc, [second.raised("Sover dårlig."), second.closed()], in_flight=1)
    await world.start_projection(Database(f"sqlite:///{tmp_path / 'rebuilt.sqlite3'}"))
    await world.publish()
    await world.delivery(FolderArchive(folder)).round()

    # Then only the case closed meanwhile is delivered: the first stays delivered once
    delivered = await world.audit("ArchiveDelivered")
    assert sorted(d["case_id"] for d in delivered) == sorted(
        [str(first.case_id), str(second.case_id)]
    )
    assert not (folder / f"{first.case_id}-v2.json").exists()
    assert (folder / f"{second.case_id}-v2.json").exists()
