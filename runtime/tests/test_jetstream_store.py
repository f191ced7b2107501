"""What the JetStream store promises beyond the library's test cases.

Given/when/then in the store's own terms: notification ids, concurrency between processes,
durability across a crash of the server, failing fast while it is away, ciphers, snapshots, and
the thread rule.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from uuid import UUID, uuid4

import nats
import pytest
from eventsourcing.cipher import AESCipher
from eventsourcing.persistence import (
    IntegrityError,
    OperationalError,
    ProgrammingError,
    StoredEvent,
    Tracking,
)
from eventsourcing.utils import Environment
from nats.aio.msg import Msg

from example_apps import Order, Orders
from stafett_runtime.jetstream import JetStreamFactory
from stafett_runtime.jetstream.client import LoopThread
from stafett_runtime.jetstream.core import JetStreamCore, close_connection, connection_options
from stafett_runtime.jetstream.recorders import JetStreamApplicationRecorder
from stafett_runtime.natsserver import NatsServer, free_port
from stafett_runtime.testing import NatsTestServer

T = TypeVar("T")


@pytest.fixture
def factory(nats_server: NatsTestServer) -> Iterator[JetStreamFactory]:
    factory = JetStreamFactory(Environment("orders", {"NATS_URL": nats_server.url}))
    yield factory
    factory.close()


def event(originator_id: UUID | str, version: int) -> StoredEvent:
    state = f"{originator_id}/{version}".encode()
    return StoredEvent(originator_id, version, "example:Thing.Happened", state)


def test_interleaved_aggregates_in_one_write_get_the_ids_they_are_stored_at(
    factory: JetStreamFactory,
) -> None:
    recorder = factory.application_recorder()
    a, b = uuid4(), uuid4()
    # When one write holds events of two aggregates, interleaved
    ids = recorder.insert_events([event(a, 1), event(b, 1), event(a, 2)])
    # Then each event's id is where that very event is stored
    stored = {
        n.id: (n.originator_id, n.originator_version)
        for n in recorder.select_notifications(None, 10)
    }
    assert ids is not None
    assert [stored[i] for i in ids] == [(a, 1), (b, 1), (a, 2)]


def test_the_notification_log_holds_only_events_though_tracking_records_share_the_stream(
    factory: JetStreamFactory,
) -> None:
    recorder = factory.process_recorder()
    a, b = uuid4(), uuid4()
    # Given a process application's writes: events, each with where it is in its upstream
    written: list[int] = []
    for position, (originator_id, version) in enumerate([(a, 1), (b, 1), (a, 2)], start=1):
        ids = recorder.insert_events(
            [event(originator_id, version)], tracking=Tracking("upstream", position)
        )
        assert ids is not None
        written += ids
    # When the log is read whole, and a page at a time
    whole = recorder.select_notifications(None, 10)
    first = recorder.select_notifications(None, 2)
    rest = recorder.select_notifications(first[-1].id, 2, inclusive_of_start=False)
    # Then it holds the events alone, at the ids they were given, and a page counts events
    assert [(n.id, n.originator_id, n.originator_version) for n in whole] == [
        (written[0], a, 1),
        (written[1], b, 1),
        (written[2], a, 2),
    ]
    assert [n.id for n in first] == written[:2]
    assert [n.id for n in rest] == written[2:]
    assert recorder.max_tracking_id("upstream") == 3


def test_any_string_can_be_an_aggregate_id(factory: JetStreamFactory) -> None:
    recorder = factory.application_recorder()
    odd_ids = ["case 2026/17", "a.b.c", "*", ">", "ÆØÅ"]
    for originator_id in odd_ids:
        recorder.insert_events([event(originator_id, 1)])
    for originator_id in odd_ids:
        (stored,) = recorder.select_events(originator_id)
        assert stored.originator_id == originator_id


def test_reading_on_from_a_known_version_sees_what_another_process_wrote(
    nats_server: NatsTestServer, factory: JetStreamFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given an aggregate read whole by this process (which then knows where it ends)
    here = factory.application_recorder()
    assert isinstance(here, JetStreamApplicationRecorder)
    aggregate = uuid4()
    here.insert_events([event(aggregate, 1), event(aggregate, 2), event(aggregate, 3)])
    assert [e.originator_version for e in here.select_events(aggregate)] == [1, 2, 3]
    # When another process, with its own connection and memory, appends two more
    elsewhere = JetStreamFactory(Environment("orders", {"NATS_URL": nats_server.url}))
    try:
        elsewhere.application_recorder().insert_events([event(aggregate, 4), event(aggregate, 5)])
    finally:
        elsewhere.close()
    # Then reading on from the known version asks the server only for what lies beyond it,
    # and finds exactly what follows, as a read from an earlier version does
    starts: list[int] = []
    read_all = here.client.read_all

    async def spied(stream: str, subject: str, page: int = 1000, start: int = 1) -> Any:
        starts.append(start)
        return await read_all(stream, subject, page, start)

    monkeypatch.setattr(here.client, "read_all", spied)
    assert [e.originator_version for e in here.select_events(aggregate, gt=3)] == [4, 5]
    assert starts == [4]  # the stream holds only this aggregate: version 3 is at sequence 3
    assert [e.originator_version for e in here.select_events(aggregate, gt=5)] == []
    assert [e.originator_version for e in here.select_events(aggregate, gt=1)] == [2, 3, 4, 5]
    assert [e.state for e in here.select_events(aggregate, gt=4)] == [f"{aggregate}/5".encode()]


def test_two_processes_saving_the_same_aggregate_never_both_win(
    nats_server: NatsTestServer,
) -> None:
    # Given one aggregate, and two processes (own connections, own memory of heads)
    env = {"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": nats_server.url}
    first, second = Orders(env), Orders(env)
    order_id = first.place()
    wins = {"first": 0, "second": 0}

    def keep_adding(app: Orders, who: str) -> None:
        for _ in range(30):
            try:
                app.add_lines(order_id, 1)
                wins[who] += 1
            except IntegrityError:
                pass  # the other process saved first: this command lost, nothing was written

    # When both add lines at the same time
    threads = [
        threading.Thread(target=keep_adding, args=(first, "first")),
        threading.Thread(target=keep_adding, args=(second, "second")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # Then every version was written once, by exactly one of them
    order: Order = first.repository.get(order_id)
    assert order.lines == 1 + wins["first"] + wins["second"]
    versions = [e.originator_version for e in first.recorder.select_events(order_id)]
    assert versions == list(range(1, order.version + 1))
    first.close()
    second.close()


def test_acknowledged_events_survive_a_crash_of_the_server(
    nats_server: NatsTestServer, env: dict[str, str]
) -> None:
    # Given events the server acknowledged
    orders = Orders(env)
    order_id = orders.place()
    orders.add_lines(order_id, 9)
    # When the server is killed (no clean shutdown), the process too, and the server is
    # started again on the same store
    nats_server.kill()
    orders.close()
    nats_server.start()
    # Then a new process (with a connection of its own) reads every one of them
    again = Orders(env)
    assert again.repository.get(order_id).lines == 10
    again.close()


def test_while_the_server_is_away_a_call_fails_at_once_and_the_store_reconnects_after(
    nats_server: NatsTestServer, env: dict[str, str]
) -> None:
    # Given a store that would wait an hour for a connected server to answer
    orders = Orders({**env, "NATS_TIMEOUT": "3600"})
    orders.place()
    # When the server goes away
    nats_server.stop()
    # Then a call fails at once, as unavailable (503 for a service's client), not after the wait
    with ThreadPoolExecutor(1) as worker:
        attempt = worker.submit(orders.place)
        with pytest.raises(OperationalError, match="unreachable"):
            attempt.result(timeout=30)  # far less than the hour a wait would take
    # And when it is back, the same process writes again without being restarted
    nats_server.start()
    order_id = until_reachable(orders.place)
    assert orders.repository.get(order_id).lines == 1
    orders.close()


def test_a_paused_server_is_noticed_within_seconds_and_a_call_fails_instead_of_waiting(
    tmp_path: Path,
) -> None:
    with NatsServer(tmp_path / "nats") as server:
        # Given a store that would wait an hour for a connected server to answer
        env = {"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": server.url}
        orders = Orders({**env, "NATS_TIMEOUT": "3600"})
        orders.place()
        # When the server freezes (SIGSTOP): the connection stays open, and nothing answers
        server.pause()
        try:
            # Then a call fails as unavailable once the unanswered pings give the server up
            with ThreadPoolExecutor(1) as worker:
                attempt = worker.submit(orders.place)
                with pytest.raises(OperationalError, match="unreachable"):
                    attempt.result(timeout=30)  # far less than the hour a wait would take
        finally:
            server.resume()
        # And when it goes on, the same process writes again
        order_id = until_reachable(orders.place)
        assert orders.repository.get(order_id).lines == 1
        orders.close()


async def test_a_call_waiting_for_the_server_is_told_when_the_connection_drops(
    nats_server: NatsTestServer,
) -> None:
    # Given a call waiting for an answer that takes its time (nobody answers for now)
    nc = await nats.connect(nats_server.url, **connection_options())
    core = await JetStreamCore.attach(nc, wait=3600)
    received = asyncio.Event()

    async def never_answer(_: Msg) -> None:
        received.set()

    await nc.subscribe("orders.silent", cb=never_answer)
    waiting = asyncio.ensure_future(core.while_connected(nc.request("orders.silent", timeout=3600)))
    await received.wait()
    # When the connection drops (the server is killed)
    nats_server.kill()
    # Then the call is told the store is unreachable, instead of waiting for its answer
    with pytest.raises(OperationalError, match="unreachable"):
        await asyncio.wait_for(waiting, 30)  # far less than the hour it would wait
    await close_connection(nc, drain=False)


def until_reachable(call: Callable[[], T]) -> T:
    """`call`'s answer once the store has reconnected (each attempt fails fast until then)."""
    for _ in range(300):
        try:
            return call()
        except OperationalError:
            time.sleep(0.1)
    raise AssertionError("the store did not reconnect")


