"""Who may do what on NATS: one table, from which every NATS file in deploy/ is generated.

    python -m deploy.nats.access     # regenerate after changing the table; a test checks it

Each service connects as its own NATS user and may do exactly what its row says, nothing more:

- `owns`: the stream it appends its events to (and, with CREATE_TABLE on, creates). It publishes
  only to that stream's subjects, reads it by direct get and follows it with ordered consumers.
- `follows`: other services' streams it reads: by direct get (the upstream's aggregates and head)
  and through ordered consumers (ephemeral, no acknowledgements), which need flow-control replies.
- `durables`: streams it consumes through a durable consumer named `<service>-<stream>`, lower
  case (create or bind it, pull the next messages, acknowledge them).
- `rebuilds`: streams where it may also delete ephemeral consumers it made, to replay from the
  start without leaving consumers behind.
- `buckets`: NATS KV buckets it reads and writes (and erases single messages from).

Every user receives replies only on its own inbox prefix (`_INBOX.<user>`, the service's
NATS_INBOX_PREFIX), so no user can read another's replies. The `streams` user is the deployment
Job that creates and updates the streams; `admin` is for operators (backup and restore) and is
never given to a service.

Generated from the table:

- `deploy/nats/auth.conf`: the users and their permissions, for nats-server (passwords from the
  environment variables named below, never written down);
- `deploy/nats/values.yaml` and `values-dev.yaml`: values for the official NATS Helm chart,
  3-node JetStream cluster with TLS, and a single node for development;
- `deploy/k8s/base/streams/*.json`: the stream definitions the Job creates, from the very
  configurations the runtime creates (`stafett_runtime.jetstream.client.stream_config`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from nats.js.api import StreamConfig

from stafett_runtime.jetstream.client import stream_config
from stafett_runtime.jetstream.layout import StreamLayout
from stafett_runtime.keystore import DEFAULT_BUCKET, bucket_config

DEPLOY = Path(__file__).resolve().parent.parent
REPLICAS = 3  # R3 on the 3-node cluster; the Job lowers it for a single development node
API = "$JS.API"


@dataclass(frozen=True)
class Access:
    service: str
    owns: str
    follows: tuple[str, ...] = ()
    durables: tuple[str, ...] = ()
    rebuilds: tuple[str, ...] = ()
    buckets: tuple[str, ...] = ()

    @property
    def inbox(self) -> str:
        return f"_INBOX.{self.service}"


# The table: what each service does on NATS, as its code does it (a test runs each row against a
# real nats-server). The projection opens sealed personal data for those who may read it, so it
# reads the children's keys too; only case writes them.
ACCESS: tuple[Access, ...] = (
    Access("consent", owns="CONSENT"),
    Access("case", owns="CASE", follows=("CONSENT", "MEETING"), buckets=(DEFAULT_BUCKET,)),
    Access("meeting", owns="MEETING", follows=("CASE",)),
    Access("notify", owns="NOTIFY", follows=("CASE", "CONSENT", "MEETING")),
    Access(
        "projection",
        owns="AUDIT",
        follows=("CASE", "CONSENT", "MEETING", "NOTIFY"),
        durables=("CASE", "CONSENT", "MEETING", "NOTIFY", "AUDIT"),
        rebuilds=("CASE", "CONSENT", "MEETING", "NOTIFY", "AUDIT"),
        buckets=(DEFAULT_BUCKET,),
    ),
)

STREAM_JOB_USER = "streams"
ADMIN_USER = "admin"


def streams(replicas: int = REPLICAS) -> dict[str, StreamConfig]:
    """Every stream the platform needs, by name: one per service, and the children's keys."""
    found: dict[str, StreamConfig] = {}
    for row in ACCESS:
        config = stream_config(StreamLayout(row.owns, row.owns.lower()), replicas)
        found[row.owns] = config
    for bucket in sorted({b for row in ACCESS for b in row.buckets}):
        config = bucket_config(bucket, replicas)
        assert config.name is not None
        found[config.name] = config
    return found


def durable_name(service: str, stream: str) -> str:
    return f"{service}-{stream.lower()}"


def password_variable(user: str) -> str:
    """The environment variable that holds a user's password where nats-server runs."""
    return f"NATS_PASSWORD_{user.upper()}"


