"""The case service's HTTP API: parse, build the Context, call the command path, answer.

| method and path | what |
|---|---|
| POST /cases | raise a concern about a child the population register knows, named by `child_id` or `national_id` (exactly one); the register's record of the child is sealed into the case, never data from the request |
| POST /cases/{case_id}/<command> | one route per command, named in kebab case: /escalate, /plan-measure, ... |
| GET /cases/{case_id}?purpose= | the case, as the one access rule lets the caller see it; every read and refusal recorded |
| POST /children/{child_id}/erase | an administrator erases the child's personal data in every case (`erase_api`) |

Every POST answers `{"id", "version"}`; refusals are mapped by `stafett_runtime.service`. A body
or query parameter beyond the limits of `stafett_contracts.inputs` is 422 naming the field; a date
outside the case's window is 409 naming `date-within-window` (rules.py).
The consent facts (NoteConsent, LapseConsent, NoteLegalBasis) have no route: only the consent
policy gives them.

Free text about the child (the concern, notes, reasons, descriptions: each field marked
`x-sealed`) is sealed under the child's key as it arrives, before any rule sees it; no event
holds it in clear. Raising a concern refuses before anything is stored or sealed: a body naming the child both ways
or neither (422 naming both fields), someone who may not raise one (403; `unit-in-directory` for
a unit the municipality's directory does not list), a child the register does not know (422
naming the field). Only then is a child's key made, if it has none yet.

Reading a case goes through the read gate (`stafett_runtime.reads`): who may read it is decided
by `stafett_contracts.access.read_access` (guardians and the child as the register says, auditors
who state a purpose, the case's unit, services a consent, legal basis or report covers) and
recorded as `CaseAccessed` before anything about the case is said. `case` is folded only from
the entries the reader may see, without the sealed personal data, its free text opened (or
`{"erased": true, ...}` in its place once the child's key is gone); `personal_data` is the child's
identity opened, when the rule lets the reader know who the child is (`erased` instead once the
child's key is gone).
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Sequence
from typing import Annotated, Any
from uuid import UUID, uuid4

import msgspec
from litestar import Litestar, Request, get, post
from litestar.exceptions import ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody, Parameter
from litestar.types import LifespanHook

from stafett_case.application import Cases
from stafett_case.children import Children
from stafett_case.domain.access import unit_raising_concern
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
from stafett_case.erase_api import erase_route
from stafett_case.guides_api import guide_routes
from stafett_contracts.access import case_shown
from stafett_contracts.case import CaseEvent
from stafett_contracts.casefile import CaseFile, fold
from stafett_contracts.guides import GuideProgress, where_in_guide
from stafett_contracts.identity import Actor
from stafett_contracts.inputs import FreeText, NationalId, ReadPurpose, limits
from stafett_contracts.people import RegisteredChild
from stafett_contracts.personal import Erased, PersonalData, SealedPersonalData
from stafett_runtime.health import Readiness
from stafett_runtime.kernel import Kernel
from stafett_runtime.service import call, http_app, refusals

# Each command with a route, and what it does, in words: the route's summary.
ROUTED_COMMANDS: dict[type[Command], str] = {
    ShareConcern: "Share the concern with a colleague or the unit leader",
    RecordWonderingConversation: "Record a wondering conversation with the guardians or child",
    RecordChildView: "Record what the child says (the child's view)",
    NoteBrightSpot: "Note a bright spot: something that goes well",
    DecideLevel: "Decide to continue at the current level",
    Escalate: "Move the case up the staircase",
    DeEscalate: "Move the case down the staircase",
    DefineProblem: "Define the problem, with or without the guardians",
    PlanMeasure: "Plan a measure, with its responsible person and evaluation date",
    EvaluateMeasure: "Evaluate a measure: how it worked, and when to evaluate next",
    EndMeasure: "End a measure",
    SendReferral: "Refer the case to a helper service",
    JoinAgency: "Have a service take part, under a consent or a legal basis",
    LeaveAgency: "Have a service leave the case, its part done",
    AppointBatonHolder: "Appoint the baton holder",
    OfferBaton: "Offer the baton to another person",
    AcceptBaton: "Accept the baton offered to you",
    AssignCoordinator: "Appoint a coordinator",
    FormResponsibilityGroup: "Form the responsibility group",
    RequestIndividualPlan: "Request an individual plan",
    ProposeSystemMeasure: "Propose a system measure, without personal data",
    FileChildWelfareReport: "Report to child welfare under the duty to report",
    CloseCase: "Close the case",
    ReopenCase: "Reopen a closed case",
}
UNKNOWN_CHILD = "the population register knows no such child"

Purpose = Annotated[
    str | None,
    Parameter(
        description="why you read: required of auditors, recorded for everyone; at most 500 "
        "characters, no control character",
        **limits(ReadPurpose),
    ),
]


class RaiseConcernBody(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A concern about a child, named as the population register knows them: by the register's
    `child_id` or by `national_id`, exactly one. Who the child is comes from the register."""

    child_id: UUID | None = None
    national_id: NationalId | None = None
    concern: FreeText


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int


