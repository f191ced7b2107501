"""The generated NATS permissions, exercised against a real nats-server started with them.

Given nats-server with deploy/nats/auth.conf and the streams the Job creates, each service's
credentials do that service's job through the runtime's own code (its store, its access log, the
children's keys), and nothing else: no service writes into another's stream (the case service
cannot forge a consent), none reads, changes or deletes the access log it appends to, the
projection reads children's keys but never writes or deletes one, and no service reads another's
replies. `stafett up` runs nats-server with the same users (`stafett_runtime.natsaccess`).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from dataclasses import dataclass
from uuid import UUID, uuid4

import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import Environment
from nats.aio.client import Client
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from deploy.nats.access import generated_files
from deploy.tests.secured_nats import Credentials, Errors, create_streams, secured_server
from stafett_contracts.access import Access as ReadAccess
from stafett_contracts.identity import Actor, Role
from stafett_contracts.personal import Erased, PersonalData, SealedPersonalData
from stafett_runtime.accesslog import AUDIT, AccessLog
from stafett_runtime.jetstream import JetStreamFactory
from stafett_runtime.jetstream.core import JetStreamCore
from stafett_runtime.keystore import ChildKeys
from stafett_runtime.natsaccess import ACCESS, Access, durable_name, streams
from stafett_runtime.natsserver import NatsServer

OWNERS = {row.owns: row.service for row in ACCESS}
APPENDERS = [row.service for row in ACCESS if AUDIT.stream in row.appends]
SEEN_BY_THE_PROJECTION = PersonalData(name="Astrid Nilsen")


def test_the_generated_nats_files_are_current() -> None:
    stale = [str(path) for path, text in generated_files().items() if path.read_text() != text]
    assert not stale, f"run `python -m deploy.nats.access`; stale: {stale}"


@pytest.fixture(scope="module")
def credentials() -> Credentials:
    return Credentials()


@dataclass(frozen=True)
class Secured:
    server: NatsServer
    sealed: SealedPersonalData  # by the case service, for the projection to open

    @property
    def url(self) -> str:
        return self.server.url


@pytest.fixture(scope="module")
def secured(
    tmp_path_factory: pytest.TempPathFactory, credentials: Credentials
) -> Iterator[Secured]:
    """nats-server with the generated users; every stream created by the Job's user, seeded."""
    server = start_secured(tmp_path_factory, credentials)
    try:
        asyncio.run(job_creates_the_streams(credentials, server.url))
        for stream, owner in OWNERS.items():  # one event in each, written by its owner
            store = factory(credentials, owner, server.url, stream)
            try:
                store.application_recorder().insert_events([event()])
            finally:
                store.close()
        yield Secured(server, asyncio.run(case_seals(credentials, server.url)))
    finally:
        server.stop()


def start_secured(factory: pytest.TempPathFactory, credentials: Credentials) -> NatsServer:
    with pytest.MonkeyPatch.context() as env:
        for name, value in credentials.server_environment().items():
            env.setenv(name, value)
        server = secured_server(factory.mktemp("nats-secured"))
        server.start()
    return server


async def job_creates_the_streams(credentials: Credentials, url: str) -> None:
    nc = await credentials.connect("streams", url)
    try:
        await create_streams(nc, replicas=1)
        await create_streams(nc, replicas=1)  # the Job runs on every deploy
    finally:
        await nc.close()


async def case_seals(credentials: Credentials, url: str) -> SealedPersonalData:
    nc = await credentials.connect("case", url)
    try:
        keys = await ChildKeys.bind(nc, environ={})
        return await keys.seal(SEEN_BY_THE_PROJECTION, f"child-{uuid4()}")
    finally:
        await nc.close()


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
    row: Access, secured: Secured, credentials: Credentials
) -> None:
    # It appends to its own stream, one event and several atomically, and reads them back.
    store = factory(credentials, row.service, secured.url, row.owns)
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
        upstream = factory(credentials, row.service, secured.url, stream)
        try:
            recorder = upstream.application_recorder()
            assert recorder.max_notification_id() is not None
            with recorder.subscribe(gt=0) as notifications:
                assert next(notifications).id == 1
        finally:
            upstream.close()

    asyncio.run(_the_rest_of_its_job(row, secured, credentials))


@dataclass(frozen=True)
class Attached:
    core: JetStreamCore


