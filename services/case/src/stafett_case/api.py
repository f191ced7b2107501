"""The case service's HTTP API: parse, build the Context, call the application, answer.

| method and path | what |
|---|---|
| POST /cases | raise a concern (the child's personal data is sealed here, before the domain sees it) |
| POST /cases/{case_id}/<command> | one route per command, named in kebab case: /escalate, /plan-measure, ... |
| GET /cases/{case_id} | the case; the child's personal data opened only for its unit, baton holder and coordinator |

Every POST answers `{"id", "version"}`; refusals are mapped by `stafett_runtime.service`.
The consent facts (NoteConsent, LapseConsent, NoteLegalBasis) have no route: only the consent
policy gives them.
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import msgspec
from litestar import Litestar, Request, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody
from litestar.types import LifespanHook

from stafett_case.application import Cases
from stafett_case.domain import Case
from stafett_case.domain.access import acts_for_case_service, holds, is_decider
from stafett_case.domain.commands import (
    AcceptBaton,
    AppointBatonHolder,
    AssignCoordinator,
    CloseCase,
    Command,
    DecideLevel,
    DeEscalate,
    DefineProblem,
    EndMeasure,
    Escalate,
    EvaluateMeasure,
    FileChildWelfareReport,
    FormResponsibilityGroup,
    JoinAgency,
    LeaveAgency,
    NoteBrightSpot,
    OfferBaton,
    PlanMeasure,
    ProposeSystemMeasure,
    RaiseConcern,
    RecordChildView,
    RecordWonderingConversation,
    ReopenCase,
    RequestIndividualPlan,
    SendReferral,
    ShareConcern,
)
from stafett_case.keys import KeyStore
from stafett_contracts.envelope import Text
from stafett_contracts.identity import Actor
from stafett_contracts.personal import Erased, PersonalData
from stafett_runtime.auth import TokenVerifier
from stafett_runtime.domain import Context, NotAllowed, RuleViolation
from stafett_runtime.health import Readiness
from stafett_runtime.keystore import ChildErasedError
from stafett_runtime.logging import current_correlation_id
from stafett_runtime.service import call, http_app

ROUTED_COMMANDS: tuple[type[Command], ...] = (
    ShareConcern,
    RecordWonderingConversation,
    RecordChildView,
    NoteBrightSpot,
    DecideLevel,
    Escalate,
    DeEscalate,
    DefineProblem,
    PlanMeasure,
    EvaluateMeasure,
    EndMeasure,
    SendReferral,
    JoinAgency,
    LeaveAgency,
    AppointBatonHolder,
    OfferBaton,
    AcceptBaton,
    AssignCoordinator,
    FormResponsibilityGroup,
    RequestIndividualPlan,
    ProposeSystemMeasure,
    FileChildWelfareReport,
    CloseCase,
    ReopenCase,
)


class RaiseConcernBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A concern as a client sends it: the child's personal data in clear, over TLS."""

    child_id: UUID
    concern: Text
    personal_data: PersonalData | None = None


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int


class CaseView(msgspec.Struct, frozen=True, kw_only=True):
    """The case as its events leave it. `case.personal_data` (sealed) is never sent; the opened
    `personal_data` is, to the case's unit, baton holder and coordinator, or `erased` instead
    once the child's key is gone."""

    case: Case
    personal_data: PersonalData | None = None
    erased: Erased | None = None


def kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def context_of(request: Request[Actor, Any, Any]) -> Context:
    return Context(
        actor=request.user,
        now=datetime.now(UTC),
        correlation_id=current_correlation_id() or uuid4().hex,
    )


def create_app(
    cases: Cases,
    verifier: TokenVerifier,
    key_store: KeyStore,
    readiness: Readiness | None = None,
    on_startup: Sequence[LifespanHook] = (),
    on_shutdown: Sequence[LifespanHook] = (),
) -> Litestar:
    """The HTTP app in front of `cases`; main.py wires it, tests give it their own parts."""
    readiness = readiness or Readiness()
    readiness.add("child-keys", key_store.check)

    @post("/cases", summary="Raise a concern: the case begins at level 0")
    async def raise_concern(
        data: JSONBody[RaiseConcernBody], request: Request[Actor, Any, Any]
    ) -> Answer:
        case_id = uuid4()
        sealed = None
        if data.personal_data is not None:
            try:
                sealed = await key_store.keys.seal(data.personal_data, str(data.child_id))
            except ChildErasedError as erased:
                raise RuleViolation("erased-child-stays-erased", str(erased)) from None
        command = RaiseConcern(
            case_id=case_id, child_id=data.child_id, concern=data.concern, personal_data=sealed
        )
        version = await call(cases.handle, case_id, command, context_of(request))
        return Answer(id=case_id, version=version)

    @get("/cases/{case_id:uuid}", summary="The case, as the caller may see it")
    async def read_case(case_id: FromPath[UUID], request: Request[Actor, Any, Any]) -> CaseView:
        case = await call(cases.get, case_id)
        actor = request.user
        if not (acts_for_case_service(case, actor) or is_decider(case, actor)):
            raise NotAllowed("only those taking part in the case may read it")
        sees_the_child = actor.service == case.unit or any(
            holds(post, actor) for post in (case.holder, case.coordinator)
        )
        view = CaseView(case=msgspec.structs.replace(case, personal_data=None))
        if not sees_the_child or case.personal_data is None:
            return view
        opened = await key_store.keys.open(case.personal_data)
        if isinstance(opened, Erased):
            return msgspec.structs.replace(view, erased=opened)
        return msgspec.structs.replace(view, personal_data=opened)

    return http_app(
        service="case",
        route_handlers=[raise_concern, read_case, *map(command_route(cases), ROUTED_COMMANDS)],
        readiness=readiness,
        verifier=verifier,
        description=__doc__ or "",
        on_startup=[key_store.open, *on_startup],
        on_shutdown=[*on_shutdown, key_store.close],
    )


def command_route(cases: Cases) -> Callable[[type[Command]], HTTPRouteHandler]:
    """One POST route per command type, each with its own body schema."""

    def route(command_type: type[Command]) -> HTTPRouteHandler:
        async def handle(
            case_id: FromPath[UUID], data: Command, request: Request[Actor, Any, Any]
        ) -> Answer:
            context = context_of(request)
            version = await call(cases.handle, case_id, data, context, data.expected_version)
            return Answer(id=case_id, version=version)

        # The body is this route's own command, so the OpenAPI document shows every schema.
        body = JSONBody[command_type]  # type: ignore[valid-type]  # a type made at run time, one per command
        handle.__annotations__ = {**handle.__annotations__, "data": body}
        path = kebab(command_type.__name__)
        return post(
            f"/cases/{{case_id:uuid}}/{path}",
            operation_id=path,
            summary=(command_type.__doc__ or command_type.__name__).splitlines()[0],
            name=path,
        )(handle)

    return route
