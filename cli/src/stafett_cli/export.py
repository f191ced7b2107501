"""`stafett export`: one case's history for an auditor or the archive.

As JSON lines (the default), read directly from the streams: the case's own events (CASE), and
every event of another service that belongs to it, that is every aggregate whose events name the
case in `case_id` (its consents, meetings, notifications, accesses). One line per event:
`{"stream", "seq", "subject", "event"}`, where `event` is the stored JSON with its envelope.
Lines are in the order things happened (`occurred_at`), stream order breaking ties.

As the archive document (`--archive`), from the projection's query API, which renders the relay
log for the pupil's file; auditors must state a purpose, which is itself logged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx

from stafett_cli.streams import Store, StoredMessage

CASE_STREAM = "CASE"


@dataclass(frozen=True)
class Line:
    stream: str
    message: StoredMessage
    event: dict[str, Any]

    def json(self) -> str:
        return json.dumps(
            {
                "stream": self.stream,
                "seq": self.message.seq,
                "subject": self.message.subject,
                "event": self.event,
            },
            ensure_ascii=False,
        )


def case_history(store: Store, case_id: UUID) -> list[Line]:
    lines: list[Line] = []
    for info in store.event_streams():
        stream = info.config.name or ""
        if stream == CASE_STREAM:
            prefix = next(iter(info.config.subjects or ["case.events.>"])).split(".")[0]
            messages = store.read(stream, f"{prefix}.events.{case_id}.*")
            lines += [Line(stream, m, json.loads(m.data)) for m in messages]
            continue
        related: set[str] = set()  # aggregates that named the case in an earlier event
        for message in store.read(stream):
            parts = message.subject.split(".")
            if len(parts) != 4 or parts[1] != "events":
                continue
            try:
                event = json.loads(message.data)
            except ValueError:
                continue  # `stafett verify` reports it; an export shows only what decodes
            if isinstance(event, dict) and event.get("case_id") == str(case_id):
                related.add(parts[2])
            if parts[2] in related:
                lines.append(Line(stream, message, event))
    lines.sort(
        key=lambda line: (str(line.event.get("occurred_at", "")), line.stream, line.message.seq)
    )
    return lines


class ArchiveError(RuntimeError):
    pass


def archive_document(base_url: str, case_id: UUID, token: str, purpose: str) -> str:
    """The relay log as the projection renders it for the archive."""
    url = f"{base_url}/cases/{case_id}/archive"
    try:
        answer = httpx.get(
            url,
            params={"purpose": purpose},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
    except httpx.HTTPError as error:
        raise ArchiveError(
            f"the projection's query API does not answer at {base_url} ({error}); "
            "is `stafett up` running, or is STAFETT_PROJECTION_URL right?"
        ) from error
    if answer.status_code != 200:
        raise ArchiveError(f"GET {url} answered {answer.status_code}: {answer.text[:500]}")
    return answer.text