class CaseView(msgspec.Struct, frozen=True, kw_only=True):
    """The case folded from the entries the reader may see; its sealed `personal_data` is never
    sent. The child's identity, opened, is in `personal_data` when the reader may know who the
    child is, or `erased` instead once the child's key is gone."""

    case: CaseFile
    personal_data: PersonalData | None = None
    erased: Erased | None = None
    guide: GuideProgress | None = None  # where the case is in its action guide, as shown


class CaseFiles:
    """The application's cases as the read gate asks for them (a `CaseSource`)."""

    def __init__(self, cases: Cases) -> None:
        self._cases = cases

    async def case(self, case_id: UUID) -> CaseFile | None:
        return (await call(self._cases.commands.load, case_id)).state


def case_history(cases: Cases, case_id: UUID) -> list[CaseEvent]:
    """The case's events in order, for a reader to see only those they may."""
    return [event for event in cases.events.get(case_id) if isinstance(event, CaseEvent)]


def kebab(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "-", name).lower()


def create_app(
    cases: Cases,
    kernel: Kernel,
    readiness: Readiness | None = None,
    on_startup: Sequence[LifespanHook] = (),
    on_shutdown: Sequence[LifespanHook] = (),
    children: Children | None = None,
) -> Litestar:
    """The HTTP app in front of `cases`; main.py wires it, tests give it their own parts."""
    reads = kernel.reads(cases=CaseFiles(cases))
    if children is None and cases is not None:  # None only for the OpenAPI document
        children = Children(cases)

    async def registered_child(body: RaiseConcernBody) -> RegisteredChild:
        """The register's record of the child the body names; 422 naming the field if none."""
        if body.child_id is not None:
            child = await call(kernel.register.child, body.child_id)
            field = "child_id"
        else:
            child = await call(kernel.register.by_national_id, str(body.national_id))
            field = "national_id"
        if child is None:
            raise _invalid(UNKNOWN_CHILD, field)
        return child

    async def sealed(child: RegisteredChild) -> SealedPersonalData:
        identity = PersonalData(
            name=child.name, birth_date=child.birth_date, national_id=child.national_id
        )
        return await kernel.seal(identity, str(child.child_id))

    @post("/cases", summary="Raise a concern: the case begins at level 0")
    async def raise_concern(
        data: JSONBody[RaiseConcernBody], request: Request[Actor, Any, Any]
    ) -> Answer:
        context = kernel.context(request.user)
        if (data.child_id is None) == (data.national_id is None):
            raise _invalid(
                "name the child by exactly one of child_id and national_id",
                "child_id",
                "national_id",
            )
        # Who may raise it is asked before the register, so a stranger learns nothing of it.
        unit_raising_concern(context.actor, context.directory)
        child = await registered_child(data)
        # Nothing is left to refuse it: only now may a child's key be made.
        identity = await sealed(child)
        case_id = uuid4()
        # The case follows the action guides in force now, whatever is published later.
        in_force = (await call(cases.guide_book)).in_force()
        command = RaiseConcern(
            case_id=case_id,
            child_id=child.child_id,
            concern=data.concern,
            personal_data=identity,
            guides=in_force,
        )
        command = await kernel.seal_texts(command, str(child.child_id), context=str(case_id))
        decision = await call(cases.commands.handle, case_id, command, context)
        return Answer(id=case_id, version=decision.version)

    @get(
        "/cases/{case_id:uuid}",
        summary="The case, as the caller may see it",
        responses=refusals(403),
    )
    async def read_case(
        case_id: FromPath[UUID], request: Request[Actor, Any, Any], purpose: Purpose = None
    ) -> CaseView:
        history = await call(case_history, cases, case_id)  # read once: for the gate and the view
        admitted = await reads.admit(request.user, case_id, "case", purpose, case=fold(history))
        # The one rule of what a reader knows of the case (the projection's too): the entries
        # they may see, and at a handover the case as it stands.
        shown = case_shown(admitted.access, case_id, history)
        # Free text is opened for the answer only: the text, or `erased` for each once the
        # child's key is gone.
        book = await call(cases.guide_book)
        view = CaseView(
            case=await kernel.open_texts(msgspec.structs.replace(shown, personal_data=None)),
            guide=where_in_guide(
                admitted.access, case_id, history, kernel.directory.current(), book
            ),
        )
        identity = admitted.case.personal_data
        if not admitted.access.identity or identity is None:
            return view
        opened = await kernel.unseal(identity)
        if isinstance(opened, Erased):
            return msgspec.structs.replace(view, erased=opened)
        return msgspec.structs.replace(view, personal_data=opened)

    return http_app(
        service="case",
        kernel=kernel,
        route_handlers=[
            raise_concern,
            read_case,
            *map(command_route(cases, kernel), ROUTED_COMMANDS),
            erase_route(children, kernel),
            *guide_routes(cases, kernel),
        ],
        readiness=readiness or Readiness(),
        description=__doc__ or "",
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )


