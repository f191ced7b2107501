"""`stafett status`: the streams, their message counts, consumers and how far behind they are.

Two kinds of readers lag behind a stream: JetStream consumers (durable or not; their lag is the
server's `num_pending`), and the services' own processing positions, the tracking records a
service writes beside its events (`case.tracking.consent`: how far the case service has
processed the CONSENT stream). For these the lag is the upstream's last event minus the position.

Then the upstream events each service has parked (`stafett_contracts.processing`): those whose
handling failed again and again, recorded in the service's own stream and not yet processed by
`stafett retry`. Nothing is skipped silently: a parked event is listed until it is processed.

Last, what retention has due (`retention`): closed cases awaiting archive delivery, and the
children due for shredding, and when.

On a terminal the tables fit its width; written anywhere else (a file, a pipe, a CI log) they
keep their full width, never cut at 80 columns (`unwrapped`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from rich.console import Console
from rich.table import Table

from stafett_cli.retention import print_retention
from stafett_cli.streams import APPLICATION_NAME, NOTIFICATION_ID, TOPIC, Store, is_bucket
from stafett_contracts.envelope import topic_of
from stafett_contracts.processing import (
    ParkedEventRetried,
    ProcessingParked,
    ProcessingRecord,
    still_parked,
)
from stafett_runtime.contracts import decode_event
from stafett_runtime.jetstream.layout import StreamLayout, default_names


@dataclass(frozen=True)
class Position:
    stream: str
    upstream: str
    position: int
    upstream_last: int

    @property
    def lag(self) -> int:
        return max(self.upstream_last - self.position, 0)


def positions(store: Store) -> list[Position]:
    """The processing position of every service that follows another's stream."""
    found: list[Position] = []
    streams = {s.config.name or "": s for s in store.event_streams()}
    for name, info in streams.items():
        prefixes = {s.split(".")[0] for s in info.config.subjects or () if ".tracking." in s}
        for prefix in sorted(prefixes):
            # One record per upstream; read the newest of each subject.
            for subject in _subjects(store, name, f"{prefix}.tracking.>"):
                record = store.client.run(store.client.get_last(name, subject))
                if record is None:
                    continue
                upstream = record.headers.get(APPLICATION_NAME, subject.rsplit(".", 1)[-1])
                upstream_stream = default_names(upstream)[0]
                top = None
                if upstream_stream in streams:
                    up_prefix = default_names(upstream)[1]
                    top = store.client.run(
                        store.client.get_last(upstream_stream, f"{up_prefix}.events.>")
                    )
                found.append(
                    Position(
                        stream=name,
                        upstream=upstream_stream,
                        position=int(record.headers.get(NOTIFICATION_ID, "0")),
                        upstream_last=0 if top is None else top.seq,
                    )
                )
    return found


def parked(store: Store) -> list[tuple[str, ProcessingParked]]:
    """Every upstream event parked and not yet processed, with the stream that records it."""
    found: list[tuple[str, ProcessingParked]] = []
    for info in store.event_streams():
        stream = info.config.name or ""
        prefixes = {s.split(".")[0] for s in info.config.subjects or () if ".events." in s}
        for prefix in sorted(prefixes):
            layout = StreamLayout(stream, prefix)
            records = [
                decode_event(message.headers[TOPIC], message.data)
                for cls in (ProcessingParked, ParkedEventRetried)
                for message in store.read(stream, layout.type_filter(topic_of(cls)))
            ]
            events = [e for e in records if isinstance(e, ProcessingRecord)]
            found.extend((stream, event) for event in still_parked(events))
    return found


def _subjects(store: Store, stream: str, wildcard: str) -> list[str]:
    async def subjects() -> list[str]:
        info = await store.client.nc.jetstream().stream_info(stream, subjects_filter=wildcard)
        return sorted(info.state.subjects or {})

    return store.client.run(subjects())


UNWRAPPED_WIDTH = 10_000  # wider than any table: each takes the width of what it holds


def unwrapped() -> Console:
    """The console for stdout: the terminal's width on a terminal, else as wide as it takes."""
    if sys.stdout.isatty():
        return Console()
    return Console(width=UNWRAPPED_WIDTH)


def print_status(store: Store, console: Console) -> None:
    streams = store.streams()
    table = Table(title=f"streams on {store.url}", title_justify="left")
    for column in ("stream", "subjects", "messages", "bytes", "first", "last", "consumers"):
        table.add_column(column, justify="left" if column in ("stream", "subjects") else "right")
    for info in streams:
        state = info.state
        table.add_row(
            info.config.name or "",
            ", ".join(info.config.subjects or ()),
            str(state.messages),
            _size(state.bytes),
            str(state.first_seq),
            str(state.last_seq),
            str(state.consumer_count),
        )
    console.print(table)

    consumers = Table(title="consumers", title_justify="left")
    for column in ("stream", "consumer", "filter", "delivered", "lag (pending)", "unacked"):
        consumers.add_column(column, justify="left" if column != "lag (pending)" else "right")
    count = 0
    for info in streams:
        name = info.config.name or ""
        if is_bucket(name):
            continue
        for consumer in store.consumers(name):
            count += 1
            config = consumer.config
            kind = "" if config.durable_name else " (ephemeral)"
            consumers.add_row(
                name,
                f"{consumer.name}{kind}",
                config.filter_subject or ", ".join(config.filter_subjects or ()) or ">",
                str(consumer.delivered.stream_seq if consumer.delivered else 0),
                str(consumer.num_pending or 0),
                str(consumer.num_ack_pending or 0),
            )
    if count:
        console.print(consumers)
    else:
        console.print("consumers: none")

    tracked = positions(store)
    table = Table(title="processing positions (tracking records)", title_justify="left")
    for column in ("stream", "follows", "processed up to", "upstream last", "lag"):
        table.add_column(column, justify="left" if column in ("stream", "follows") else "right")
    for p in tracked:
        table.add_row(p.stream, p.upstream, str(p.position), str(p.upstream_last), str(p.lag))
    if tracked:
        console.print(table)
    else:
        console.print("processing positions: none")

    waiting = parked(store)
    table = Table(title="parked events (stafett retry SERVICE)", title_justify="left")
    for column in ("stream", "follows", "position", "event", "error", "parked at", "attempts"):
        table.add_column(column, justify="right" if column in ("position", "attempts") else "left")
    for stream, event in waiting:
        table.add_row(
            stream,
            default_names(event.upstream)[0],
            str(event.position),
            event.event_type,
            f"{event.error_type}: {event.error}",
            f"{event.occurred_at:%Y-%m-%d %H:%M:%S %Z}",
            str(event.attempts),
        )
    if waiting:
        console.print(table)
    else:
        console.print("parked events: none")

    print_retention(store, console)


def _size(size: int) -> str:
    shown = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if shown < 1024:
            return f"{shown:.0f} {unit}" if unit == "B" else f"{shown:.1f} {unit}"
        shown /= 1024
    return f"{shown:.1f} TiB"