def test_an_application_with_a_cipher_stores_only_ciphertext(env: dict[str, str]) -> None:
    key = AESCipher.create_key(32)
    orders = Orders({**env, "CIPHER_TOPIC": "eventsourcing.cipher:AESCipher", "CIPHER_KEY": key})
    order_id = orders.place(lines=7)
    # The bytes in the stream do not show the state
    (stored,) = orders.recorder.select_events(order_id)
    assert b"lines" not in stored.state
    # Yet the application reads it back
    assert orders.repository.get(order_id).lines == 7
    # And without the key, it cannot
    plain = Orders(env)
    with pytest.raises(ValueError):  # noqa: PT011 (the library's error for undecodable state)
        plain.repository.get(order_id)
    orders.close()
    plain.close()


class SnapshottingOrders(Orders):
    snapshotting_intervals = {Order: 5}


def test_an_application_with_snapshots_loads_from_the_latest(env: dict[str, str]) -> None:
    orders = SnapshottingOrders({**env, "IS_SNAPSHOTTING_ENABLED": "y"})
    order_id = orders.place()
    for _ in range(11):
        orders.add_lines(order_id, 1)
    assert orders.snapshots is not None
    snapshots = list(orders.snapshots.get(order_id))
    assert [s.originator_version for s in snapshots] == [5, 10]
    assert orders.repository.get(order_id).lines == 12
    assert orders.repository.get(order_id, version=7).lines == 7  # time travel still works
    orders.close()


