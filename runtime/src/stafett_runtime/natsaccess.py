"""Who may do what on NATS: one table, for `stafett up` and for deploy/ alike.

Each service connects as its own NATS user and may do exactly what its row says, nothing more:

- `owns`: the stream it appends its events to (and, with CREATE_TABLE on, creates). It publishes
  only to that stream's subjects, reads it by direct get and follows it with ordered consumers.
- `appends`: other streams it only appends to: `CaseAccessed` to AUDIT, from every service that
  answers reads of case data. It may look the stream up and create it if missing (the kernel
  makes AUDIT with the store's configuration), but not change it, read it, or delete from it.
- `follows`: other services' streams it reads: by direct get (the upstream's aggregates and head)
  and through ordered consumers (ephemeral, no acknowledgements), which need flow-control replies.
- `durables`: streams it consumes through a durable consumer named `<service>-<stream>`, lower
  case (look the stream up, create or bind the consumer, pull the next messages, acknowledge).
- `rebuilds`: streams it may read again from the start, through ephemeral pull consumers of its
  own (made with a name of their own, pulled without acknowledgements), and whose consumers it
  may delete, so that a replay leaves none behind and the durables start afresh.
- `writes_keys`: NATS KV buckets it reads and writes (and erases single messages from): the case
  service, which makes children's keys and erases them.
- `reads_keys`: buckets it only reads (the projection opens sealed personal data): the bucket's
  info and its messages, never a write, a delete or a new stream.

Every service signs what it appends and checkpoints the stream it owns (`stafett_runtime.evidence`):
it publishes its public keys and its checkpoints under its own name only
(`evidence.keys.<service>.>`, `evidence.checkpoints.<service>.>`), may make those two streams
if missing, and reads CHECKPOINTS (to carry on from its last checkpoint).

Every user receives replies only on its own inbox prefix (`_INBOX.<user>`, the service's
NATS_INBOX_PREFIX), so no user can read another's replies. The `streams` user creates and updates
the streams (deploy's Job); `admin` is for operators (backup, restore, the `stafett` command's
tools) and is never given to a service.

`stafett up` writes `authorization_block(passwords)` into its nats-server configuration, with the
passwords it made once per data folder (`generate_passwords`), and creates the streams first
(`create_missing_streams`), as deploy's Job does; `deploy/nats/access.py` renders deploy's
files (auth.conf, the Helm values, the stream definitions) from the same table.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from nats.aio.client import Client
from nats.js.api import StreamConfig
from nats.js.errors import NotFoundError

from stafett_contracts.catalogue import BY_SERVICE
from stafett_runtime.evidence import CHECKPOINTS, KEYS
from stafett_runtime.jetstream.core import stream_config
from stafett_runtime.jetstream.layout import StreamLayout
from stafett_runtime.keystore import DEFAULT_BUCKET, bucket_config

API = "$JS.API"
STREAM_JOB_USER = "streams"
ADMIN_USER = "admin"
# Every stream of events, one per service of the contracts' catalogue (AUDIT: the access log):
# what the projection follows, so a new service's stream is projected without a line here.
EVENT_STREAMS = tuple(service.upper() for service in BY_SERVICE)


@dataclass(frozen=True)
class Access:
    service: str
    owns: str
    appends: tuple[str, ...] = ()
    follows: tuple[str, ...] = ()
    durables: tuple[str, ...] = ()
    rebuilds: tuple[str, ...] = ()
    writes_keys: tuple[str, ...] = ()
    reads_keys: tuple[str, ...] = ()

    @property
    def inbox(self) -> str:
        return f"_INBOX.{self.service}"


# The table: what each service does on NATS, as its code does it (deploy/tests runs each row
# against a real nats-server). Every service answers reads of case data, so every one appends
# to the access log (AUDIT), which the projection owns and consumes.
ACCESS: tuple[Access, ...] = (
    # Consent and meeting seal free text under a child's key the case service made: they read
    # keys, and never make or erase one.
    Access(
        "consent",
        owns="CONSENT",
        appends=("AUDIT",),
        follows=("CASE",),
        reads_keys=(DEFAULT_BUCKET,),
    ),
    # The case service reads AUDIT for the archive deliveries the projection records there: a
    # child is shredded only once each closed case went to the archive.
    Access(
        "case",
        owns="CASE",
        appends=("AUDIT",),
        follows=("CONSENT", "MEETING", "AUDIT"),
        writes_keys=(DEFAULT_BUCKET,),
    ),
    Access(
        "meeting",
        owns="MEETING",
        appends=("AUDIT",),
        follows=("CASE",),
        reads_keys=(DEFAULT_BUCKET,),
    ),
    Access("notify", owns="NOTIFY", appends=("AUDIT",), follows=("CASE", "CONSENT", "MEETING")),
    Access(
        "projection",
        owns="AUDIT",
        follows=tuple(stream for stream in EVENT_STREAMS if stream != "AUDIT"),
        durables=EVENT_STREAMS,
        rebuilds=EVENT_STREAMS,
        reads_keys=(DEFAULT_BUCKET,),
    ),
    # `stafett new-service` adds a new service's row above this line.
)


def streams(replicas: int = 1) -> dict[str, StreamConfig]:
    """Every stream the platform needs, by name: one per service, the signing keys and the
    checkpoints, and the children's keys."""
    found: dict[str, StreamConfig] = {}
    for row in ACCESS:
        found[row.owns] = stream_config(_layout(row.owns), replicas)
    for evidence in (KEYS, CHECKPOINTS):
        found[evidence.stream] = stream_config(evidence, replicas)
    for bucket in sorted({b for row in ACCESS for b in (*row.writes_keys, *row.reads_keys)}):
        config = bucket_config(bucket, replicas)
        assert config.name is not None
        found[config.name] = config
    return found


