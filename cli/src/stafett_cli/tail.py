"""`stafett tail`: follow events live, from every event stream, as they are stored.

One ordered consumer per stream (a server-side cursor that vanishes when tail stops), so only
events that JetStream accepted are shown: a rejected atomic batch never appears. Streams created
after tail started are picked up within a few seconds. Filtering by subject (NATS wildcards) and
by event type happens here, so one filter works across streams.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TextIO

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js.api import ConsumerConfig, DeliverPolicy

from stafett_cli.datafolder import Login
from stafett_cli.streams import TOPIC, is_bucket

NEW_STREAMS_EVERY = 2.0


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS wildcard matching: `*` is one token, `>` the rest."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or (token != "*" and token != tokens[index]):
            return False
    return len(tokens) == len(wanted)


@dataclass(frozen=True)
class Filter:
    subject: str = "*.events.>"
    types: frozenset[str] = frozenset()  # short names (ConcernRaised) or topics (case.X@1)

    def admits(self, subject: str, topic: str) -> bool:
        if not subject_matches(self.subject, subject):
            return False
        if not self.types:
            return True
        short = topic.split("@", 1)[0].rsplit(".", 1)[-1]
        return topic in self.types or short in self.types


# Fields worth a glance, in the order they are looked for; the first one present is shown.
DETAILS = (
    "to_level",
    "to_service",
    "to_person",
    "holder",
    "coordinator",
    "service",
    "services",
    "outcome",
    "meeting_type",
    "channel",
    "reason",
)


def detail(event: dict[str, Any]) -> str:
    for name in DETAILS:
        value = event.get(name)
        if value not in (None, "", [], {}):
            shown = ",".join(map(str, value)) if isinstance(value, list) else str(value)
            return f"  {name}={shown[:40]}"
    return ""


def readable(stream: str, seq: int, topic: str, event: dict[str, Any]) -> str:
    """One line: when, where, what, which aggregate at which version, who, and one detail."""
    actor = event.get("actor") or {}
    who = actor.get("person", "?")
    role = ", ".join(str(x) for x in (actor.get("role"), actor.get("service")) if x)
    when = str(event.get("occurred_at", ""))[:19].replace("T", " ")
    aggregate = str(event.get("aggregate_id", ""))[:8]
    case = event.get("case_id")
    about = f" case {str(case)[:8]}" if case and case != event.get("aggregate_id") else ""
    return (
        f"{when}  {stream}#{seq:<6} {topic:<34} {aggregate} v{event.get('aggregate_version', '?')}"
        f"{about}  by {who} ({role}){detail(event)}"
    )


class NotReachableError(ConnectionError):
    pass


async def connect(url: str, login: Login | None = None, seconds: float = 5.0) -> Client:
    """Connected (as `login`, if given) within `seconds`, or NotReachableError; after that,
    reconnect for as long as it takes (a tail outlives a nats-server restart)."""

    async def quiet(_: Exception) -> None:
        pass  # nats-py would print each failed attempt with a traceback

    try:
        return await asyncio.wait_for(
            nats.connect(
                url,
                connect_timeout=seconds,
                max_reconnect_attempts=-1,
                error_cb=quiet,
                **(login.options() if login else {}),
            ),
            seconds,
        )
    except (TimeoutError, OSError, nats.errors.Error) as error:
        raise NotReachableError(f"cannot reach NATS at {url}") from error


class Tail:
    def __init__(
        self,
        url: str,
        filter_: Filter,
        raw_json: bool,
        from_start: bool,
        count: int | None,
        out: TextIO = sys.stdout,
        login: Login | None = None,
    ) -> None:
        self.url = url
        self.login = login
        self.filter = filter_
        self.raw_json = raw_json
        self.from_start = from_start
        self.remaining = count
        self.out = out
        self.done = asyncio.Event()
        self._followed: set[str] = set()

    async def run(self, announce: Callable[[str], None]) -> None:
        nc = await connect(self.url, self.login)
        try:
            await self._follow_new_streams(nc, announce, first=True)
            while not self.done.is_set():
                try:
                    await asyncio.wait_for(self.done.wait(), NEW_STREAMS_EVERY)
                except TimeoutError:
                    await self._follow_new_streams(nc, announce, first=False)
        finally:
            await nc.close()

    async def _follow_new_streams(
        self, nc: Client, announce: Callable[[str], None], first: bool
    ) -> None:
        js = nc.jetstream()
        for info in await js.streams_info():
            name = info.config.name or ""
            if name in self._followed or is_bucket(name):
                continue
            self._followed.add(name)
            # A stream that appears while tailing is read from its start: all of it is new.
            policy = DeliverPolicy.ALL if self.from_start or not first else DeliverPolicy.NEW
            await js.subscribe(
                ">",
                stream=name,
                ordered_consumer=True,
                config=ConsumerConfig(deliver_policy=policy),
                cb=self._receiver(name),
            )
            announce(f"following {name}")

    def _receiver(self, stream: str) -> Callable[[Msg], Any]:
        async def receive(msg: Msg) -> None:
            if self.done.is_set():
                return
            topic = (msg.headers or {}).get(TOPIC, "")
            if not topic or not self.filter.admits(msg.subject, topic):
                return
            seq = msg.metadata.sequence.stream
            try:
                event = json.loads(msg.data)
            except ValueError:
                event = {"undecodable": msg.data.decode(errors="replace")}
            if self.raw_json:
                line = json.dumps(
                    {"stream": stream, "seq": seq, "subject": msg.subject, "event": event},
                    ensure_ascii=False,
                )
            else:
                line = readable(stream, seq, topic, event)
            self.out.write(line + "\n")
            self.out.flush()
            if self.remaining is not None:
                self.remaining -= 1
                if self.remaining <= 0:
                    self.done.set()

        return receive
