"""Archive delivery: each case that closes goes to the municipality's archive (DOMAIN.md rule 10).

The projection makes the archive document (`archive`), so it delivers it too: one rule, one
place. A round (on start, then every STAFETT_ARCHIVE_INTERVAL seconds, default 30) finds the
closed cases whose closing has not been delivered (`due`: no `archived` row for the case's
newest closing version), makes each one's payload, the whole case in Norwegian bokmål and
English, as Markdown and as JSON (`payload`), hands it to the archive, and records
`ArchiveDelivered` on AUDIT (the record of the disclosure, which the case service waits for
before it shreds the child). It then waits until its own read models hold the record, so the
next round does not deliver it again.

Exactly once, nearly: the payload has a `delivery_id` fixed by the case and its version, and the
record's event id is too (a publish retried lands once). A crash between handing over and
recording delivers the same payload, with the same id, again: the archive keeps one per id (the
folder overwrites the same files; an HTTP archive is given the id as `Idempotency-Key`).

A failing archive stops nothing: the case is tried again after a pause that doubles from one
round up to an hour, and the other cases go on. Each failed attempt is logged and recorded on
AUDIT too (`ArchiveDeliveryFailed`: what the archive did, and when the next attempt is), so that
`stafett status` shows it from the streams, whether or not the projection runs; every attempt is
counted (`stafett_archive_deliveries_total`). Reopening a case and closing it again delivers it
again, as of the new closing.

Archives (`archive_from_env`):

- a folder (development, and the default): `STAFETT_ARCHIVE_DIR`, default `<data>/archive/`,
  made 0700; per delivery `<case id>-v<version>.json` (the payload) and
  `<case id>-v<version>.<nb|en>.md`, each written whole (a temporary file renamed) and 0600;
- HTTP (`STAFETT_ARCHIVE_URL`): the payload is POSTed as JSON, with `Idempotency-Key`, and
  `Authorization: Bearer $STAFETT_ARCHIVE_TOKEN` if set; any 2xx is delivered, and a JSON
  answer's `reference` is kept as the archive's id of it. An adapter in front of a Noark 5 /
  Fiks Arkiv archive takes it from there (docs/operating.md): the Fiks Arkiv message format
  itself is out of scope here.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Literal, Protocol
from uuid import UUID, uuid4, uuid5
from zoneinfo import ZoneInfo

import httpx
import msgspec
import structlog

from stafett_contracts.audit import ArchiveDelivered, ArchiveDeliveryFailed
from stafett_contracts.casefile import summary
from stafett_contracts.identity import Actor, Role
from stafett_contracts.personal import Erased, PersonalData, SealedPersonalData
from stafett_projection import archive as archives
from stafett_projection import phrases, views
from stafett_projection.projection import Projection
from stafett_projection.store import Tx
from stafett_runtime import metrics
from stafett_runtime.kernel import Kernel
from stafett_runtime.keystore import KeyStoreError
from stafett_runtime.periodic import Periodic
from stafett_runtime.settings import SettingsError

ARCHIVE_DIR = "STAFETT_ARCHIVE_DIR"
ARCHIVE_URL = "STAFETT_ARCHIVE_URL"
ARCHIVE_TOKEN = "STAFETT_ARCHIVE_TOKEN"
ARCHIVE_INTERVAL = "STAFETT_ARCHIVE_INTERVAL"
LONGEST_PAUSE = 3600.0  # seconds: a case whose delivery keeps failing is tried at least hourly
DELIVERER = Actor(person="archive-delivery", role=Role.SYSTEM, service="projection")
_LANGUAGES: tuple[phrases.Language, ...] = ("nb", "en")

log = structlog.get_logger(__name__)


class Document(msgspec.Struct, frozen=True, kw_only=True):
    """The archive document in one language: for a person (Markdown) and as data."""

    markdown: str
    document: archives.ArchiveDocument


class Payload(msgspec.Struct, frozen=True, kw_only=True):
    """What an archive receives for one closed case: the whole case, in nb and en."""

    delivery_id: UUID  # the same for every attempt at this case and version
    case_id: UUID
    case_version: int
    child_id: UUID
    municipality: str
    closed_at: datetime | None
    documents: dict[str, Document]  # by language: nb, en


class Due(msgspec.Struct, frozen=True, kw_only=True):
    case_id: UUID
    child_id: UUID
    version: int  # the version of the case at its newest closing


class ArchiveError(Exception):
    """The archive did not take the delivery; it is tried again later."""


class Archive(Protocol):
    kind: Literal["folder", "http"]

    async def deliver(self, payload: Payload, body: bytes) -> str | None:
        """Hand over the payload (`body` is its JSON); the archive's reference for it, if any.
        Delivering the same `delivery_id` again must keep one copy."""
        ...


class FolderArchive:
    """A folder of the owner's only: JSON and Markdown files, each written whole, 0600."""

    kind: Literal["folder", "http"] = "folder"

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    async def deliver(self, payload: Payload, body: bytes) -> str | None:
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        stem = f"{payload.case_id}-v{payload.case_version}"
        for language, document in payload.documents.items():
            _write_private(self.folder / f"{stem}.{language}.md", document.markdown.encode())
        _write_private(self.folder / f"{stem}.json", body)  # last: its presence says complete
        return f"{stem}.json"