def owned_streams(service: str) -> tuple[str, ...]:
    """The streams `service` owns, and checkpoints (`stafett_runtime.evidence`)."""
    return tuple(row.owns for row in ACCESS if row.service == service)


def _layout(stream: str) -> StreamLayout:
    """Every stream of the table is laid out as the store lays out an application's stream."""
    return StreamLayout(stream, stream.lower())


async def create_missing_streams(nc: Client, replicas: int = 1) -> None:
    """Create every stream of `streams()` that is not there yet, as the operator (deploy's Job
    does the same from the definitions); those that exist are left as they are. Done before the
    services start, so that none of them needs more than its row (the projection may not make
    the streams it follows, nor the key bucket it reads)."""
    js = nc.jetstream()
    for name, config in streams(replicas).items():
        try:
            await js.stream_info(name)
        except NotFoundError:
            await js.add_stream(config)


def durable_name(service: str, stream: str) -> str:
    return f"{service}-{stream.lower()}"


def password_variable(user: str) -> str:
    """The environment variable that holds a user's password where nats-server runs (deploy)."""
    return f"NATS_PASSWORD_{user.upper()}"


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def permissions(row: Access) -> Permissions:
    """What `row` may publish and subscribe to; everything else is denied."""
    configs = streams()
    publish: list[str] = []
    publish += configs[row.owns].subjects or []
    publish += [f"{API}.STREAM.{verb}.{row.owns}" for verb in ("INFO", "CREATE", "UPDATE")]
    for stream in row.appends:
        # Events only (no tracking records); never UPDATE: that could shrink another's limits.
        publish += [_layout(stream).all_events]
        publish += [f"{API}.STREAM.{verb}.{stream}" for verb in ("INFO", "CREATE")]
    for stream in (row.owns, *row.follows):
        publish += _reads(stream)
    # Its own keys and checkpoints, never another's; CHECKPOINTS read to carry on from the last.
    publish += [f"{evidence.all_events[:-1]}{row.service}.>" for evidence in (KEYS, CHECKPOINTS)]
    for evidence in (KEYS, CHECKPOINTS):
        publish += [f"{API}.STREAM.{verb}.{evidence.stream}" for verb in ("INFO", "CREATE")]
    publish += [
        f"{API}.DIRECT.GET.{CHECKPOINTS.stream}",
        f"{API}.DIRECT.GET.{CHECKPOINTS.stream}.>",
    ]
    for stream in row.durables:
        name = durable_name(row.service, stream)
        publish += [
            f"{API}.STREAM.INFO.{stream}",
            f"{API}.CONSUMER.INFO.{stream}.{name}",
            f"{API}.CONSUMER.CREATE.{stream}.{name}",
            f"{API}.CONSUMER.CREATE.{stream}.{name}.>",
            f"{API}.CONSUMER.DURABLE.CREATE.{stream}.{name}",
            f"{API}.CONSUMER.MSG.NEXT.{stream}.{name}",
            f"$JS.ACK.{stream}.{name}.>",
        ]
    for stream in row.rebuilds:
        # Only the projection rebuilds, and no other service keeps a durable consumer on these
        # streams, so a named consumer of its own binds nobody else's.
        publish += [
            f"{API}.CONSUMER.CREATE.{stream}.*",
            f"{API}.CONSUMER.CREATE.{stream}.*.>",
            f"{API}.CONSUMER.MSG.NEXT.{stream}.*",
            f"{API}.CONSUMER.DELETE.{stream}.*",
        ]
    for bucket in row.writes_keys:
        kv = f"KV_{bucket}"
        publish += [
            f"$KV.{bucket}.>",
            f"{API}.STREAM.CREATE.{kv}",
            f"{API}.STREAM.MSG.DELETE.{kv}",
            *_reads_bucket(kv),
        ]
    for bucket in row.reads_keys:
        publish += _reads_bucket(f"KV_{bucket}")
    return Permissions(tuple(_unique(publish)), (f"{row.inbox}.>",))