def _invalid(message: str, *fields: str) -> ValidationException:
    """422 naming the body's `fields`, as Litestar names a field it cannot read."""
    extra = [{"key": field, "message": message, "source": "body"} for field in fields]
    return ValidationException(detail=message, extra=extra)


def command_route(cases: Cases, kernel: Kernel) -> Callable[[type[Command]], HTTPRouteHandler]:
    """One POST route per command type, each with its own body schema."""

    async def sealed_command(command: Command, case_id: UUID) -> Command:
        """The command with its free text about the child sealed under the child's key, before
        any rule sees it (a retry seals to the same value, so it is found already satisfied).
        A case that does not exist has no child: the command path answers 404."""
        case = (await call(cases.commands.load, case_id)).state
        if case is None:
            return command
        return await kernel.seal_texts(command, str(case.child_id), context=str(case_id))

    def route(command_type: type[Command]) -> HTTPRouteHandler:
        async def handle(
            case_id: FromPath[UUID], data: Command, request: Request[Actor, Any, Any]
        ) -> Answer:
            context = kernel.context(request.user)
            path = cases.commands
            data = await sealed_command(data, case_id)
            decision = await call(path.handle, case_id, data, context, data.expected_version)
            return Answer(id=case_id, version=decision.version)

        # The body is this route's own command, so the OpenAPI document shows every schema.
        body = JSONBody[command_type]  # type: ignore[valid-type]  # a type made at run time, one per command
        handle.__annotations__ = {**handle.__annotations__, "data": body}
        path = kebab(command_type.__name__)
        return post(
            f"/cases/{{case_id:uuid}}/{path}",
            operation_id=path,
            summary=ROUTED_COMMANDS[command_type],
            description=inspect.cleandoc(doc) if (doc := vars(command_type)["__doc__"]) else None,
            name=path,
        )(handle)

    return route