@dataclass(frozen=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def permissions(row: Access) -> Permissions:
    """What `row` may publish and subscribe to; everything else is denied."""
    configs = streams()
    publish: list[str] = []
    own = configs[row.owns]
    publish += own.subjects or []
    publish += [f"{API}.STREAM.{verb}.{row.owns}" for verb in ("INFO", "CREATE", "UPDATE")]
    for stream in (row.owns, *row.follows):
        publish += _reads(stream)
    for stream in row.durables:
        name = durable_name(row.service, stream)
        publish += [
            f"{API}.CONSUMER.INFO.{stream}.{name}",
            f"{API}.CONSUMER.CREATE.{stream}.{name}",
            f"{API}.CONSUMER.CREATE.{stream}.{name}.>",
            f"{API}.CONSUMER.DURABLE.CREATE.{stream}.{name}",
            f"{API}.CONSUMER.MSG.NEXT.{stream}.{name}",
            f"$JS.ACK.{stream}.{name}.>",
        ]
    publish += [f"{API}.CONSUMER.DELETE.{stream}.*" for stream in row.rebuilds]
    for bucket in row.buckets:
        kv = f"KV_{bucket}"
        publish += [
            f"$KV.{bucket}.>",
            f"{API}.STREAM.INFO.{kv}",
            f"{API}.STREAM.CREATE.{kv}",
            f"{API}.STREAM.MSG.GET.{kv}",
            f"{API}.STREAM.MSG.DELETE.{kv}",
            f"{API}.DIRECT.GET.{kv}",
            f"{API}.DIRECT.GET.{kv}.>",
        ]
    return Permissions(tuple(_unique(publish)), (f"{row.inbox}.>",))


def _reads(stream: str) -> list[str]:
    """Direct get, and ordered consumers with their flow-control replies."""
    return [
        f"{API}.DIRECT.GET.{stream}",
        f"{API}.DIRECT.GET.{stream}.>",
        f"{API}.CONSUMER.CREATE.{stream}",  # unnamed: a name could bind another's durable
        f"$JS.FC.{stream}.>",
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


# Rendering --------------------------------------------------------------------------------


def auth_conf() -> str:
    """The `authorization` block for nats-server; passwords come from its environment."""
    lines = [
        "# Generated by `python -m deploy.nats.access` from its table: do not edit.",
        "# Each password is read from the environment variable named beside it.",
        "authorization {",
        "  users: [",
    ]
    for user, allowed in users():
        lines.append(f"    {{ user: {user}, password: ${password_variable(user)}")
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


def helm_values(*, cluster: bool) -> dict[str, Any]:
    """Values for the official NATS Helm chart (nats-io/k8s, chart `nats` 1.x)."""
    chart_users: list[dict[str, Any]] = []
    for user, allowed in users():
        entry: dict[str, Any] = {"user": user, "password": f"<< ${password_variable(user)} >>"}
        if allowed is not None:
            entry["permissions"] = {
                "publish": {"allow": list(allowed.publish)},
                "subscribe": {"allow": list(allowed.subscribe)},
            }
        chart_users.append(entry)
    env = {
        password_variable(user): {
            "valueFrom": {"secretKeyRef": {"name": "stafett-nats-server", "key": user}}
        }
        for user, _ in users()
    }
    config: dict[str, Any] = {
        "jetstream": {
            "enabled": True,
            "fileStore": {"pvc": {"size": "20Gi" if cluster else "2Gi"}},
            # fsync before acknowledging: an acknowledged event survives a crash (ARCHITECTURE 1)
            "merge": {"sync_interval": "always"},
        },
        "merge": {"authorization": {"users": chart_users}},
    }
    if cluster:
        config["cluster"] = {"enabled": True, "replicas": REPLICAS}
        config["nats"] = {"tls": {"enabled": True, "secretName": "stafett-nats-tls"}}
    values: dict[str, Any] = {"config": config, "container": {"env": env}}
    if cluster:
        # One server per node, so losing a node loses one replica, never a quorum.
        values["podTemplate"] = {
            "topologySpreadConstraints": {
                "kubernetes.io/hostname": {
                    "maxSkew": 1,
                    "whenUnsatisfiable": "DoNotSchedule",
                }
            }
        }
    return values


def generated_files() -> dict[Path, str]:
    header = "# Generated by `python -m deploy.nats.access` from its table: do not edit.\n"
    files = {
        DEPLOY / "nats" / "auth.conf": auth_conf(),
        DEPLOY / "nats" / "values.yaml": header
        + yaml.safe_dump(helm_values(cluster=True), sort_keys=False),
        DEPLOY / "nats" / "values-dev.yaml": header
        + yaml.safe_dump(helm_values(cluster=False), sort_keys=False),
    }
    for name, config in streams().items():
        files[DEPLOY / "k8s" / "base" / "streams" / f"{name}.json"] = (
            json.dumps(config.as_dict(), indent=2, sort_keys=True) + "\n"
        )
    return files


def main() -> int:
    for path, text in generated_files().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text() != text:
            path.write_text(text)
            print(f"wrote {path.relative_to(DEPLOY.parent)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