class HttpArchive:
    """An archive's HTTP API, or an adapter in front of one (a Noark 5 / Fiks Arkiv archive)."""

    kind: Literal["folder", "http"] = "http"

    def __init__(self, url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.url = url
        self._token = token
        self._timeout = timeout

    async def deliver(self, payload: Payload, body: bytes) -> str | None:
        headers = {"Content-Type": "application/json", "Idempotency-Key": str(payload.delivery_id)}
        if self._token:
            headers["Authorization"] = f"Bearer {self._token}"
        try:
            async with httpx.AsyncClient(timeout=self._timeout) as client:
                answer = await client.post(self.url, content=body, headers=headers)
        except httpx.HTTPError as error:
            raise ArchiveError(f"the archive at {self.url} did not answer: {error}") from None
        if not answer.is_success:
            raise ArchiveError(f"the archive at {self.url} answered {answer.status_code}")
        try:
            reference = answer.json().get("reference")
        except (ValueError, AttributeError):
            return None
        return str(reference)[:10_000] if reference else None


def archive_from_env(environ: Mapping[str, str] = os.environ) -> Archive:
    """The archive the environment names: STAFETT_ARCHIVE_URL, else the folder."""
    url = environ.get(ARCHIVE_URL)
    if url:
        if not url.startswith(("http://", "https://")):
            raise SettingsError(f"{ARCHIVE_URL} must be an http(s) URL")
        return HttpArchive(url, environ.get(ARCHIVE_TOKEN) or None)
    data = Path(environ.get("STAFETT_DATA_DIR") or "var")
    return FolderArchive(Path(environ.get(ARCHIVE_DIR) or data / "archive"))


def interval_from_env(environ: Mapping[str, str] = os.environ) -> float:
    text = environ.get(ARCHIVE_INTERVAL) or "30"
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds <= 86_400:
        raise SettingsError(f"{ARCHIVE_INTERVAL}={text!r}: expected seconds, from 0 to a day")
    return seconds


def due(tx: Tx) -> list[Due]:
    """Closed cases whose newest closing is not delivered to the archive, oldest closing first."""
    rows = tx.all(
        "SELECT c.case_id, c.child_id, k.version FROM cases c"
        " JOIN (SELECT case_id, MAX(aggregate_version) AS version FROM entries"
        " WHERE stream = 'CASE' AND type = 'CaseClosed' GROUP BY case_id) k"
        " ON k.case_id = c.case_id"
        " WHERE c.status = 'closed' AND NOT EXISTS (SELECT 1 FROM archived a"
        " WHERE a.case_id = c.case_id AND a.case_version >= k.version)"
        " ORDER BY c.closed_at"
    )
    return [Due(case_id=UUID(r[0]), child_id=UUID(r[1]), version=int(r[2])) for r in rows]


class ArchiveDelivery(Periodic):
    """Each round: deliver every closed case not yet delivered, except those pausing."""

    name = "archive-delivery"

    def __init__(
        self,
        projection: Projection,
        kernel: Kernel,
        archive: Archive,
        interval: float,
        zone: ZoneInfo,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(interval)
        self.projection = projection
        self.kernel = kernel
        self.archive = archive
        self.zone = zone
        self._clock = clock
        self._failing: dict[tuple[UUID, int], tuple[int, float]] = {}  # (failures, next try)

    async def round(self) -> None:
        if not self.projection.serving:
            return  # rebuilding: the next round
        for case in await self.projection.read(due):
            key = (case.case_id, case.version)
            failures, next_try = self._failing.get(key, (0, 0.0))
            if self._clock() < next_try:
                continue
            try:
                await self.deliver(case)
            except Exception as error:
                pause = min(self.interval * 2**failures, LONGEST_PAUSE)
                self._failing[key] = (failures + 1, self._clock() + pause)
                await self._failed(case, failures + 1, pause, error)
            else:
                self._failing.pop(key, None)

    async def _failed(self, case: Due, attempts: int, pause: float, error: Exception) -> None:
        """Log the failed attempt, count it, and record it on AUDIT for `stafett status`."""
        reason = f"{type(error).__name__}: {error}"[:1_000]
        metrics.archive_delivery_attempted(self.archive.kind, "failed")
        log.warning(
            "archive delivery failed: trying again later",
            case_id=str(case.case_id),
            version=case.version,
            attempts=attempts,
            pause=pause,
            reason=reason,
        )
        now = datetime.now(UTC)
        event_id = uuid4()
        record = ArchiveDeliveryFailed(
            event_id=event_id,
            aggregate_id=event_id,
            aggregate_version=1,
            occurred_at=now,
            actor=DELIVERER,
            correlation_id=uuid4().hex,
            case_id=case.case_id,
            case_version=case.version,
            child_id=case.child_id,
            archive=self.archive.kind,
            error=reason,
            next_attempt_at=now + timedelta(seconds=pause),
        )
        try:
            await self.kernel.access_log.append(record)
        except Exception as failed:  # NATS away too: the log and the next attempt remain
            log.warning("archive delivery failure not recorded", reason=type(failed).__name__)

    async def deliver(self, case: Due) -> None:
        made = await self.payload(case)
        if made is None:
            return  # the read models moved on meanwhile (reopened): the next round sees it
        body = msgspec.json.encode(made)
        reference = await self.archive.deliver(made, body)
        metrics.archive_delivery_attempted(self.archive.kind, "delivered")
        event_id = uuid5(made.delivery_id, "recorded")
        record = ArchiveDelivered(
            event_id=event_id,
            aggregate_id=event_id,
            aggregate_version=1,
            occurred_at=datetime.now(UTC),
            actor=DELIVERER,
            correlation_id=uuid4().hex,
            case_id=made.case_id,
            case_version=made.case_version,
            child_id=made.child_id,
            archive=self.archive.kind,
            reference=reference,
            sha256=hashlib.sha256(body).hexdigest(),
        )
        position = await self.kernel.access_log.append(record)
        await self.projection.wait_for("AUDIT", position)
        log.info(
            "archive delivered",
            case_id=str(made.case_id),
            version=made.case_version,
            archive=self.archive.kind,
        )

    async def payload(self, case: Due) -> Payload | None:
        """The whole case as of its closing, in every language; None if it changed since."""
        found = await self.projection.read(views.history, str(case.case_id))
        if found is None or found.case.version != case.version or not found.case.closed:
            return None
        directory = self.kernel.directory.current()
        child = await self._child(found.case.personal_data)
        documents: dict[str, Document] = {}
        state = summary(case.case_id, found.events)
        for language in _LANGUAGES:
            # The whole case: the archive is the municipality's own record of it.
            document = await archives.opened_document(
                self.kernel,
                case.case_id,
                child,
                found.entries,
                state,
                directory,
                language,
                self.zone,
            )
            markdown = archives.markdown(document, self.zone, directory)
            documents[language] = Document(markdown=markdown, document=document)
        return Payload(
            delivery_id=uuid5(case.case_id, f"archive@{case.version}"),
            case_id=case.case_id,
            case_version=case.version,
            child_id=case.child_id,
            municipality=directory.municipality,
            closed_at=documents["nb"].document.closed_at,
            documents=documents,
        )

    async def _child(self, sealed: SealedPersonalData | None) -> PersonalData | Erased | None:
        if sealed is None:
            return None
        try:
            return await self.kernel.unseal(sealed)
        except KeyStoreError:
            return None


def _write_private(path: Path, data: bytes) -> None:
    """Write the file whole, readable by its owner only: a reader never sees half of it."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(descriptor, "wb") as file:  # mkstemp makes it 0600
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
