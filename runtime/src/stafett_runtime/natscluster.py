"""A local JetStream cluster: N nats-servers on loopback, routed to each other.

Each node is a `NatsServer` (`natsserver.py`) whose `extra_config` carries its name, its
monitoring port and the cluster block. `url` names every node, as a service's `NATS_URL` does in
production; `start` returns once every node knows the cluster's meta leader, so a JetStream
request (creating a stream with replicas) is answered at once.

    with local_cluster(tmp / "cluster", size=3) as cluster:
        env = {"NATS_URL": cluster.url, "NATS_STREAM_REPLICAS": "3"}

`make_node` builds each node from its name, store folder and configuration block, so a caller
can add its own configuration (users and permissions, as deploy/tests/cluster.py does), and
`start_node` is where a subclass sets up what a node needs to start.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from stafett_runtime.natsserver import NatsServer, NatsServerError, free_port

CLUSTER_NAME = "stafett"
META_LEADER_WITHIN = 60.0  # seconds: an election takes a few; a loaded machine, more


def cluster_block(
    name: str,
    route_port: int,
    route_ports: Sequence[int],
    *,
    host: str = "127.0.0.1",
    cluster: str = CLUSTER_NAME,
) -> str:
    """A node's part of the configuration: its name, and the routes to every node (its own
    among them, which the server skips)."""
    routes = ", ".join(f"nats-route://{host}:{port}" for port in route_ports)
    return (
        f"server_name: {name}\n"
        f"cluster {{\n  name: {cluster}\n  listen: {host}:{route_port}\n"
        f"  routes: [{routes}]\n}}\n"
    )


# A node from its name, its store folder and its configuration block.
NodeFactory = Callable[[str, Path, str], NatsServer]


@dataclass
class NatsCluster:
    """Nodes by server name, and the monitoring endpoint of each."""

    nodes: dict[str, NatsServer]
    monitors: dict[str, str]

    @property
    def url(self) -> str:
        """Every node, comma-separated, as `NATS_URL` names a cluster."""
        return ",".join(node.url for node in self.nodes.values())

    def running(self) -> list[str]:
        return [name for name, node in self.nodes.items() if node.running]

    def start(self, timeout: float = META_LEADER_WITHIN) -> None:
        """Start every node, then wait until each knows the meta leader. A node that does not
        start, or no leader in time, stops the nodes started and raises NatsServerError."""
        try:
            for name in self.nodes:
                self.start_node(name)
            self.wait_for_meta_leader(timeout)
        except BaseException:
            self.stop()
            raise

    def start_node(self, name: str) -> None:
        self.nodes[name].start()

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop()

    def meta_leader(self) -> str | None:
        """The meta leader, if every running node names the same one (its /jsz)."""
        leaders = {self._meta_leader_of(name) for name in self.running()}
        if len(leaders) != 1:
            return None
        return leaders.pop()

    def wait_for_meta_leader(self, timeout: float = META_LEADER_WITHIN) -> str:
        deadline = time.monotonic() + timeout
        while (leader := self.meta_leader()) is None:
            if time.monotonic() > deadline:
                raise NatsServerError(f"the cluster elected no meta leader within {timeout}s")
            time.sleep(0.1)
        return leader

    def _meta_leader_of(self, name: str) -> str | None:
        try:
            with urllib.request.urlopen(f"{self.monitors[name]}/jsz", timeout=2.0) as answer:
                found = json.loads(answer.read())
        except (OSError, urllib.error.URLError, ValueError):
            return None
        leader = (found.get("meta_cluster") or {}).get("leader")
        return str(leader) if leader else None

    def __enter__(self) -> NatsCluster:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def local_cluster(
    root: Path,
    size: int = 3,
    *,
    sync_always: bool = True,
    host: str = "127.0.0.1",
    make_node: NodeFactory | None = None,
) -> NatsCluster:
    """`size` nodes, n1 to n<size>, each with its store in `root/<name>` and its log in
    `root/<name>.log`; not started (`start`, or use it as a context manager)."""
    if size < 1:
        raise ValueError("a cluster has at least one node")
    names = [f"n{i}" for i in range(1, size + 1)]
    route_ports = {name: free_port(host) for name in names}
    monitor_ports = {name: free_port(host) for name in names}

    def default_node(name: str, store_dir: Path, extra_config: str) -> NatsServer:
        return NatsServer(
            store_dir=store_dir,
            host=host,
            sync_always=sync_always,
            extra_config=extra_config,
            log_file=root / f"{name}.log",
        )

    make = make_node or default_node
    root.mkdir(parents=True, exist_ok=True)
    nodes = {
        name: make(
            name,
            root / name,
            f"http: {host}:{monitor_ports[name]}\n"
            + cluster_block(name, route_ports[name], list(route_ports.values()), host=host),
        )
        for name in names
    }
    monitors = {name: f"http://{host}:{port}" for name, port in monitor_ports.items()}
    return NatsCluster(nodes, monitors)