def _reads(stream: str) -> list[str]:
    """Direct get, and ordered consumers with their flow-control replies."""
    return [
        f"{API}.DIRECT.GET.{stream}",
        f"{API}.DIRECT.GET.{stream}.>",
        f"{API}.CONSUMER.CREATE.{stream}",  # unnamed: a name could bind another's durable
        f"$JS.FC.{stream}.>",
    ]


def _reads_bucket(kv: str) -> list[str]:
    """A KV bucket's info (to bind it) and its messages, by message get or direct get."""
    return [
        f"{API}.STREAM.INFO.{kv}",
        f"{API}.STREAM.MSG.GET.{kv}",
        f"{API}.DIRECT.GET.{kv}",
        f"{API}.DIRECT.GET.{kv}.>",
    ]


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


def users() -> list[tuple[str, Permissions | None]]:
    """Every NATS user with its permissions; None is the operators' unrestricted admin."""
    job = Permissions(
        publish=(
            f"{API}.INFO",
            f"{API}.STREAM.NAMES",
            f"{API}.STREAM.LIST",
            *(f"{API}.STREAM.{verb}.*" for verb in ("INFO", "CREATE", "UPDATE")),
        ),
        subscribe=(f"_INBOX.{STREAM_JOB_USER}.>",),
    )
    return [
        *((row.service, permissions(row)) for row in ACCESS),
        (STREAM_JOB_USER, job),
        (ADMIN_USER, None),
    ]


def generate_passwords() -> dict[str, str]:
    """A fresh password for every user. A letter first, then hex: nats-server reads a value
    that starts with a digit as a number, and this is safe quoted or as a variable's value."""
    return {user: "p" + secrets.token_hex(24) for user, _ in users()}


def authorization_block(passwords: Mapping[str, str]) -> str:
    """The nats-server `authorization` block with these passwords written in (keep the file
    that holds it readable by its owner only)."""
    return _authorization(lambda user: json.dumps(passwords[user]))


def authorization_block_from_environment() -> str:
    """The same block, each password read by nats-server from the variable `password_variable`
    names, so that no password is written down (deploy's auth.conf)."""
    return _authorization(lambda user: f"${password_variable(user)}")


def _authorization(password: Callable[[str], str]) -> str:
    lines = ["authorization {", "  users: ["]
    for user, allowed in users():
        lines.append(f"    {{ user: {user}, password: {password(user)}")
        if allowed is not None:
            lines.append("      permissions: {")
            lines.append(f"        publish: {{ allow: {_conf_list(allowed.publish)} }}")
            lines.append(f"        subscribe: {{ allow: {_conf_list(allowed.subscribe)} }}")
            lines.append("      }")
        lines.append("    }")
    lines += ["  ]", "}", ""]
    return "\n".join(lines)


def _conf_list(items: Iterable[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"
