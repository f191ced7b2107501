"""The eventsourcing library's own recorder test cases, run unweakened against JetStream.

Each test gets streams of its own on a shared real nats-server, so notification ids start at 1.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    ProcessRecorder,
    TrackingRecorder,
)
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    InfrastructureFactoryTestCase,
    NonInterleavingNotificationIDsBaseCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)
from eventsourcing.utils import Environment

from stafett_runtime.jetstream import (
    JetStreamAggregateRecorder,
    JetStreamApplicationRecorder,
    JetStreamFactory,
    JetStreamProcessRecorder,
    JetStreamTrackingRecorder,
)
from stafett_runtime.testing import NatsTestServer


@pytest.fixture(autouse=True)
def _server(request: pytest.FixtureRequest, shared_nats_server: NatsTestServer) -> None:
    request.cls.nats_url = shared_nats_server.url


class OwnStreams:
    """Gives each test case a factory on streams nobody else uses, and closes it afterwards."""

    nats_url: str

    def setUp(self) -> None:
        self.factories: list[InfrastructureFactory[Any]] = []
        super().setUp()  # type: ignore[misc]

    def tearDown(self) -> None:
        super().tearDown()  # type: ignore[misc]
        for factory in self.factories:
            factory.close()

    def new_factory(self) -> JetStreamFactory:
        name = "T" + uuid.uuid4().hex[:12]
        factory = JetStreamFactory(Environment(name, {"NATS_URL": self.nats_url}))
        self.factories.append(factory)
        return factory


class TestAggregateRecorder(OwnStreams, AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return self.new_factory().aggregate_recorder()


class TestSnapshotRecorder(OwnStreams, AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return self.new_factory().aggregate_recorder("snapshots")


class TestApplicationRecorder(OwnStreams, ApplicationRecorderTestCase[ApplicationRecorder]):
    def create_recorder(self) -> ApplicationRecorder:
        return self.new_factory().application_recorder()

    def test_insert_subscribe(self) -> None:
        self.optional_test_insert_subscribe()


class TestTrackingRecorder(OwnStreams, TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        return self.new_factory().tracking_recorder()


class TestProcessRecorder(OwnStreams, ProcessRecorderTestCase):
    def create_recorder(self) -> ProcessRecorder:
        return self.new_factory().process_recorder()


class TestNonInterleavingNotificationIDs(OwnStreams, NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> ApplicationRecorder:
        return self.new_factory().application_recorder()


class CustomTrackingRecorder(JetStreamTrackingRecorder):
    pass


class TestInfrastructureFactory(OwnStreams, InfrastructureFactoryTestCase[JetStreamFactory]):
    def setUp(self) -> None:
        self.env = Environment(
            "T" + uuid.uuid4().hex[:12],
            {"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": self.nats_url},
        )
        super().setUp()

    def expected_factory_class(self) -> type[JetStreamFactory]:
        return JetStreamFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return JetStreamAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return JetStreamApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return JetStreamTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        return CustomTrackingRecorder

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return JetStreamProcessRecorder
