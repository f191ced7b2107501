"""The generated NATS permissions, exercised against a real nats-server started with them.

Given nats-server with deploy/nats/auth.conf and the streams the Job creates, each service's
credentials do that service's job through the runtime's own store code, and nothing else:
notify cannot write to the case stream, the case service cannot read the projection's audit
stream nor another service's replies.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import Environment
from nats.js.api import ConsumerConfig

from deploy.nats.access import ACCESS, Access, durable_name, generated_files
from deploy.tests.secured_nats import Credentials, Errors, create_streams, secured_server
from stafett_contracts.personal import Erased, PersonalData
from stafett_runtime.jetstream import JetStreamFactory
from stafett_runtime.keystore import ChildKeys
from stafett_runtime.natsserver import NatsServer

OWNERS = {row.owns: row.service for row in ACCESS}


def test_the_generated_nats_files_are_current() -> None:
    stale = [str(path) for path, text in generated_files().items() if path.read_text() != text]
    assert not stale, f"run `python -m deploy.nats.access`; stale: {stale}"


@pytest.fixture(scope="module")
def credentials() -> Credentials:
    return Credentials()


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, credentials: Credentials
) -> Iterator[NatsServer]:
    """nats-server with the generated users; every stream created by the Job's user, seeded."""
    with pytest.MonkeyPatch.context() as env:
        for name, value in credentials.server_environment().items():
            env.setenv(name, value)
        server = secured_server(tmp_path_factory.mktemp("nats-secured"))
        server.start()
    try:

        async def create() -> None:
            nc = await credentials.connect("streams", server.url)
            try:
                await create_streams(nc, replicas=1)
                await create_streams(nc, replicas=1)  # the Job runs on every deploy
            finally:
                await nc.close()

        asyncio.run(create())
        for stream, owner in OWNERS.items():  # one event in each, written by its owner
            store = factory(credentials, owner, server.url, stream)
            try:
                store.application_recorder().insert_events([event()])
            finally:
                store.close()
        yield server
    finally:
        server.stop()


def factory(credentials: Credentials, user: str, url: str, stream: str) -> JetStreamFactory:
    """The runtime's store as `user` runs it, on `stream` (CREATE_TABLE on for its own)."""
    own = OWNERS[stream] == user
    env = {**credentials.service_env(user, url), "CREATE_TABLE": "yes" if own else "no"}
    return JetStreamFactory(Environment(stream.lower(), env))


def event(version: int = 1, aggregate: UUID | None = None) -> StoredEvent:
    return StoredEvent(
        originator_id=aggregate or uuid4(),
        originator_version=version,
        topic="deploy.tests:Noted",
        state=b"{}",
    )


@pytest.mark.parametrize("row", ACCESS, ids=lambda row: row.service)
def test_given_its_own_credentials_each_service_can_do_its_job(
    row: Access, server: NatsServer, credentials: Credentials
) -> None:
    # It appends to its own stream, one event and several atomically, and reads them back.
    store = factory(credentials, row.service, server.url, row.owns)
    try:
        recorder = store.application_recorder()
        aggregate = uuid4()
        recorder.insert_events([event(1, aggregate)])
        recorder.insert_events([event(2, aggregate), event(3, aggregate)])
        assert [e.originator_version for e in recorder.select_events(aggregate)] == [1, 2, 3]
        with recorder.subscribe(gt=0) as own_events:
            assert next(own_events).id == 1
    finally:
        store.close()

    # It follows each upstream: reads the head by direct get, and the events in order.
    for stream in row.follows:
        upstream = factory(credentials, row.service, server.url, stream)
        try:
            recorder = upstream.application_recorder()
            assert recorder.max_notification_id() is not None
            with recorder.subscribe(gt=0) as notifications:
                assert next(notifications).id == 1
        finally:
            upstream.close()

    asyncio.run(_durables_and_buckets(row, server.url, credentials))


async def _durables_and_buckets(row: Access, url: str, credentials: Credentials) -> None:
    errors = Errors()
    nc = await credentials.connect(row.service, url, errors)
    try:
        js = nc.jetstream()
        for stream in row.durables:
            name = durable_name(row.service, stream)
            pull = await js.pull_subscribe("", durable=name, stream=stream)
            (message,) = await pull.fetch(1, timeout=5)
            await message.ack_sync()
            await pull.unsubscribe()
        for stream in row.rebuilds:  # a replay from the start leaves no consumer behind
            info = await js.add_consumer(stream, ConsumerConfig(inactive_threshold=60))
            assert info.name is not None
            await js.delete_consumer(stream, info.name)
        for bucket in row.buckets:
            keys = await ChildKeys.bind(nc, bucket=bucket, replicas=1, environ={})
            child = f"child-seen-by-{row.service}"  # the server is shared; each erases its own
            sealed = await keys.seal(PersonalData(name="Astrid Nilsen"), child)
            assert await keys.open(sealed) == PersonalData(name="Astrid Nilsen")
            await keys.erase(child, reason="test")
            assert await keys.open(sealed) == Erased()
        await nc.flush()
    finally:
        await nc.close()
    assert not errors.errors, errors.errors


async def test_given_the_notify_credentials_then_writing_to_the_case_stream_is_refused(
    server: NatsServer, credentials: Credentials
) -> None:
    before = await _messages_in("CASE", server, credentials)
    errors = Errors()
    notify = await credentials.connect("notify", server.url, errors)
    try:
        await notify.publish(f"case.events.{uuid4()}.ConcernRaised", b"{}", reply="_INBOX.notify.x")
        refused = await errors.wait(1)
    finally:
        await notify.close()
    assert 'permissions violation for publish to "case.events.' in refused
    assert await _messages_in("CASE", server, credentials) == before


async def test_given_the_case_credentials_then_the_audit_stream_cannot_be_read(
    server: NatsServer, credentials: Credentials
) -> None:
    errors = Errors()
    case = await credentials.connect("case", server.url, errors)
    try:
        # Neither by direct get, nor by a consumer of any kind.
        for subject in (
            "$JS.API.DIRECT.GET.AUDIT",
            "$JS.API.CONSUMER.CREATE.AUDIT",
            "$JS.API.CONSUMER.CREATE.AUDIT.mine",
            "$JS.API.STREAM.INFO.AUDIT",
            "audit.events.>",
        ):
            await case.publish(subject, b"{}", reply="_INBOX.case.x")
        refused = await errors.wait(5)  # one permissions violation for each
    finally:
        await case.close()
    assert "$js.api.direct.get.audit" in refused
    assert '"$js.api.consumer.create.audit"' in refused


async def test_given_the_case_credentials_then_another_services_replies_cannot_be_read(
    server: NatsServer, credentials: Credentials
) -> None:
    errors = Errors()
    case = await credentials.connect("case", server.url, errors)
    try:
        await case.subscribe("_INBOX.projection.>")
        refused = await errors.wait(1)
    finally:
        await case.close()
    assert 'permissions violation for subscription to "_inbox.projection.>"' in refused


async def _messages_in(stream: str, server: NatsServer, credentials: Credentials) -> int:
    nc = await credentials.connect("admin", server.url)
    try:
        answer = await nc.request(f"$JS.API.STREAM.INFO.{stream}", b"", timeout=5)
        count: int = json.loads(answer.data)["state"]["messages"]
        return count
    finally:
        await nc.close()


def test_the_job_creates_every_services_stream_and_the_childrens_keys() -> None:
    names = {path.stem for path in generated_files() if path.suffix == ".json"}
    assert names == {*OWNERS, "KV_CHILD_KEYS"}