async def _the_rest_of_its_job(row: Access, secured: Secured, credentials: Credentials) -> None:
    errors = Errors()
    nc = await credentials.connect(row.service, secured.url, errors)
    try:
        if row.appends:
            await _records_a_read(row, nc)
        js = nc.jetstream()
        for stream in row.durables:  # as the projection's feed does
            name = durable_name(row.service, stream)
            assert (await js.stream_info(stream)).state.messages > 0
            await js.add_consumer(stream, ConsumerConfig(durable_name=name, filter_subject=">"))
            pull = await js.pull_subscribe("", durable=name, stream=stream)
            (message,) = await pull.fetch(1, timeout=5)
            await message.ack_sync()
            await pull.unsubscribe()
        for stream in row.rebuilds:  # a replay from the start, as the projection's rebuild does
            replay = await js.pull_subscribe(
                f"{stream.lower()}.events.>",
                stream=stream,
                config=ConsumerConfig(ack_policy=AckPolicy.NONE, deliver_policy=DeliverPolicy.ALL),
            )
            (message,) = await replay.fetch(1, timeout=5)
            await replay.unsubscribe()
            # then the durable consumers start afresh from the rebuilt positions
            await js.delete_consumer(stream, durable_name(row.service, stream))
        for bucket in row.writes_keys:
            keys = await ChildKeys.bind(nc, bucket=bucket, replicas=1, environ={})
            child = f"child-seen-by-{row.service}"  # the server is shared; each erases its own
            sealed = await keys.seal(PersonalData(name="Ola Nordmann"), child)
            assert await keys.open(sealed) == PersonalData(name="Ola Nordmann")
            await keys.erase(child, reason="test")
            assert await keys.open(sealed) == Erased()
        for bucket in row.reads_keys:
            keys = await ChildKeys.bind(nc, bucket=bucket, environ={}, create=False)
            assert await keys.open(secured.sealed) == SEEN_BY_THE_PROJECTION
        await nc.flush()
    finally:
        await nc.close()
    assert not errors.errors, errors.errors


async def _records_a_read(row: Access, nc: Client) -> None:
    """Appends CaseAccessed to AUDIT through the access log, as its kernel does."""
    log = AccessLog(Attached(await JetStreamCore.attach(nc)), row.service)
    await log.open()
    await log.record(
        actor=Actor(person="rektor-lia", role=Role.UNIT_LEADER, service="skole-lia"),
        case_id=uuid4(),
        what="case",
        purpose=None,
        access=ReadAccess(granted=True, rule="own-unit", whole_case=True),
        correlation_id=uuid4().hex,
    )


async def test_given_the_case_credentials_then_a_consent_cannot_be_forged(
    secured: Secured, credentials: Credentials
) -> None:
    before = await _messages_in("CONSENT", secured, credentials)
    refused = await _refusals(
        "case", secured, credentials, publish=[f"consent.events.{uuid4()}.ConsentGiven"]
    )
    assert 'permissions violation for publish to "consent.events.' in refused
    assert await _messages_in("CONSENT", secured, credentials) == before


async def test_given_the_notify_credentials_then_writing_to_the_case_stream_is_refused(
    secured: Secured, credentials: Credentials
) -> None:
    before = await _messages_in("CASE", secured, credentials)
    refused = await _refusals(
        "notify", secured, credentials, publish=[f"case.events.{uuid4()}.ConcernRaised"]
    )
    assert 'permissions violation for publish to "case.events.' in refused
    assert await _messages_in("CASE", secured, credentials) == before


