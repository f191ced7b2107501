"""The query API: read models, as the caller may see them, every read of case data recorded.

| method and path | what | who |
|---|---|---|
| GET /cases/{id}/relay-log?as_of=&purpose=&min_version= | every entry in order, from all services; the state as of a moment | see `access.py` |
| GET /cases/{id}/consent-status | consents, legal bases, which services are covered now | see `access.py` |
| GET /cases/{id}/handover-packet | measures tried, what worked, next steps (consent-filtered) | see `access.py` |
| GET /cases/{id}/access-log | who read the case, when, why, and refused attempts | guardians, auditors |
| GET /cases/{id}/export.jsonl | every event with its envelope, as JSON lines | auditors |
| GET /cases/{id}/archive | the relay log as a readable document, once the case is closed | see `access.py` |
| GET /worklist | the caller's own cases, measures and action items, and what is due | anyone |
| GET /units/{unit}/overview | open cases per level, follow-up breaks, evaluations due | the unit's leader, auditors |
| GET /figures | management figures without personal data | unit leaders, administrators, auditors |
| GET /lag | how far each read model is behind its stream | anyone |

Each read of a case appends CaseAccessed to the AUDIT stream before it answers, refusals too.
An auditor who states no `purpose` gets 422 naming the field (and the refusal is recorded).
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any
from uuid import UUID, uuid4

import msgspec
import nats
from litestar import Litestar, Request, Response, get
from litestar.exceptions import NotFoundException, ValidationException
from litestar.params import FromPath, Parameter
from litestar.types import LifespanHook
from nats.aio.client import Client

from stafett_contracts.identity import Actor, Role
from stafett_contracts.personal import Erased, PersonalData, SealedPersonalData
from stafett_projection import accesslog, views
from stafett_projection.access import CaseFacts, Decision, decide
from stafett_projection.models import ts
from stafett_projection.projection import Projection
from stafett_runtime.auth import TokenVerifier
from stafett_runtime.domain import NotAllowed, RuleViolation
from stafett_runtime.health import CheckResult, Readiness
from stafett_runtime.keystore import ChildKeys, KeyStoreError
from stafett_runtime.logging import current_correlation_id
from stafett_runtime.service import http_app
from stafett_runtime.settings import Settings

Purpose = Annotated[
    str | None,
    Parameter(
        description="why you read: required of auditors, recorded for everyone", max_length=500
    ),
]
_sealed = msgspec.json.Decoder(SealedPersonalData)


class RelayLog(msgspec.Struct, frozen=True, kw_only=True):
    case_id: UUID
    as_of: str | None
    basis: str | None
    state: views.CaseState
    child: PersonalData | None = None  # opened for whoever may read the case
    erased: Erased | None = None  # instead, once the child's key is deleted
    entries: list[views.Entry]


FIGURES_MIN_GROUP = "STAFETT_PROJECTION_FIGURES_MIN_GROUP"


def min_group(environ: Mapping[str, str]) -> int:
    """The smallest group a figure is given for (default 5); smaller ones are null."""
    text = environ.get(FIGURES_MIN_GROUP, "5")
    if not text.strip().isdigit() or int(text) < 1:
        raise ValueError(f"{FIGURES_MIN_GROUP} must be a whole number of at least 1, not {text!r}")
    return int(text)


class Runtime:
    """The service's NATS connection and children's keys, opened with the app."""

    def __init__(self, settings: Settings, environ: Mapping[str, str] = os.environ) -> None:
        self.settings = settings
        self.environ = environ
        self._nc: Client | None = None
        self._keys: ChildKeys | None = None

    @property
    def nc(self) -> Client:
        assert self._nc is not None, "the app has not started"
        return self._nc

    @property
    def keys(self) -> ChildKeys:
        assert self._keys is not None, "the app has not started"
        return self._keys

    async def open(self) -> None:
        s = self.settings
        # Credentials, TLS, cluster URLs and the service's own inbox, as every service connects.
        self._nc = await nats.connect(**s.nats_options(s.service))
        self._keys = await ChildKeys.bind(
            self._nc, replicas=s.nats_stream_replicas, environ=self.environ
        )

    async def close(self) -> None:
        if self._nc is not None:
            await self._nc.drain()
        self._nc, self._keys = None, None


def create_app(
    projection: Projection,
    verifier: TokenVerifier,
    runtime: Runtime,
    readiness: Readiness | None = None,
    on_startup: Sequence[LifespanHook] = (),
    on_shutdown: Sequence[LifespanHook] = (),
) -> Litestar:
    readiness = readiness or Readiness()
    figures_min_group = min_group(runtime.environ)

    async def start() -> None:
        await runtime.open()
        await projection.start(runtime.nc)

    async def stop() -> None:
        await projection.stop()
        await runtime.close()

    async def feeds_check() -> CheckResult:
        failed = [s for s, f in projection.feeds.items() if f.error is not None]
        if not projection.feeds or failed:
            return CheckResult(ok=False, detail=f"feeds stopped: {', '.join(failed) or 'all'}")
        positions = ", ".join(f"{s}={f.position}" for s, f in projection.feeds.items())
        return CheckResult(ok=True, detail=positions)

    readiness.add("read-models", feeds_check)

    async def admit(
        request: Request[Actor, Any, Any],
        case_id: FromPath[UUID],
        what: str,
        purpose: str | None,
        only: Sequence[Role] = (),
        read: tuple[CaseFacts, str | None] | None = None,
    ) -> tuple[Decision, str | None]:
        """Decide, record the decision as CaseAccessed, and refuse (403/422) or go on.

        `read`: the case's facts and sealed personal data, when the caller has read them already
        (with the entries it will show, from the same snapshot).
        """
        actor = request.user
        found = read or await projection.read(views.facts, str(case_id))
        if found is None:
            raise NotFoundException(f"no case {case_id}")
        facts, sealed = found
        decision = decide(facts, actor, ts(datetime.now(UTC)), purpose)
        if decision.granted and only and actor.role not in only:
            decision = Decision(
                granted=False, refusal=f"only {', '.join(only)} may read the {what}"
            )
        await accesslog.record(
            runtime.nc,
            actor=actor,
            case_id=case_id,
            what=what,
            purpose=purpose,
            granted=decision.granted,
            basis=decision.basis,
            refusal=decision.refusal,
            correlation_id=current_correlation_id() or uuid4().hex,
        )
        if not decision.granted:
            if actor.role == Role.AUDITOR and not purpose:
                raise ValidationException(
                    detail="an auditor must state a purpose",
                    extra=[
                        {"key": "purpose", "message": "required of auditors", "source": "query"}
                    ],
                )
            raise NotAllowed(decision.refusal or "not allowed")
        return decision, sealed

    async def child(sealed: str | None) -> PersonalData | Erased | None:
        if sealed is None:
            return None
        try:
            return await runtime.keys.open(_sealed.decode(sealed))
        except KeyStoreError:
            return None  # a key store without this child's key: show no personal data

    @get("/cases/{case_id:uuid}/relay-log", summary="The relay log: every entry in order")
    async def relay_log(
        case_id: FromPath[UUID],
        request: Request[Actor, Any, Any],
        purpose: Purpose = None,
        as_of: Annotated[
            datetime | None,
            Parameter(description="the case as it stood at this moment (time travel)"),
        ] = None,
        min_version: Annotated[
            int | None,
            Parameter(
                ge=1, description="wait (up to 5 s) until the case's own version N is visible"
            ),
        ] = None,
    ) -> RelayLog:
        if min_version is not None:
            await projection.wait_for_case_version(str(case_id), min_version, 5.0)
        moment = None if as_of is None else ts(as_of)
        # One read for the decision and the entries: a consistent snapshot, one trip to the
        # database. The state is folded from every entry; the caller sees those it may.
        found = await projection.read(views.facts_and_entries, str(case_id), moment)
        if found is None:
            raise NotFoundException(f"no case {case_id}")
        facts, sealed, everything = found
        decision, _ = await admit(request, case_id, "relay-log", purpose, read=(facts, sealed))
        opened = await child(sealed)
        return RelayLog(
            case_id=case_id,
            as_of=moment,
            basis=decision.basis,
            state=views.state_of(everything),
            child=opened if isinstance(opened, PersonalData) else None,
            erased=opened if isinstance(opened, Erased) else None,
            entries=views.visible(everything, decision),
        )

    @get("/cases/{case_id:uuid}/consent-status", summary="Who may see the case, until when")
    async def consent_status(
        case_id: FromPath[UUID], request: Request[Actor, Any, Any], purpose: Purpose = None
    ) -> dict[str, Any]:
        await admit(request, case_id, "consent-status", purpose)
        now = ts(datetime.now(UTC))
        return await projection.read(views.consent_status, str(case_id), now)

    @get("/cases/{case_id:uuid}/handover-packet", summary="What a receiving unit sees")
    async def handover_packet(
        case_id: FromPath[UUID], request: Request[Actor, Any, Any], purpose: Purpose = None
    ) -> dict[str, Any]:
        decision, sealed = await admit(request, case_id, "handover-packet", purpose)
        visible = views.visible(await projection.read(views.entries, str(case_id)), decision)
        packet = views.handover_packet(visible)
        opened = await child(sealed)
        packet["child"] = None if opened is None else msgspec.to_builtins(opened)
        packet["case_id"] = str(case_id)
        packet["state"] = msgspec.to_builtins(views.state_of(visible))
        return packet

    @get("/cases/{case_id:uuid}/access-log", summary="Who read the case, when and why")
    async def access_log(
        case_id: FromPath[UUID], request: Request[Actor, Any, Any], purpose: Purpose = None
    ) -> list[dict[str, Any]]:
        await admit(
            request, case_id, "access-log", purpose, only=(Role.GUARDIAN, Role.CHILD, Role.AUDITOR)
        )
        return await projection.read(views.access_log, str(case_id))

    @get(
        "/cases/{case_id:uuid}/export.jsonl",
        summary="Every event with its envelope",
        media_type="application/x-ndjson",
    )
    async def export(
        case_id: FromPath[UUID], request: Request[Actor, Any, Any], purpose: Purpose = None
    ) -> Response[str]:
        await admit(request, case_id, "export", purpose, only=(Role.AUDITOR,))
        lines = await projection.read(views.export_lines, str(case_id))
        return Response(lines, media_type="application/x-ndjson")

    @get(
        "/cases/{case_id:uuid}/archive",
        summary="The relay log as a document for the archive",
        media_type="text/markdown",
    )
    async def archive(
        case_id: FromPath[UUID], request: Request[Actor, Any, Any], purpose: Purpose = None
    ) -> Response[str]:
        status = await projection.read(views.case_status, str(case_id))
        if status is not None and status != "closed":
            raise RuleViolation("archive-when-closed", "a case goes to the archive when it closes")
        decision, sealed = await admit(request, case_id, "archive", purpose)
        visible = views.visible(await projection.read(views.entries, str(case_id)), decision)
        document = views.archive_document(
            str(case_id), await child(sealed), visible, views.state_of(visible)
        )
        return Response(document, media_type="text/markdown; charset=utf-8")

    @get("/worklist", summary="My cases, measures and action items, and what is due")
    async def worklist(request: Request[Actor, Any, Any]) -> list[dict[str, Any]]:
        actor = request.user
        return await projection.read(views.worklist, actor.person, actor.service)

    @get("/units/{unit:str}/overview", summary="A unit leader's overview")
    async def unit_overview(
        unit: FromPath[str], request: Request[Actor, Any, Any], purpose: Purpose = None
    ) -> dict[str, Any]:
        actor = request.user
        if actor.role == Role.AUDITOR and not purpose:
            raise ValidationException(
                detail="an auditor must state a purpose",
                extra=[{"key": "purpose", "message": "required of auditors", "source": "query"}],
            )
        if not (
            actor.role == Role.AUDITOR or (actor.role == Role.UNIT_LEADER and actor.service == unit)
        ):
            raise NotAllowed("only the unit's leader (or an auditor) sees its overview")
        today = datetime.now(UTC).date()
        return await projection.read(views.unit_overview, unit, today)

    @get("/figures", summary="Management figures, without personal data")
    async def figures(request: Request[Actor, Any, Any]) -> dict[str, Any]:
        if request.user.role not in (Role.UNIT_LEADER, Role.ADMINISTRATOR, Role.AUDITOR):
            raise NotAllowed("figures are for unit leaders, administrators and auditors")
        return await projection.read(views.figures, datetime.now(UTC), figures_min_group)

    @get("/lag", summary="How far each read model is behind its stream")
    async def lag() -> dict[str, dict[str, Any]]:
        return await projection.lag()

    return http_app(
        service="projection",
        route_handlers=[
            relay_log,
            consent_status,
            handover_packet,
            access_log,
            export,
            archive,
            worklist,
            unit_overview,
            figures,
            lag,
        ],
        readiness=readiness,
        verifier=verifier,
        description=__doc__ or "",
        on_startup=[start, *on_startup],
        on_shutdown=[*on_shutdown, stop],
    )
