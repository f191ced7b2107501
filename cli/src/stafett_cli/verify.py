"""`stafett verify`: check that the streams are a sound record, and that nobody tampered with it.

Every stream the platform expects is there (`stafett_runtime.natsaccess.streams`), and denies
deleting and purging as the store makes it. For every event stream (key-value buckets hold no
events and are skipped):

- every event decodes against its contract (the topic in its `Es-Topic` header), and its
  payload names the aggregate and version its subject and headers say;
- each aggregate's versions run 1, 2, 3, ... in stream order, with none missing or repeated;
- every sequence number from 1 to the last is present: in a stream that denies deletion, a
  sequence the stream says was deleted or purged is a fault too (elsewhere it is a note);
- every tracking record (how far a service has processed another's stream) points to an event
  that exists in that upstream stream;
- every event and tracking record is signed by a key published in SIGNING_KEYS, of a service
  that may write the stream, and names the digest of the message before it on its aggregate's
  subjects (`stafett_runtime.evidence`): a forged, altered, inserted or deleted message breaks
  one or the other. Unsigned messages are faults; with `allow_unsigned`, those written before
  the stream's first signed message (a store older than signing) are notes;
- every signed checkpoint (in CHECKPOINTS, and in a file kept off-site) matches the stream: the
  stream reaches its sequence (not cut back) and its running hash up to there is the same.

A damaged store never stops the check: every fault is listed, and the exit status is 1.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
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
from stafett_runtime import evidence
from stafett_runtime.jetstream.layout import default_names
from stafett_runtime.natsaccess import ACCESS
from stafett_runtime.natsaccess import streams as platform_streams

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


@dataclass(frozen=True)
class Checkpoint:
    """A signed checkpoint: `stream` held `last_seq` messages whose running hash was `hash`."""

    stream: str
    last_seq: int
    hash: str
    said: str  # where it is kept and who signed it, for the fault that names it


@dataclass
class Evidence:
    """The keys and checkpoints every stream is checked against."""

    keys: evidence.Keys = field(default_factory=evidence.Keys)
    checkpoints: dict[str, list[Checkpoint]] = field(default_factory=lambda: defaultdict(list))


def verify(
    store: Store,
    only: set[str] | None = None,
    *,
    allow_unsigned: bool = False,
    off_site: Path | None = None,
) -> Verification:
    result = Verification()
    event_seqs: dict[str, set[int]] = {}
    tracking: list[TrackingRecord] = []
    present = {info.config.name or "": info for info in store.streams()}
    expected = platform_streams()
    for name in sorted(expected):
        if name not in present and (not only or name in only):
            _fault(result, name, None, "missing: the platform keeps this stream, and it is gone")
    known = _evidence(store, present, result, off_site)
    existing = set(present)
    for info in store.event_streams():
        name = info.config.name or ""
        if only and name not in only:
            continue
        report = StreamReport(name)
        result.reports.append(report)
        denies = name in expected or bool(info.config.deny_delete)
        if name in expected and not (info.config.deny_delete and info.config.deny_purge):
            _fault(
                result,
                name,
                None,
                "allows deleting or purging messages, which the platform's streams deny",
            )
        checking = _StreamCheck(name, known, result, allow_unsigned)
        try:
            event_seqs[name] = _check_stream(
                store, name, report, result, tracking, checking, denies
            )
        except Exception as error:  # a damaged store is reported, never a crash
            _fault(result, name, None, f"could not be read to the end: {error!r}")
            event_seqs[name] = set()
        checking.finish(report)
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


def _evidence(
    store: Store, present: dict[str, Any], result: Verification, off_site: Path | None
) -> Evidence:
    """The published keys, and every checkpoint whose signature holds (from CHECKPOINTS, and
    from the file kept off-site)."""
    known = Evidence()
    kept: list[tuple[str, str, dict[str, str], bytes]] = []
    if off_site is not None:
        try:
            exported = json.loads(off_site.read_text())
            for key in exported["keys"]:
                known.keys.add(0, key["subject"], key["payload"].encode())
            for c in exported["checkpoints"]:
                kept.append(("kept off-site", c["subject"], c["headers"], c["payload"].encode()))
        except (OSError, ValueError, KeyError, TypeError) as error:
            _fault(result, str(off_site), None, f"not an export of checkpoints: {error!r}")
    if evidence.KEYS.stream in present:
        for message in store.read(evidence.KEYS.stream):
            known.keys.add(message.seq, message.subject, message.data)
    for seq, text in known.keys.faults:
        _fault(result, evidence.KEYS.stream, seq or None, text)
    stored: set[tuple[str, bytes]] = set()
    if evidence.CHECKPOINTS.stream in present:
        for message in store.read(evidence.CHECKPOINTS.stream):
            stored.add((message.subject, message.data))
            where = f"{evidence.CHECKPOINTS.stream} #{message.seq}"
            _checkpoint(known, result, where, message.subject, message.headers, message.data)
    for where, subject, headers, payload in kept:
        if (subject, payload) not in stored:
            _fault(
                result,
                evidence.CHECKPOINTS.stream,
                None,
                f"a checkpoint kept off-site is gone from the stream: {payload.decode()}",
            )
            _checkpoint(known, result, where, subject, headers, payload)
    return known


def _checkpoint(
    known: Evidence,
    result: Verification,
    where: str,
    subject: str,
    headers: dict[str, str] | Any,
    payload: bytes,
) -> None:
    service, problem = known.keys.check(subject, headers, payload)
    record = evidence.read_checkpoint(payload)
    if problem is None and record is None:
        problem = "not a checkpoint record"
    elif record is not None and subject != evidence.checkpoint_subject(
        record.service, record.stream
    ):
        problem = f"on {subject}, but it names {record.service} and {record.stream}"
    elif record is not None and service != record.service:
        problem = f"names {record.service} but is signed by {service}"
    if problem is not None or record is None:
        _fault(result, evidence.CHECKPOINTS.stream, None, f"checkpoint ({where}): {problem}")
        return
    said = f"{where}, by {record.service} at {record.at.isoformat(timespec='seconds')}"
    known.checkpoints[record.stream].append(
        Checkpoint(record.stream, record.last_seq, record.hash, said)
    )


class _StreamCheck:
    """What is checked message by message besides contracts: signatures, chains, the running
    hash against the checkpoints."""

    def __init__(
        self, stream: str, known: Evidence, result: Verification, allow_unsigned: bool
    ) -> None:
        self.stream = stream
        self.keys = known.keys
        self.result = result
        self.allow_unsigned = allow_unsigned
        self.writers = _writers(stream)
        self.heads: dict[str, str] = {}  # chain -> digest of its last sound message
        self.hash = evidence.GENESIS
        self.last = 0
        self.checkpoints = sorted(known.checkpoints.get(stream, []), key=lambda c: c.last_seq)
        self.signed_seen = False
        self.legacy = 0

    def message(self, message: StoredMessage) -> None:
        message_digest = evidence.digest_of(message)
        before = self.hash
        self.hash = evidence.running_hash(self.hash, message.seq, message_digest)
        self._compare(message.seq, before)
        self.last = message.seq
        chain = evidence.chain_of(message.subject)
        if chain is None:
            return
        where = f"{message.subject}"
        service, problem = self.keys.check(message.subject, message.headers, message.data)
        if problem == "unsigned":
            if self.allow_unsigned and not self.signed_seen:
                self.legacy += 1
                self.heads[chain] = message_digest
                return
            _fault(self.result, self.stream, message.seq, f"{where}: unsigned (forged?)")
            return
        if problem is not None:
            _fault(self.result, self.stream, message.seq, f"{where}: {problem}")
            return
        self.signed_seen = True
        tracking = chain == message.subject
        if self.writers is not None and (service, tracking) not in self.writers:
            _fault(
                self.result,
                self.stream,
                message.seq,
                f"{where}: signed by {service}, which may not write this to {self.stream}",
            )
            return
        previous = message.headers.get(evidence.PREVIOUS)
        if previous != self.heads.get(chain, evidence.GENESIS):
            _fault(
                self.result,
                self.stream,
                message.seq,
                f"{where}: the chain is broken: it does not follow the message before it on "
                f"{chain} (one deleted, left out or altered)",
            )
        self.heads[chain] = message_digest

    def _compare(self, seq: int, before: str) -> None:
        """Compare the checkpoints this message passes: at it, or in the gap before it."""
        while self.checkpoints and self.checkpoints[0].last_seq <= seq:
            checkpoint = self.checkpoints.pop(0)
            at = self.hash if checkpoint.last_seq == seq else before
            if checkpoint.hash != at:
                _fault(
                    self.result,
                    self.stream,
                    checkpoint.last_seq,
                    f"does not match its checkpoint ({checkpoint.said}): the stream up to "
                    f"#{checkpoint.last_seq} was altered",
                )

    def finish(self, report: StreamReport) -> None:
        for checkpoint in self.checkpoints:  # beyond the stream's end: cut back
            _fault(
                self.result,
                self.stream,
                self.last,
                f"ends at #{self.last}, cut back below its checkpoint at "
                f"#{checkpoint.last_seq} ({checkpoint.said})",
            )
        self.checkpoints = []
        if self.legacy:
            self.result.notes.append(
                Finding(self.stream, None, f"{self.legacy} unsigned (legacy) message(s)")
            )


def _writers(stream: str) -> set[tuple[str, bool]] | None:
    """Who may write what to a stream of the platform: (service, a tracking record?)."""
    rows = [row for row in ACCESS if stream == row.owns or stream in row.appends]
    if not rows:
        return None
    found = {(row.service, False) for row in rows}
    found |= {(row.service, True) for row in rows if row.owns == stream}
    return found


def _check_stream(
    store: Store,
    stream: str,
    report: StreamReport,
    result: Verification,
    tracking: list[TrackingRecord],
    checking: _StreamCheck,
    denies: bool,
) -> set[int]:
    deleted = store.deleted(stream)
    versions: dict[str, int] = {}
    tracked: dict[str, int] = {}
    seqs: set[int] = set()
    previous = 0
    for message in store.read(stream):
        report.messages += 1
        _check_gap(
            result,
            stream,
            previous + 1,
            message.seq - 1,
            deleted.first_seq,
            deleted.deleted,
            denies,
        )
        previous = message.seq
        checking.message(message)
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
    _check_gap(
        result,
        stream,
        previous + 1,
        deleted.last_seq,
        deleted.first_seq,
        deleted.deleted,
        denies,
    )
    report.aggregates = len(versions)
    return seqs


def _check_gap(
    result: Verification,
    stream: str,
    first: int,
    last: int,
    stream_first: int,
    gone: frozenset[int],
    denies: bool,
) -> None:
    """Sequences from `first` to `last` that the stream does not hold: explained by the
    stream (a note), unless it denies deleting them; unexplained (a fault) in any case."""
    if first > last:
        return
    before_start = range(first, min(last, stream_first - 1) + 1)
    if before_start:
        text = (
            f"#{_span(before_start)}: before the stream's first sequence "
            f"{stream_first} (purged or removed by a limit)"
        )
        if denies:
            _fault(result, stream, before_start[0], f"{text}, in a stream that denies it")
        else:
            result.notes.append(Finding(stream, None, text))
    rest = range(max(first, stream_first), last + 1)
    explained = [seq for seq in rest if seq in gone]
    unexplained = [seq for seq in rest if seq not in gone]
    if explained:
        text = f"{len(explained)} sequence(s) deleted: #{_list(explained)}"
        if denies:
            _fault(result, stream, explained[0], f"{text}, in a stream that denies deletion")
        else:
            result.notes.append(Finding(stream, None, text))
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


def export_checkpoints(store: Store, path: Path) -> int:
    """Write every signed checkpoint and every published key to `path`, to keep off-site; a
    later `verify --checkpoints PATH` compares the streams (and CHECKPOINTS) with it. How many
    checkpoints were written."""
    present = {info.config.name for info in store.streams()}
    keys: list[dict[str, str]] = []
    checkpoints: list[dict[str, Any]] = []
    if evidence.KEYS.stream in present:
        keys = [
            {"subject": m.subject, "payload": m.data.decode(errors="replace")}
            for m in store.read(evidence.KEYS.stream)
        ]
    if evidence.CHECKPOINTS.stream in present:
        for m in store.read(evidence.CHECKPOINTS.stream):
            headers = {
                name: m.headers[name]
                for name in (evidence.SIGNER, evidence.PREVIOUS, evidence.SIGNATURE)
                if name in m.headers
            }
            payload = m.data.decode(errors="replace")
            checkpoints.append({"subject": m.subject, "headers": headers, "payload": payload})
    exported = {
        "exported_at": datetime.now(UTC).isoformat(),
        "nats": store.url,
        "keys": keys,
        "checkpoints": checkpoints,
    }
    path.write_text(json.dumps(exported, indent=1) + "\n")
    return len(checkpoints)