async def test_calling_the_store_on_a_running_event_loop_is_refused(env: dict[str, str]) -> None:
    orders = await asyncio.to_thread(Orders, env)
    with pytest.raises(ProgrammingError, match=r"asyncio\.to_thread"):
        orders.place()
    # The right way: from a worker thread
    order_id = await asyncio.to_thread(orders.place)
    assert (await asyncio.to_thread(orders.repository.get, order_id)).lines == 1
    await asyncio.to_thread(orders.close)


def test_a_store_without_a_server_fails_fast_with_a_clear_error() -> None:
    nowhere = f"nats://127.0.0.1:{free_port()}"
    env = Environment("orders", {"NATS_URL": nowhere, "NATS_TIMEOUT": "1"})
    with pytest.raises(OperationalError, match="cannot connect to NATS"):
        JetStreamFactory(env)


def test_a_call_in_flight_when_the_store_closes_is_told_instead_of_waiting_forever() -> None:
    # Given a store's loop thread with a call waiting on it from another thread
    loop_thread = LoopThread(name="closing-store")
    answers: list[BaseException | str] = []

    def call() -> None:
        try:
            answers.append(loop_thread.run(asyncio.sleep(3600, result="never")))
        except ProgrammingError as error:
            answers.append(error)

    caller = threading.Thread(target=call)
    caller.start()
    time.sleep(0.2)  # the call is now on the loop
    # When the store is closed
    loop_thread.stop()
    # Then the caller is told, and its thread ends
    caller.join(timeout=10)
    assert not caller.is_alive()
    (answer,) = answers
    assert isinstance(answer, ProgrammingError)
    assert "closed while this call waited" in str(answer)


async def test_a_store_closed_on_an_event_loop_drains_without_blocking_it(
    nats_server: NatsTestServer,
) -> None:
    # Given a store (as an application garbage-collected on a service's event loop would hold)
    env = Environment("orders", {"NATS_URL": nats_server.url})
    before = set(threading.enumerate())
    factory = await asyncio.to_thread(JetStreamFactory, env)
    (loop_thread,) = (
        t for t in threading.enumerate() if t not in before and t.name == "jetstream:orders"
    )
    # When it is closed on this running event loop
    factory.close()
    # Then the close returns at once, and the store's own loop drains and stops by itself
    for _ in range(100):
        if not loop_thread.is_alive():
            break
        await asyncio.sleep(0.05)
    assert not loop_thread.is_alive()
