"""The processing loop feeds another application's events into a process application once.

Given an upstream service's events, when a process application follows them, then each event
has its effect exactly once: also with two replicas at once, and after a crash mid-batch.
"""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO
from uuid import UUID

import pytest

from example_apps import Orders, Tallies, all_counted
from stafett_runtime.processing import ProcessingLoop, Upstream
from stafett_runtime.testing import NatsTestServer

HERE = Path(__file__).parent


def eventually(condition: Callable[[], bool], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def notification_ids(orders: Orders) -> list[int]:
    return [n.id for n in orders.recorder.select_notifications(None, 10_000)]


def test_each_upstream_event_is_processed_once(orders: Orders, env: dict[str, str]) -> None:
    # Given orders with several events each
    order_ids = [orders.place(lines=1) for _ in range(5)]
    orders.add_lines(order_ids[0], 3)
    # When the tallies follow the orders
    tallies = Tallies(env)
    loop = ProcessingLoop(tallies, Upstream.named("orders", env))
    loop.start()
    try:
        eventually(lambda: loop.lag() == 0)
        # Then every order event was counted once, and the position is the last one
        assert all_counted(tallies, order_ids) == notification_ids(orders)
        assert loop.position == orders.recorder.max_notification_id()
        # And an event recorded later is followed live
        orders.add_lines(order_ids[1], 1)
        eventually(lambda: loop.lag() == 0)
        assert all_counted(tallies, order_ids) == notification_ids(orders)
    finally:
        loop.stop()
        tallies.close()
    assert loop.error is None


def test_two_replicas_processing_the_same_events_count_each_once(
    orders: Orders, env: dict[str, str]
) -> None:
    # Given many events of few orders, so that the replicas collide on the same tallies
    order_ids = [orders.place() for _ in range(3)]
    for order_id in order_ids:
        orders.add_lines(order_id, 40)
    # When two replicas of the tallies service process them at the same time
    replicas = [Tallies(env), Tallies(env)]
    loops = [ProcessingLoop(t, Upstream.named("orders", env)) for t in replicas]
    for loop in loops:
        loop.start()
    try:
        eventually(lambda: all(loop.lag() == 0 for loop in loops))
    finally:
        for loop in loops:
            loop.stop()
    # Then each event was counted exactly once, whichever replica counted it
    assert all(loop.error is None for loop in loops)
    assert all_counted(replicas[0], order_ids) == notification_ids(orders)
    for tallies in replicas:
        tallies.close()


def start_worker(nats_url: str, delay: float) -> subprocess.Popen[str]:
    worker = subprocess.Popen(
        [sys.executable, str(HERE / "processing_worker.py"), nats_url],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(HERE), "TALLIES_DELAY": str(delay)},
    )
    assert worker.stdout is not None
    # A thread reads its output line by line. (Waiting on the pipe with select missed the marker
    # when it came in one chunk with the logs before it: the reader had buffered it already.)
    # It keeps reading afterwards, so that a full pipe never blocks the worker.
    lines: queue.Queue[str] = queue.Queue()

    def read(stdout: IO[str]) -> None:
        for line in stdout:
            lines.put(line)
        lines.put("")  # the end: the worker exited

    threading.Thread(target=read, args=(worker.stdout,), daemon=True).start()
    deadline = time.monotonic() + 60
    while True:
        try:
            line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            worker.kill()
            raise AssertionError("the worker did not start within 60 s") from None
        if line.strip() == "started":  # its logs may come before the marker
            return worker
        if not line:
            raise AssertionError(f"the worker exited with {worker.wait()} before it started")


def test_a_worker_killed_mid_batch_resumes_without_counting_twice(
    orders: Orders, env: dict[str, str], nats_server: NatsTestServer
) -> None:
    # Given one upstream write of 300 events: one atomic batch
    order_id = orders.place()
    orders.add_lines(order_id, 299)
    tallies = Tallies(env)
    # When a worker is killed (SIGKILL) part way through that batch
    worker = start_worker(nats_server.url, delay=0.002)
    eventually(lambda: (tallies.recorder.max_tracking_id("orders") or 0) > 50)
    worker.send_signal(signal.SIGKILL)
    worker.wait()
    killed_at = tallies.recorder.max_tracking_id("orders") or 0
    assert killed_at < 300  # truly mid-batch
    # And a new worker takes over
    worker = start_worker(nats_server.url, delay=0)
    try:
        eventually(lambda: tallies.recorder.max_tracking_id("orders") == 300)
    finally:
        worker.terminate()
        worker.wait()
    # Then every event was counted exactly once
    assert all_counted(tallies, [order_id]) == list(range(1, 301))
    tallies.close()


def test_the_upstream_stream_is_read_only(env: dict[str, str], orders: Orders) -> None:
    upstream = Upstream.named("orders", env)
    with pytest.raises(Exception, match="another service's stream"):
        upstream.save()
    upstream.close()


def test_an_order_id_is_a_uuid(orders: Orders) -> None:
    assert isinstance(orders.place(), UUID)
