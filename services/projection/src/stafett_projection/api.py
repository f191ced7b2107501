"""The query API: read models, as the caller may see them, every read of case data recorded.

| method and path | what | who |
|---|---|---|
| GET /cases/{id}/relay-log?as_of=&purpose=&min_version= | every entry in order, from all services; the state as of a moment | the access rule |
| GET /cases/{id}/consent-status | consents, legal bases and reports, which services are covered now | the access rule |
| GET /cases/{id}/handover-packet | measures tried and their evaluations, what worked, decisions, open measures and action items, the case's state: of the entries the reader may see (a receiving unit under a handover consent: from the whole case) | the access rule |
| GET /cases/{id}/access-log | who read the case, when, why, and refused attempts | guardians, the child, auditors |
| GET /cases/{id}/export.jsonl | every event with its envelope, as JSON lines | auditors |
| GET /cases/{id}/archive?lang= | the archive document, once the case is closed, as Markdown | the access rule |
| GET /cases/{id}/archive.json?lang= | the archive document as JSON | the access rule |
| GET /worklist | staff: their cases, measures and action items, and what is due; guardians: their children's cases, named; the child: their own, from the reading age | anyone |
| GET /overrides?purpose= | every legal basis and report to child welfare across cases, newest first | auditors |
| GET /units/{unit}/overview | open cases per level, follow-up breaks, evaluations due | the unit's leader (the directory's), auditors |
| GET /figures?by= | management figures without personal data: the municipality's, or per unit and month (JSON, or CSV with `Accept: text/csv`) | unit leaders, administrators, auditors |
| GET /lag | how far each read model is behind its stream | anyone |

"The access rule" is `stafett_contracts.access.read_access`, asked through the runtime's read
gate (`Kernel.reads`, with the read models as the source of the case): it decides before anything
about the case is said, appends CaseAccessed to the AUDIT stream (refusals too), and refuses with
403 naming the rule, or 422 naming `purpose` for an auditor who states none. What it grants is
shown: the entries of every stream it shows, a state folded only from the case entries it shows,
and the child's personal data only where it lets the reader know who the child is.

Query and path parameters are bounded (`stafett_contracts.inputs`): `as_of` is a date-time with
its time zone, `unit` a unit id, `purpose` at most 500 characters with no control character,
`lang` nb or en, `by` municipality or unit-month; otherwise 422 naming the parameter.

While the read models are rebuilt after an upgrade that changed their tables, reads of them are
503 (try again shortly), and readiness says how far the rebuild is (`projection`).
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Literal, TypeVar
from uuid import UUID
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import msgspec
from litestar import Litestar, Request, Response, get
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, Parameter
from litestar.types import LifespanHook

from stafett_contracts.access import Dated, state_shown, visible
from stafett_contracts.case import CaseEvent
from stafett_contracts.casefile import CaseSummary
from stafett_contracts.guides import GuideProgress, where_in_guide
from stafett_contracts.identity import Actor, Role
from stafett_contracts.inputs import ReadPurpose, UnitId, limits, utc_moment
from stafett_contracts.personal import Erased, PersonalData
from stafett_projection import archive as archives
from stafett_projection import figures as management
from stafett_projection import phrases, views
from stafett_projection.projection import Projection
from stafett_runtime.apidocs import refusals
from stafett_runtime.domain import NotAllowed, RuleViolation
from stafett_runtime.health import CheckResult, Readiness
from stafett_runtime.kernel import Kernel
from stafett_runtime.keystore import KeyStoreError
from stafett_runtime.reads import ENDPOINT_FOR_ROLES, Admitted
from stafett_runtime.service import call, http_app

Purpose = Annotated[
    str | None,
    Parameter(
        description="why you read: required of auditors, recorded for everyone; at most 500 "
        "characters, no control character",
        **limits(ReadPurpose),
    ),
]
# The newest version `min_version` may wait for: a case's versions are counted in a 64-bit integer.
MOST_VERSIONS = 2**63 - 1


class RelayLog(msgspec.Struct, frozen=True, kw_only=True):
    case_id: UUID
    as_of: datetime | None
    basis: str | None
    state: CaseSummary  # folded only from the case entries shown
    child: PersonalData | None = None  # only for a reader who may know who the child is
    erased: Erased | None = None  # instead, once the child's key is deleted
    entries: list[views.Entry]
    guide: GuideProgress | None = None  # where the case is in its action guide, as shown


Language = Annotated[
    phrases.Language,
    Parameter(description="the document's language: nb (Norwegian bokmål, the default) or en"),
]
FIGURES_MIN_GROUP = "STAFETT_PROJECTION_FIGURES_MIN_GROUP"
TIME_ZONE = "STAFETT_PROJECTION_TIMEZONE"
CSV = "text/csv"
MARKDOWN = "text/markdown"
JSON = "application/json"


def min_group(environ: Mapping[str, str]) -> int:
    """The smallest group a figure is given for (default 5); smaller ones are null."""
    text = environ.get(FIGURES_MIN_GROUP, "5")
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"{FIGURES_MIN_GROUP} must be a whole number of at least 1, not {text!r}")
    return int(text)


def time_zone(environ: Mapping[str, str]) -> ZoneInfo:
    """The municipality's time zone (default Europe/Oslo): the archive's dates, the figures'
    months."""
    name = environ.get(TIME_ZONE) or "Europe/Oslo"
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        message = f"{TIME_ZONE} must name a time zone, such as Europe/Oslo, not {name!r}"
        raise ValueError(message) from None


def create_app(
    projection: Projection,
    kernel: Kernel,
    readiness: Readiness | None = None,
    on_startup: Sequence[LifespanHook] = (),
    on_shutdown: Sequence[LifespanHook] = (),
    *,
    figures_min_group: int = 5,
    zone: ZoneInfo | None = None,
) -> Litestar:
    readiness = readiness or Readiness()
    reads = kernel.reads(cases=projection)
    zone = zone or ZoneInfo("Europe/Oslo")

    async def start() -> None:
        await projection.start(kernel.nc, kernel.directory)

    async def feeds_check() -> CheckResult:
        if not projection.serving:
            # Ready to take requests, which say "try again" (503) until the rebuild is done.
            rebuilt = projection.rebuilt
            progress = "waiting for the rebuild" if rebuilt is None else f"{rebuilt:,} events"
            detail = f"rebuilding the read models for this version: {progress}"
            return CheckResult(ok=True, degraded=True, detail=detail)
        failed = [s for s, f in projection.feeds.items() if f.error is not None]
        if not projection.feeds or failed:
            return CheckResult(ok=False, detail=f"feeds stopped: {', '.join(failed) or 'all'}")
        positions = ", ".join(f"{s}={f.position}" for s, f in projection.feeds.items())
        return CheckResult(ok=True, detail=positions)

    readiness.add("read-models", feeds_check)

    async def history(case_id: UUID) -> views.CaseHistory:
        found = await projection.read(views.history, str(case_id))
        if found is None:
            raise NotFoundException(f"no case {case_id}")
        return found

    async def personal_data(admitted: Admitted) -> PersonalData | Erased | None:
        """The child's personal data, opened only for a reader the rule lets know who it is."""
        sealed = admitted.case.personal_data
        if sealed is None or not admitted.access.identity:
            return None
        try:
            return await kernel.unseal(sealed)
        except KeyStoreError:
            return None  # a key store without this child's key: show no personal data

    async def guide_step(
        admitted: Admitted, case_id: UUID, events: Sequence[CaseEvent]
    ) -> GuideProgress | None:
        """Where the case is in its guide, as the reader may know it."""
        book = await projection.read(views.guide_book)
        directory = kernel.directory.current()
        return where_in_guide(admitted.access, case_id, events, directory, book)

    @get(
        "/cases/{case_id:uuid}/relay-log",
        summary="The relay log: the entries I may see, in order",
        responses=refusals(403),
    )
    async def relay_log(
        case_id: FromPath[UUID],
        request: Request[Actor, Any, Any],
        purpose: Purpose = None,
        as_of: Annotated[
            datetime | None,
            Parameter(
                description="the case as it stood at this moment (time travel), with its "
                "time zone (Z or an offset)"
            ),
        ] = None,
        min_version: Annotated[
            int | None,
            Parameter(
                ge=1,
                le=MOST_VERSIONS,
                description="wait (up to 5 s) until the case's own version N is visible",
            ),
        ] = None,
    ) -> RelayLog:
        moment = _moment("as_of", as_of)
        if min_version is not None:
            await projection.wait_for_case_version(str(case_id), min_version, 5.0)
        # One read for the decision and the entries: a consistent snapshot, one trip to the
        # database. Access is decided on the case as it is now; `as_of` only cuts what is shown.
        found = await history(case_id)
        admitted = await reads.admit(request.user, case_id, "relay-log", purpose, case=found.case)
        opened = await personal_data(admitted)
        relay_log = RelayLog(
            case_id=case_id,
            as_of=moment,
            basis=admitted.access.basis,
            state=state_shown(admitted.access, case_id, _until(moment, found.events)),
            child=opened if isinstance(opened, PersonalData) else None,
            erased=opened if isinstance(opened, Erased) else None,
            entries=_until(moment, visible(admitted.access, found.entries)),
            guide=await guide_step(admitted, case_id, _until(moment, found.events)),
        )
        # Free text stays sealed in the database; opened here, for this reader only.
        return await kernel.open_texts(relay_log)

    @get(
        "/cases/{case_id:uuid}/consent-status",
        summary="Who may see the case, until when",
        responses=refusals(403),
    )
    async def consent_status(
        case_id: FromPath[UUID], request: Request[Actor, Any, Any], purpose: Purpose = None
    ) -> views.ConsentStatus:
        found = await projection.read(views.consent_status, str(case_id), datetime.now(UTC))
        if found is None:
            raise NotFoundException(f"no case {case_id}")
        case, status = found
        await reads.admit(request.user, case_id, "consent-status", purpose, case=case)
        return status

    @get(
        "/cases/{case_id:uuid}/handover-packet",
        summary="What a receiving unit sees",
        responses=refusals(403),
    )
    async def handover_packet(
        case_id: FromPath[UUID], request: Request[Actor, Any, Any], purpose: Purpose = None
    ) -> views.HandoverPacket:
        found = await history(case_id)
        admitted = await reads.admit(
            request.user, case_id, "handover-packet", purpose, case=found.case
        )
        opened = await personal_data(admitted)
        packet = views.HandoverPacket(
            case_id=case_id,
            basis=admitted.access.basis,
            state=state_shown(admitted.access, case_id, found.events),
            child=opened if isinstance(opened, PersonalData) else None,
            erased=opened if isinstance(opened, Erased) else None,
            **views.handover_packet(visible(admitted.access, found.entries)),
        )
        return await kernel.open_texts(packet)

    @get(
        "/cases/{case_id:uuid}/access-log",
        summary="Who read the case, when and why",
        responses=refusals(403),
    )
    async def access_log(
        case_id: FromPath[UUID], request: Request[Actor, Any, Any], purpose: Purpose = None
    ) -> list[views.Reading]:
        await reads.admit(
            request.user,
            case_id,
            "access-log",
            purpose,
            only=(Role.GUARDIAN, Role.CHILD, Role.AUDITOR),
        )
        return await projection.read(views.access_log, str(case_id))

    @get(
        "/cases/{case_id:uuid}/export.jsonl",
        summary="Every event with its envelope",
        media_type="application/x-ndjson",
        responses=refusals(403),
    )
    async def export(
        case_id: FromPath[UUID], request: Request[Actor, Any, Any], purpose: Purpose = None
    ) -> Response[bytes]:
        await reads.admit(request.user, case_id, "export", purpose, only=(Role.AUDITOR,))
        lines = await projection.read(views.export_lines, str(case_id))
        # One JSON object a line; free text opened for this reader (or erased), never stored so.
        opened = await kernel.open_texts(lines)
        body = b"".join(msgspec.json.encode(line) + b"\n" for line in opened)
        return Response(body, media_type="application/x-ndjson")

    async def archive_of(
        case_id: UUID, actor: Actor, purpose: str | None, lang: phrases.Language
    ) -> archives.ArchiveDocument:
        found = await history(case_id)
        # Permission first: whether the case is closed is itself something about the case.
        admitted = await reads.admit(actor, case_id, "archive", purpose, case=found.case)
        if not admitted.case.closed:
            raise RuleViolation("archive-when-closed", "a case goes to the archive when it closes")
        return await archives.opened_document(
            kernel,
            case_id,
            await personal_data(admitted),
            visible(admitted.access, found.entries),
            state_shown(admitted.access, case_id, found.events),
            kernel.directory.current(),
            lang,
            zone,
        )

    @get(
        "/cases/{case_id:uuid}/archive",
        summary="The archive document, for the pupil's file (JSON at archive.json)",
        media_type=MARKDOWN,
        responses=refusals(403, 409),
    )
    async def archive(
        case_id: FromPath[UUID],
        request: Request[Actor, Any, Any],
        purpose: Purpose = None,
        lang: Language = "nb",
    ) -> Response[str]:
        document = await archive_of(case_id, request.user, purpose, lang)
        text = archives.markdown(document, zone, kernel.directory.current())
        return Response(text, media_type=f"{MARKDOWN}; charset=utf-8")

    @get(
        "/cases/{case_id:uuid}/archive.json",
        summary="The archive document as JSON",
        responses=refusals(403, 409),
    )
    async def archive_json(
        case_id: FromPath[UUID],
        request: Request[Actor, Any, Any],
        purpose: Purpose = None,
        lang: Language = "nb",
    ) -> archives.ArchiveDocument:
        return await archive_of(case_id, request.user, purpose, lang)

    @get("/worklist", summary="My cases, measures and action items, and what is due")
    async def worklist(request: Request[Actor, Any, Any]) -> list[views.WorkItem]:
        actor = request.user
        if actor.role not in (Role.GUARDIAN, Role.CHILD):
            deadlines = kernel.directory.current().deadlines
            today = datetime.now(zone).date()
            return await projection.read(
                views.worklist, actor.person, actor.service, deadlines, today
            )
        # Guardians and the child find their cases, and the child's name, through the
        # register, never the request (docs/projection.md: why this is no read of a case).
        children = await call(kernel.register.children_of, actor.person)
        if actor.role == Role.GUARDIAN:
            theirs = [c for c in children if c.is_guardian(actor.person)]
            return await projection.read(views.children_s_cases, "guardian", theirs)
        today = datetime.now(UTC).date()
        reading_age = kernel.read_rules.child_reads_from_age  # as the access rule reads it
        own = [
            c for c in children if c.is_the_child(actor.person) and c.age_on(today) >= reading_age
        ]
        return await projection.read(views.children_s_cases, "child", own)

    @get(
        "/overrides",
        summary="Every legal basis and report to child welfare, newest first",
        responses=refusals(403),
    )
    async def overrides(
        request: Request[Actor, Any, Any], purpose: Purpose = None
    ) -> list[views.Override]:
        actor = request.user
        if actor.role != Role.AUDITOR:
            raise NotAllowed("only auditors list the overrides", rule=ENDPOINT_FOR_ROLES)
        if not (purpose or "").strip():
            raise _purpose_required()
        cases = await projection.read(views.overridden_cases)
        # Each case listed is a read of it, and is recorded as one.
        await asyncio.gather(
            *(reads.admit(actor, h.case.id, "overrides", purpose, case=h.case) for h in cases)
        )
        listed = [o for h in cases for o in views.overrides_of(h.case, h.events)]
        return sorted(listed, key=lambda o: o.since, reverse=True)

    @get("/units/{unit:str}/overview", summary="A unit leader's overview", responses=refusals(403))
    async def unit_overview(
        unit: Annotated[str, Parameter(description="the unit, by id", **limits(UnitId))],
        request: Request[Actor, Any, Any],
        purpose: Purpose = None,
    ) -> dict[str, Any]:
        actor = request.user
        if actor.role == Role.AUDITOR and not (purpose or "").strip():
            raise _purpose_required()
        leads = kernel.directory.current().leads(actor.person, unit)
        if not (actor.role == Role.AUDITOR or leads):
            raise NotAllowed("only the unit's leader (or an auditor) sees its overview")
        today = datetime.now(UTC).date()
        return await projection.read(views.unit_overview, unit, today)

    @get(
        "/figures",
        summary="Management figures, without personal data: the municipality's, or per unit "
        "and month (CSV with Accept: text/csv)",
        responses=refusals(403),
    )
    async def figures(
        request: Request[Actor, Any, Any],
        by: Annotated[
            Literal["municipality", "unit-month"],
            Parameter(description="the municipality's figures, or each unit's for each month"),
        ] = "municipality",
    ) -> Response[management.MunicipalFigures | management.UnitMonthFigures | str]:
        if request.user.role not in (Role.UNIT_LEADER, Role.ADMINISTRATOR, Role.AUDITOR):
            raise NotAllowed("figures are for unit leaders, administrators and auditors")
        now = datetime.now(UTC)
        if by == "municipality":
            found = await projection.read(management.municipal, now, zone, figures_min_group)
            return Response(found, media_type=JSON)
        per_unit = await projection.read(
            management.per_unit_and_month,
            now,
            zone,
            figures_min_group,
            kernel.directory.current(),  # each unit's kind: which guide its cases follow
        )
        if request.accept.best_match([JSON, CSV], default=JSON) == CSV:
            return Response(management.as_csv(per_unit), media_type=f"{CSV}; charset=utf-8")
        return Response(per_unit, media_type=JSON)

    @get("/lag", summary="How far each read model is behind its stream")
    async def lag() -> dict[str, dict[str, Any]]:
        return await projection.lag()

    return http_app(
        service="projection",
        kernel=kernel,
        route_handlers=[
            relay_log,
            consent_status,
            handover_packet,
            access_log,
            export,
            archive,
            archive_json,
            worklist,
            overrides,
            unit_overview,
            figures,
            lag,
        ],
        readiness=readiness,
        description=__doc__ or "",
        on_startup=[start, *on_startup],
        on_shutdown=[*on_shutdown, projection.stop],
    )


D = TypeVar("D", bound=Dated)


def _until(moment: datetime | None, entries: list[D]) -> list[D]:
    """The entries up to `moment` (time travel); all of them without one."""
    return entries if moment is None else [e for e in entries if e.occurred_at <= moment]


def _moment(parameter: str, value: datetime | None) -> datetime | None:
    """The moment a query names, in UTC; 422 naming the parameter if it has no time zone."""
    try:
        return None if value is None else utc_moment(value)
    except ValueError as wrong:
        extra = [{"key": parameter, "message": str(wrong), "source": "query"}]
        raise ValidationException(f"{parameter} {wrong}", extra=extra) from None


def _purpose_required() -> ValidationException:
    return ValidationException(
        detail="an auditor must state a purpose",
        extra=[{"key": "purpose", "message": "required of auditors", "source": "query"}],
    )
