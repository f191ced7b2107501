"""Reading Stafett's streams for the operator commands (verify, export, status).

Reads go through the runtime's JetStream client (batched direct get, never a consumer), so an
operator's read leaves nothing behind on the server. Key-value and object-store buckets
(`KV_*`, `OBJ_*`) are streams too, but hold no events: they are listed by `status` only.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from nats.js.api import ConsumerInfo, StreamInfo

from stafett_cli.datafolder import Login
from stafett_runtime.jetstream.client import ConnectionSettings, JetStreamClient, StoredMessage
from stafett_runtime.jetstream.layout import (
    APPLICATION_NAME,
    NOTIFICATION_ID,
    ORIGINATOR_ID,
    ORIGINATOR_VERSION,
    TOPIC,
)

__all__ = [
    "APPLICATION_NAME",
    "NOTIFICATION_ID",
    "ORIGINATOR_ID",
    "ORIGINATOR_VERSION",
    "TOPIC",
    "Store",
    "StoredMessage",
    "default_nats_url",
    "is_bucket",
]

PAGE = 1000


def default_nats_url(environ: Mapping[str, str] = os.environ) -> str:
    """NATS_URL if set, else the embedded server `stafett up` runs (STAFETT_NATS_PORT)."""
    if environ.get("NATS_URL"):
        return environ["NATS_URL"]
    return f"nats://127.0.0.1:{environ.get('STAFETT_NATS_PORT') or 14222}"


def is_bucket(stream: str) -> bool:
    return stream.startswith(("KV_", "OBJ_"))


@dataclass(frozen=True)
class Deleted:
    """What the stream itself says about sequences it no longer holds."""

    first_seq: int
    last_seq: int
    deleted: frozenset[int]


class Store:
    """A read-only view of the server's streams."""

    def __init__(self, url: str, login: Login | None = None, timeout: float = 5.0) -> None:
        self.url = url
        self.client = JetStreamClient(
            ConnectionSettings(
                url=url,
                name="stafett-cli",
                user=login.user if login else None,
                password=login.password if login else None,
                inbox_prefix=login.inbox_prefix if login else None,
                timeout=timeout,
            )
        )

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def streams(self) -> list[StreamInfo]:
        async def list_streams() -> list[StreamInfo]:
            return await self.client.nc.jetstream().streams_info()

        return sorted(self.client.run(list_streams()), key=lambda s: s.config.name or "")

    def event_streams(self) -> list[StreamInfo]:
        return [s for s in self.streams() if not is_bucket(s.config.name or "")]

    def consumers(self, stream: str) -> list[ConsumerInfo]:
        async def list_consumers() -> list[ConsumerInfo]:
            return await self.client.nc.jetstream().consumers_info(stream)

        return self.client.run(list_consumers())

    def deleted(self, stream: str) -> Deleted:
        """The stream's own account of gaps: where it begins, and which sequences were deleted."""

        async def info() -> dict[str, Any]:
            answer = await self.client.nc.request(
                f"$JS.API.STREAM.INFO.{stream}",
                json.dumps({"deleted_details": True}).encode(),
                timeout=self.client.settings.timeout,
            )
            decoded: dict[str, Any] = json.loads(answer.data)
            return decoded

        state = self.client.run(info())["state"]
        return Deleted(
            first_seq=int(state.get("first_seq", 0)),
            last_seq=int(state.get("last_seq", 0)),
            deleted=frozenset(int(seq) for seq in state.get("deleted") or ()),
        )

    def read(
        self, stream: str, subject: str | None = None, start: int = 1
    ) -> Iterator[StoredMessage]:
        """Every message (on `subject`, if one is named) from `start` on, in stream order, a page
        at a time."""
        while True:
            page, pending = self.client.run(self.client.get_range(stream, subject, start, PAGE))
            yield from page
            if not page or pending == 0:
                return
            start = page[-1].seq + 1

    def has(self, stream: str, seq: int) -> StoredMessage | None:
        """The message at `seq`, or None if the stream holds none there."""
        page, _ = self.client.run(self.client.get_range(stream, None, seq, 1))
        return page[0] if page and page[0].seq == seq else None
