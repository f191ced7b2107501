"""`stafett verify`: check that the streams are a sound record.

For every event stream (key-value buckets hold no events and are skipped):

- every event decodes against its contract (the topic in its `Es-Topic` header), and its
  payload names the aggregate and version its subject and headers say;
- each aggregate's versions run 1, 2, 3, ... in stream order, with none missing or repeated;
- every sequence number from 1 to the last is either present or explained by the stream itself
  (deleted, or before the stream's first sequence after a purge or limit);
- every tracking record (how far a service has processed another's stream) points to an event
  that exists in that upstream stream.

Explained gaps are reported as notes; anything else is a fault, and the exit status is 1.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from uuid import UUID

import msgspec
from rich.console import Console
from rich.table import Table

from stafett_cli.streams import (
    APPLICATION_NAME,
    NOTIFICATION_ID,
    ORIGINATOR_ID,
    ORIGINATOR_VERSION,
    TOPIC,
    Store,
    StoredMessage,
)
from stafett_contracts.catalogue import EVENTS
from stafett_contracts.envelope import Event
from stafett_runtime.jetstream.layout import default_names

_decoders = {topic: msgspec.json.Decoder(cls) for topic, cls in EVENTS.items()}
SHOWN_FAULTS = 50


@dataclass(frozen=True)
class Finding:
    stream: str
    seq: int | None
    text: str


@dataclass
class StreamReport:
    name: str
    messages: int = 0
    events: int = 0
    aggregates: int = 0
    tracking: int = 0
    other: int = 0
    faults: int = 0


@dataclass(frozen=True)
class TrackingRecord:
    stream: str
    seq: int
    upstream: str
    position: int


@dataclass
class Verification:
    reports: list[StreamReport] = field(default_factory=list)
    faults: list[Finding] = field(default_factory=list)
    notes: list[Finding] = field(default_factory=list)

    @property
    def sound(self) -> bool:
        return not self.faults


def verify(store: Store, only: set[str] | None = None) -> Verification:
    result = Verification()
    event_seqs: dict[str, set[int]] = {}
    tracking: list[TrackingRecord] = []
    streams = store.event_streams()
    existing = {info.config.name for info in streams}
    for info in streams:
        name = info.config.name or ""
        if only and name not in only:
            continue
        report = StreamReport(name)
        result.reports.append(report)
        event_seqs[name] = _check_stream(store, name, report, result, tracking)
    for record in tracking:
        upstream_stream = default_names(record.upstream)[0]
        seqs = event_seqs.get(upstream_stream)
        if upstream_stream not in existing:
            exists = False
        elif seqs is None:  # not read above (filtered out): look the one message up
            found = store.has(upstream_stream, record.position)
            exists = found is not None and ".events." in found.subject
        else:
            exists = record.position in seqs
        if not exists:
            _fault(
                result,
                record.stream,
                record.seq,
                f"tracking of {record.upstream!r} points to {upstream_stream} #{record.position},"
                " where there is no event",
            )
    for report in result.reports:
        report.faults = sum(1 for f in result.faults if f.stream == report.name)
    return result


def _check_stream(
    store: Store,
    stream: str,
    report: StreamReport,
    result: Verification,
    tracking: list[TrackingRecord],
) -> set[int]:
    deleted = store.deleted(stream)
    versions: dict[str, int] = {}
    tracked: dict[str, int] = {}
    seqs: set[int] = set()
    previous = 0
    for message in store.read(stream):
        report.messages += 1
        _check_gap(
            result, stream, previous + 1, message.seq - 1, deleted.first_seq, deleted.deleted
        )
        previous = message.seq
        parts = message.subject.split(".")
        if len(parts) == 4 and parts[1] == "events":
            report.events += 1
            seqs.add(message.seq)
            _check_event(result, stream, message, parts[2], versions)
        elif len(parts) == 3 and parts[1] == "tracking":
            report.tracking += 1
            record = _tracking_record(result, stream, message)
            if record is not None:
                last = tracked.get(message.subject, 0)
                if record.position <= last:
                    _fault(
                        result,
                        stream,
                        message.seq,
                        f"tracking of {record.upstream!r} went back from {last} to "
                        f"{record.position}",
                    )
                tracked[message.subject] = record.position
                tracking.append(record)
        else:
            report.other += 1
    _check_gap(result, stream, previous + 1, deleted.last_seq, deleted.first_seq, deleted.deleted)
    report.aggregates = len(versions)
    return seqs


def _check_gap(
    result: Verification,
    stream: str,
    first: int,
    last: int,
    stream_first: int,
    gone: frozenset[int],
) -> None:
    if first > last:
        return
    before_start = range(first, min(last, stream_first - 1) + 1)
    if before_start:
        result.notes.append(
            Finding(
                stream,
                None,
                f"#{_span(before_start)}: before the stream's first sequence "
                f"{stream_first} (purged or removed by a limit)",
            )
        )
    rest = range(max(first, stream_first), last + 1)
    explained = [seq for seq in rest if seq in gone]
    unexplained = [seq for seq in rest if seq not in gone]
    if explained:
        result.notes.append(
            Finding(stream, None, f"{len(explained)} sequence(s) deleted: #{_list(explained)}")
        )
    if unexplained:
        _fault(
            result,
            stream,
            unexplained[0],
            f"#{_list(unexplained)} missing, and the stream does not say they were deleted",
        )


def _check_event(
    result: Verification,
    stream: str,
    message: StoredMessage,
    aggregate: str,
    versions: dict[str, int],
) -> None:
    headers = message.headers
    topic = headers.get(TOPIC)
    version_header = headers.get(ORIGINATOR_VERSION, "")
    if topic is None or not version_header.isdigit():
        _fault(result, stream, message.seq, f"{message.subject}: no {TOPIC} or version header")
        return
    version = int(version_header)
    expected = versions.get(aggregate, 0) + 1
    if version != expected:
        _fault(
            result,
            stream,
            message.seq,
            f"aggregate {aggregate}: version {version} where {expected} was due",
        )
    versions[aggregate] = max(version, versions.get(aggregate, 0))
    decoder = _decoders.get(topic)
    if decoder is None:
        _fault(result, stream, message.seq, f"no contract for event type {topic!r}")
        return
    try:
        event: Event = decoder.decode(message.data)
    except (msgspec.ValidationError, msgspec.DecodeError) as error:
        _fault(result, stream, message.seq, f"does not decode as {topic}: {error}")
        return
    named = headers.get(ORIGINATOR_ID) or aggregate
    if str(event.aggregate_id) != named and event.aggregate_id != _uuid(named):
        _fault(
            result,
            stream,
            message.seq,
            f"payload names aggregate {event.aggregate_id}, the subject {named}",
        )
    if event.aggregate_version != version:
        _fault(
            result,
            stream,
            message.seq,
            f"payload says version {event.aggregate_version}, the header {version}",
        )


def _tracking_record(
    result: Verification, stream: str, message: StoredMessage
) -> TrackingRecord | None:
    upstream = message.headers.get(APPLICATION_NAME)
    position = message.headers.get(NOTIFICATION_ID, "")
    if upstream is None or not position.isdigit():
        _fault(
            result, stream, message.seq, f"{message.subject}: a tracking record without position"
        )
        return None
    return TrackingRecord(stream, message.seq, upstream, int(position))


def _uuid(value: str) -> UUID | None:
    try:
        return UUID(value)
    except ValueError:
        return None


def _fault(result: Verification, stream: str, seq: int | None, text: str) -> None:
    result.faults.append(Finding(stream, seq, text))


def _span(seqs: range) -> str:
    return str(seqs[0]) if len(seqs) == 1 else f"{seqs[0]}-{seqs[-1]}"


def _list(seqs: list[int], shown: int = 10) -> str:
    text = ", #".join(str(s) for s in seqs[:shown])
    return text + (f" and {len(seqs) - shown} more" if len(seqs) > shown else "")


def print_verification(result: Verification, console: Console) -> None:
    table = Table(title="stafett verify", title_justify="left")
    for column in ("stream", "messages", "events", "aggregates", "tracking", "other", "faults"):
        table.add_column(column, justify="left" if column == "stream" else "right")
    for r in result.reports:
        faults = f"[red]{r.faults}[/red]" if r.faults else "0"
        table.add_row(
            r.name,
            str(r.messages),
            str(r.events),
            str(r.aggregates),
            str(r.tracking),
            str(r.other),
            faults,
        )
    console.print(table)
    by_stream: dict[str, list[Finding]] = defaultdict(list)
    for note in result.notes:
        by_stream[note.stream].append(note)
    for stream, notes in by_stream.items():
        for note in notes:
            console.print(f"note: {stream} {note.text}", highlight=False, soft_wrap=True)
    for fault in result.faults[:SHOWN_FAULTS]:
        where = f"{fault.stream} #{fault.seq}" if fault.seq is not None else fault.stream
        console.print(f"[red]FAULT[/red] {where}: {fault.text}", highlight=False, soft_wrap=True)
    if len(result.faults) > SHOWN_FAULTS:
        console.print(f"... and {len(result.faults) - SHOWN_FAULTS} more faults")
    if result.sound:
        events = sum(r.events for r in result.reports)
        console.print(f"OK: {events} events in {len(result.reports)} streams verified.")
    else:
        console.print(f"[red]{len(result.faults)} fault(s) found.[/red]")
