"""The infrastructure factory: what `PERSISTENCE_MODULE=stafett_runtime.jetstream` selects.

Settings, read from the application's environment (each may be prefixed with the application's
name, e.g. `CASE_NATS_STREAM`, as everywhere in eventsourcing):

| variable | default | meaning |
|---|---|---|
| NATS_URL | nats://127.0.0.1:4222 | the server (several, comma-separated, for a cluster) |
| NATS_USER, NATS_PASSWORD | | user and password |
| NATS_CREDS | | a credentials file (JWT and NKey) instead |
| NATS_TLS_CA | | CA bundle: connect with TLS and verify the server against it |
| NATS_INBOX_PREFIX | _INBOX | where replies come (`_INBOX.case`), so permissions stay narrow |
| NATS_STREAM | the application name, upper case | the stream of the application's events |
| NATS_SUBJECT_PREFIX | the application name, lower case | the first token of its subjects |
| NATS_STREAM_REPLICAS | 1 | replicas when the store creates a stream (3 in a cluster) |
| NATS_TIMEOUT | 10 | seconds to wait for the server |
| NATS_GROUP_COMMIT | yes | concurrent appends share one atomic batch (see `core.py`) |
| CREATE_TABLE | yes | create the streams if missing (the library's name for this switch) |
| SIGNER | the application name | whose events these are: signed as `<SIGNER>/<key id>` |
| SIGNING_KEY_FILE | | the signer's Ed25519 key (made if missing); none: a key of the process |
| SIGNING | yes | sign every message (`stafett_runtime.evidence`); `no` only to measure the cost |

Every factory in a process with the same server, credentials and timeout shares one connection
(`client.py`); closing one application leaves it open under the others.
"""

from __future__ import annotations

from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    ProcessRecorder,
)
from eventsourcing.utils import Environment, EnvType, resolve_topic, strtobool

from stafett_runtime import evidence
from stafett_runtime.jetstream.client import ConnectionSettings, JetStreamClient
from stafett_runtime.jetstream.layout import StreamLayout, default_names
from stafett_runtime.jetstream.recorders import (
    JetStreamAggregateRecorder,
    JetStreamApplicationRecorder,
    JetStreamProcessRecorder,
    JetStreamTrackingRecorder,
)


class JetStreamFactory(InfrastructureFactory[JetStreamTrackingRecorder]):
    NATS_URL = "NATS_URL"
    NATS_USER = "NATS_USER"
    NATS_PASSWORD = "NATS_PASSWORD"
    NATS_CREDS = "NATS_CREDS"
    NATS_TLS_CA = "NATS_TLS_CA"
    NATS_INBOX_PREFIX = "NATS_INBOX_PREFIX"
    NATS_STREAM = "NATS_STREAM"
    NATS_SUBJECT_PREFIX = "NATS_SUBJECT_PREFIX"
    NATS_STREAM_REPLICAS = "NATS_STREAM_REPLICAS"
    NATS_TIMEOUT = "NATS_TIMEOUT"
    NATS_GROUP_COMMIT = "NATS_GROUP_COMMIT"
    CREATE_TABLE = "CREATE_TABLE"
    SIGNER = "SIGNER"
    SIGNING_KEY_FILE = "SIGNING_KEY_FILE"
    SIGNING = "SIGNING"

    def __init__(self, env: Environment | EnvType | None):
        super().__init__(env)
        stream, prefix = default_names(self.env.name)
        self.layout = StreamLayout(
            stream=self.env.get(self.NATS_STREAM) or stream,
            prefix=self.env.get(self.NATS_SUBJECT_PREFIX) or prefix,
        )
        self.client = JetStreamClient(
            ConnectionSettings(
                url=self.env.get(self.NATS_URL) or ConnectionSettings.url,
                name=self.env.name or "eventsourcing",
                user=self.env.get(self.NATS_USER),
                password=self.env.get(self.NATS_PASSWORD),
                creds_file=self.env.get(self.NATS_CREDS),
                tls_ca_file=self.env.get(self.NATS_TLS_CA),
                inbox_prefix=self.env.get(self.NATS_INBOX_PREFIX),
                timeout=float(self.env.get(self.NATS_TIMEOUT) or ConnectionSettings.timeout),
            )
        )
        self.group_commit = strtobool(self.env.get(self.NATS_GROUP_COMMIT) or "yes")
        self._ensured: set[str] = set()
        self.signer: evidence.Signer | None = None
        if strtobool(self.env.get(self.SIGNING) or "yes"):
            self.signer = evidence.load_signer(
                self.env.get(self.SIGNER) or self.env.name or "events",
                self.env.get(self.SIGNING_KEY_FILE) or None,
            )

    def aggregate_recorder(self, purpose: str = "events") -> AggregateRecorder:
        return JetStreamAggregateRecorder(
            self.client,
            self._stream(purpose),
            group_commit=self.group_commit,
            signer=self._signer(),
        )

    def application_recorder(self) -> ApplicationRecorder:
        return JetStreamApplicationRecorder(
            self.client,
            self._stream("events"),
            group_commit=self.group_commit,
            signer=self._signer(),
        )

    def tracking_recorder(
        self, tracking_recorder_class: type[JetStreamTrackingRecorder] | None = None
    ) -> JetStreamTrackingRecorder:
        if tracking_recorder_class is None:
            topic = self.env.get(self.TRACKING_RECORDER_TOPIC)
            tracking_recorder_class = resolve_topic(topic) if topic else JetStreamTrackingRecorder
        assert tracking_recorder_class is not None
        if not issubclass(tracking_recorder_class, JetStreamTrackingRecorder):
            raise TypeError(f"{tracking_recorder_class} is not a JetStreamTrackingRecorder")
        return tracking_recorder_class(
            self.client,
            self._stream("events"),
            group_commit=self.group_commit,
            signer=self._signer(),
        )

    def process_recorder(self) -> ProcessRecorder:
        return JetStreamProcessRecorder(
            self.client,
            self._stream("events"),
            group_commit=self.group_commit,
            signer=self._signer(),
        )

    def close(self) -> None:
        self.client.close()

    def _signer(self) -> evidence.Signer | None:
        """The signer, its public key published before anything is signed with it."""
        if self.signer is not None:
            replicas = int(self.env.get(self.NATS_STREAM_REPLICAS) or 1)
            create = strtobool(self.env.get(self.CREATE_TABLE) or "yes")
            publishing = evidence.publish_key(
                self.client.core, self.signer, replicas, create=create
            )
            self.client.run(publishing)
        return self.signer

    def _stream(self, purpose: str) -> StreamLayout:
        layout = self.layout.for_purpose(purpose)
        create = strtobool(self.env.get(self.CREATE_TABLE) or "yes")
        if create and layout.stream not in self._ensured:
            replicas = int(self.env.get(self.NATS_STREAM_REPLICAS) or 1)
            self.client.run(self.client.ensure_stream(layout, replicas))
            self._ensured.add(layout.stream)
        return layout
