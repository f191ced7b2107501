"""A local JetStream cluster (`stafett_runtime.natscluster`).

Given a 3-node cluster started, then every node knows one meta leader, and the store, given
every node's URL and 3 replicas, writes to a stream that has 3 replicas and reads its events
back; once stopped, no node runs. Given a node that cannot start, then starting raises and
leaves none of the others running.
"""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path
from uuid import uuid4

import nats
import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import Environment

from stafett_runtime.jetstream import JetStreamFactory
from stafett_runtime.jetstream.client import server_urls
from stafett_runtime.natscluster import cluster_block, local_cluster
from stafett_runtime.natsserver import NatsServerError


def test_a_node_is_routed_to_every_node() -> None:
    block = cluster_block("n2", 7002, [7001, 7002, 7003])

    assert block.startswith("server_name: n2\n")
    assert "listen: 127.0.0.1:7002" in block
    assert "routes: [nats-route://127.0.0.1:7001, nats-route://127.0.0.1:7002, " in block


def test_the_store_writes_to_a_stream_with_three_replicas(tmp_path: Path) -> None:
    with local_cluster(tmp_path / "cluster", size=3) as cluster:
        # Given the cluster as a service is given it
        assert cluster.meta_leader() in {"n1", "n2", "n3"}
        assert len(server_urls(cluster.url)) == 3
        env = {"NATS_URL": cluster.url, "NATS_STREAM_REPLICAS": "3", "SIGNING": "no"}
        factory = JetStreamFactory(Environment("Orders", env))
        try:
            # When the store appends an event and reads it back
            recorder = factory.application_recorder()
            originator_id = uuid4()
            recorder.insert_events([StoredEvent(originator_id, 1, "orders:Placed", b"{}")])
            read = recorder.select_events(originator_id)
            stream = factory.layout.stream
        finally:
            factory.close()

        # Then it is there, in a stream with 3 replicas
        assert [e.originator_version for e in read] == [1]
        assert asyncio.run(replicas_of(cluster.url, stream)) == 3
    assert cluster.running() == []


async def replicas_of(url: str, stream: str) -> int:
    nc = await nats.connect(server_urls(url))
    try:
        info = await nc.jetstream().stream_info(stream)
        return info.config.num_replicas or 1
    finally:
        await nc.close()


def test_a_node_that_cannot_start_stops_the_others(tmp_path: Path) -> None:
    cluster = local_cluster(tmp_path / "cluster", size=3)
    with socket.socket() as taken:  # the last node's port, held by someone else
        taken.bind(("127.0.0.1", cluster.nodes["n3"].port))
        taken.listen()
        with pytest.raises(NatsServerError, match="already in use"):
            cluster.start()
    assert cluster.running() == []