@pytest.mark.parametrize("service", APPENDERS)
async def test_a_service_appending_to_the_access_log_cannot_read_change_or_delete_it(
    service: str, secured: Secured, credentials: Credentials
) -> None:
    before = await _messages_in("AUDIT", secured, credentials)
    api = "$JS.API"
    # The case service follows AUDIT (the archive deliveries): it may read it, never change it.
    follows = AUDIT.stream in next(row for row in ACCESS if row.service == service).follows
    reads = [
        # reading it: neither by direct get, nor message get, nor a consumer of any kind
        f"{api}.DIRECT.GET.AUDIT",
        f"{api}.STREAM.MSG.GET.AUDIT",
        f"{api}.CONSUMER.CREATE.AUDIT",
        f"{api}.CONSUMER.CREATE.AUDIT.mine",
    ]
    refused = await _refusals(
        service,
        secured,
        credentials,
        publish=[
            *([] if follows else reads),
            # changing or deleting it: its limits, a record, every record, the stream
            f"{api}.STREAM.UPDATE.AUDIT",
            f"{api}.STREAM.MSG.DELETE.AUDIT",
            f"{api}.STREAM.PURGE.AUDIT",
            f"{api}.STREAM.DELETE.AUDIT",
            # nor writing anything but events (the projection's tracking records)
            "audit.tracking.projection",
        ],
    )
    changes = ("stream.update", "stream.purge", "stream.delete", "tracking")
    for subject in changes if follows else ("direct.get", *changes):
        assert subject in refused, subject
    assert await _messages_in("AUDIT", secured, credentials) == before


async def test_given_the_projection_credentials_then_no_childs_key_can_be_written_or_deleted(
    secured: Secured, credentials: Credentials
) -> None:
    kv = "KV_CHILD_KEYS"
    refused = await _refusals(
        "projection",
        secured,
        credentials,
        publish=[
            f"$KV.CHILD_KEYS.{secured.sealed.child_id}",  # a new key over the child's
            f"$JS.API.STREAM.MSG.DELETE.{kv}",
            f"$JS.API.STREAM.PURGE.{kv}",
            f"$JS.API.STREAM.DELETE.{kv}",
            f"$JS.API.STREAM.CREATE.{kv}",
            f"$JS.API.STREAM.UPDATE.{kv}",
        ],
    )
    assert 'permissions violation for publish to "$kv.child_keys.' in refused
    assert "$js.api.stream.msg.delete.kv_child_keys" in refused
    # And the child's data still opens with the key the case service made
    nc = await credentials.connect("case", secured.url)
    try:
        keys = await ChildKeys.bind(nc, environ={})
        assert await keys.open(secured.sealed) == SEEN_BY_THE_PROJECTION
    finally:
        await nc.close()


async def test_given_the_case_credentials_then_another_services_replies_cannot_be_read(
    secured: Secured, credentials: Credentials
) -> None:
    errors = Errors()
    case = await credentials.connect("case", secured.url, errors)
    try:
        await case.subscribe("_INBOX.projection.>")
        refused = await errors.wait(1)
    finally:
        await case.close()
    assert 'permissions violation for subscription to "_inbox.projection.>"' in refused


async def test_given_no_access_log_yet_then_the_first_service_to_record_a_read_makes_it(
    tmp_path_factory: pytest.TempPathFactory, credentials: Credentials
) -> None:
    # Given nats-server with the generated users and no stream at all
    server = start_secured(tmp_path_factory, credentials)
    try:
        nc = await credentials.connect("consent", server.url)
        try:
            # When the consent service records a read
            await _records_a_read(next(row for row in ACCESS if row.service == "consent"), nc)
            # Then AUDIT exists, as the projection that owns it would have made it
            made = (await nc.jetstream().stream_info(AUDIT.stream)).config
        finally:
            await nc.close()
    finally:
        server.stop()
    assert made.subjects == streams()[AUDIT.stream].subjects
    assert made.deny_delete
    assert made.deny_purge


async def _refusals(
    user: str, secured: Secured, credentials: Credentials, publish: list[str]
) -> str:
    """Publish each subject as `user`, and wait for the server's refusal of every one."""
    errors = Errors()
    nc = await credentials.connect(user, secured.url, errors)
    try:
        for subject in publish:
            await nc.publish(subject, b"{}", reply=f"_INBOX.{user}.x")
        return await errors.wait(len(publish))
    finally:
        await nc.close()


async def _messages_in(stream: str, secured: Secured, credentials: Credentials) -> int:
    nc = await credentials.connect("admin", secured.url)
    try:
        answer = await nc.request(f"$JS.API.STREAM.INFO.{stream}", b"", timeout=5)
        count: int = json.loads(answer.data)["state"]["messages"]
        return count
    finally:
        await nc.close()


def test_the_job_creates_every_services_stream_the_evidence_and_the_childrens_keys() -> None:
    names = {path.stem for path in generated_files() if path.suffix == ".json"}
    assert names == {*OWNERS, "SIGNING_KEYS", "CHECKPOINTS", "KV_CHILD_KEYS"}
