"""The services on a 3-node JetStream cluster with R3 streams, as the prod overlay runs them.

Given the consent and case services, each connected as its own NATS user with the generated
permissions, when one NATS node is stopped, then commands are still appended and the case
service still learns of consents; and when the node comes back, nothing is lost: the stream
is complete even with another node down, so the returned node holds every event too. Neither
service is refused anything by NATS along the way.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from uuid import UUID

import httpx
import pytest
from eventsourcing.utils import Environment

from deploy.tests.cluster import Cluster, Service, eventually, start_cluster, start_services
from deploy.tests.secured_nats import Credentials
from stafett_contracts.identity import Actor, Role
from stafett_runtime.auth import DevelopmentKey
from stafett_runtime.jetstream import JetStreamFactory
from stafett_runtime.register import FileRegister
from stafett_runtime.testing import a_child

KINDERGARTEN = "barnehage-solsikke"
EMPLOYEE = Actor(person="ansatt-1", role=Role.EMPLOYEE, service=KINDERGARTEN)
GUARDIAN = Actor(person="forelder-1", role=Role.GUARDIAN)
STREAMS = ["CASE", "CONSENT", "KV_CHILD_KEYS"]


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    cluster = start_cluster(tmp_path / "cluster", Credentials())
    try:
        yield cluster
    finally:
        for node in cluster.nodes.values():
            node.stop()


class Stafett:
    """The two services and a client for them."""

    def __init__(self, cluster: Cluster, data_dir: Path) -> None:
        self.cluster = cluster
        self.key = DevelopmentKey.load_or_create(data_dir / "dev-signing-key.pem")
        self.services: list[Service] = start_services(["consent", "case"], cluster, data_dir)
        self.consent, self.case = self.services
        self.register = FileRegister(data_dir / "register.json")
        self.http = httpx.Client(timeout=30)

    def a_child(self) -> UUID:
        """A child of the guardian, in the register the services read."""
        child = a_child(GUARDIAN.person)
        self.register.add(child)
        return child.child_id

    def as_(self, actor: Actor) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key.mint(actor)}"}

    def raise_concern(self, child_id: UUID) -> UUID:
        raised = self.http.post(
            f"{self.case.url}/cases",
            json={"child_id": str(child_id), "concern": "Trekker seg unna i lek."},
            headers=self.as_(EMPLOYEE),
        )
        assert raised.status_code == 201, raised.text
        return UUID(raised.json()["id"])

    def give_consent(self, case_id: UUID) -> None:
        given = self.http.post(
            f"{self.consent.url}/consents",
            json={
                "case_id": str(case_id),
                "given_by": {"kind": "guardian", "person": GUARDIAN.person},
                "services": [KINDERGARTEN, "ppt"],
                "purposes": ["cooperation"],
                "valid_from": datetime.now(UTC).isoformat(),
                "evidence": {
                    "form": "written",
                    "document_ref": "arkiv/2026/1",
                    "document_sha256": hashlib.sha256(b"signed").hexdigest(),
                },
            },
            headers=self.as_(GUARDIAN),
        )
        assert given.status_code == 201, given.text

    def note_bright_spot(self, case_id: UUID, note: str) -> None:
        noted = self.http.post(
            f"{self.case.url}/cases/{case_id}/note-bright-spot",
            json={"note": note},
            headers=self.as_(EMPLOYEE),
        )
        assert noted.status_code == 201, noted.text

    def case_events(self, case_id: UUID) -> list[str]:
        """The case's event types, read from the CASE stream through the running nodes."""
        urls = ",".join(node.url for node in self.cluster.running())
        env = {**self.cluster.credentials.service_env("admin", urls), "CREATE_TABLE": "no"}
        env.pop("NATS_INBOX_PREFIX")
        factory = JetStreamFactory(Environment("case", env))
        try:
            stored = factory.application_recorder().select_events(case_id)
            return [s.topic.removeprefix("case.").split("@")[0] for s in stored]
        finally:
            factory.close()

    def wait_for(self, event_type: str, case_id: UUID) -> None:
        eventually(lambda: event_type in self.case_events(case_id), f"{event_type} on the case")

    def stop(self) -> None:
        self.http.close()
        for service in reversed(self.services):
            service.stop()


@pytest.fixture
def stafett(cluster: Cluster, tmp_path: Path) -> Iterator[Stafett]:
    running = Stafett(cluster, tmp_path)
    try:
        yield running
    finally:
        running.stop()


def test_given_r3_streams_when_one_node_stops_then_the_services_keep_working_and_lose_nothing(
    cluster: Cluster, stafett: Stafett
) -> None:
    # Given a case whose consent the case service learned from the CONSENT stream
    first = stafett.raise_concern(stafett.a_child())
    stafett.give_consent(first)
    stafett.wait_for("ConsentNoted", first)

    # When the node that leads the CASE stream stops
    stopped = cluster.leader("CASE")
    cluster.nodes[stopped].stop()
    cluster.wait_for_leaders(STREAMS)

    # Then commands are still appended, and consents still reach the case service
    stafett.note_bright_spot(first, "Leker med de andre igjen.")
    second = stafett.raise_concern(stafett.a_child())
    stafett.give_consent(second)
    stafett.wait_for("ConsentNoted", second)

    # When the node comes back and has caught up
    cluster.start(stopped)
    eventually(lambda: cluster.replicas_current("CASE"), "the returned node has caught up")
    stafett.note_bright_spot(second, "Godt samarbeid.")

    # Then, even with another node down, so that the returned one must answer, nothing is lost
    other = next(name for name in cluster.nodes if name != stopped)
    cluster.nodes[other].stop()
    cluster.wait_for_leaders(STREAMS)
    assert stafett.case_events(first) == ["ConcernRaised", "ConsentNoted", "BrightSpotNoted"]
    assert stafett.case_events(second) == ["ConcernRaised", "ConsentNoted", "BrightSpotNoted"]
    # And all along, each service did only what its NATS user is permitted
    for service in stafett.services:
        assert "permissions violation" not in service.log.read_text().lower(), service.name
