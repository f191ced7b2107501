"""The meeting service's HTTP API: parse, build the Context, call the application, answer.

| method and path | what |
|---|---|
| POST /meetings | schedule a meeting of a case (404 if there is no such case) |
| POST /meetings/{meeting_id}/<command> | invite, reschedule, cancel, record-held, record-minutes, record-decision, assign-action-item, complete-action-item, give-feedback |
| GET /meetings/{meeting_id}?purpose= | the meeting, as the reader may see it |
| GET /cases/{case_id}/meetings?purpose= | the case's meetings, as the reader may see them |
| GET /cases/{case_id}/roster?purpose= | who takes part in the case and under what, as its events tell it now: services, deciders, consents |

Every POST answers `{"id", "version"}`; refusals are mapped by `stafett_runtime.service`
(a person from a service the case's consent does not cover: 403; a body beyond the limits of
`stafett_contracts.inputs`: 422 naming the field; a date outside the case's window: 409
`date-within-window`).

Every GET passes the gate of `stafett_runtime.reads` first: the one access rule decides over the
case's own events (the CASE stream) who may read it, and the read or its refusal is recorded on
the AUDIT stream before anything about the case is said (403 naming the rule; 422 naming
`purpose` for an auditor who states none). A meeting is then shown folded from only the events
the reader may see (`domain.as_seen`): a service's people are not shown what was recorded while
no consent or legal basis covered it, nor a meeting scheduled then (left out of the list; 404 on
its own). A meeting id that does not exist is 404 before any of this: ids are random.
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Annotated, Any, TypeVar
from uuid import UUID, uuid4

import msgspec
from litestar import Litestar, Request, get, post
from litestar.exceptions import NotFoundException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody, Parameter
from litestar.types import LifespanHook

from stafett_contracts.identity import Actor
from stafett_contracts.inputs import ReadPurpose, limits
from stafett_meeting.application import Meetings
from stafett_meeting.domain import Meeting, Roster, as_seen
from stafett_meeting.domain.commands import ROUTES, Command, ScheduleMeeting
from stafett_runtime.health import Readiness
from stafett_runtime.kernel import Kernel
from stafett_runtime.service import call, http_app, refusals

Purpose = Annotated[
    str | None,
    Parameter(
        description="why you read: required of auditors, recorded for everyone; a consent "
        "purpose (cooperation, tvist, referral) counts only consents given for it; at most "
        "500 characters, no control character",
        **limits(ReadPurpose),
    ),
]


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int


def create_app(
    meetings: Meetings,
    kernel: Kernel,
    readiness: Readiness | None = None,
    on_startup: Sequence[LifespanHook] = (),
    on_shutdown: Sequence[LifespanHook] = (),
) -> Litestar:
    """The HTTP app in front of `meetings`; main.py wires it, tests give it their own parts."""
    reads = kernel.reads()

    @post("/meetings", summary="Schedule a meeting of a case", responses=refusals(404))
    async def schedule(
        data: JSONBody[ScheduleMeeting], request: Request[Actor, Any, Any]
    ) -> Answer:
        meeting_id = uuid4()
        context = kernel.context(request.user)
        data = await sealed(kernel, meetings, data, data.case_id)
        version = await call(meetings.schedule, meeting_id, data, context)
        return Answer(id=meeting_id, version=version)

    @get(
        "/meetings/{meeting_id:uuid}",
        summary="The meeting, as you may see it",
        responses=refusals(403),
    )
    async def read_meeting(
        meeting_id: FromPath[UUID], request: Request[Actor, Any, Any], purpose: Purpose = None
    ) -> Meeting:
        history = await call(meetings.events_of, meeting_id)
        admitted = await reads.admit(request.user, history[0].case_id, "meeting", purpose)
        meeting = as_seen(admitted.access, history)
        if meeting is None:
            raise NotFoundException("no meeting you may see")
        return await kernel.open_texts(meeting)

    @get(
        "/cases/{case_id:uuid}/meetings",
        summary="The case's meetings, as you may see them",
        responses=refusals(403),
    )
    async def case_meetings(
        case_id: FromPath[UUID], request: Request[Actor, Any, Any], purpose: Purpose = None
    ) -> list[Meeting]:
        admitted = await reads.admit(request.user, case_id, "meetings", purpose)
        histories = await call(meetings.meetings_of, case_id)
        shown = (as_seen(admitted.access, history) for history in histories)
        return await kernel.open_texts([meeting for meeting in shown if meeting is not None])

    @get(
        "/cases/{case_id:uuid}/roster",
        summary="Who takes part in the case, and under what",
        responses=refusals(403),
    )
    async def case_roster(
        case_id: FromPath[UUID], request: Request[Actor, Any, Any], purpose: Purpose = None
    ) -> Roster:
        await reads.admit(request.user, case_id, "roster", purpose)
        return await call(meetings.roster, case_id)

    return http_app(
        service="meeting",
        route_handlers=[
            schedule,
            read_meeting,
            case_meetings,
            case_roster,
            *(command_route(meetings, kernel, path, t) for path, t in ROUTES.items()),
        ],
        readiness=readiness or Readiness(),
        kernel=kernel,
        description=__doc__ or "",
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )


# What each command's route does, in words: its summary (the command's docstring describes it).
SUMMARIES = {
    "invite": "Invite a guardian, the child, or someone from a covered service",
    "reschedule": "Move the meeting to a new time",
    "cancel": "Cancel the meeting",
    "record-held": "Record that the meeting was held, and who attended",
    "record-minutes": "Record the minutes",
    "record-decision": "Record a decision about the case",
    "assign-action-item": "Give someone a task, due by a date",
    "complete-action-item": "Mark a task done",
    "give-feedback": "Give feedback on the meeting, as a guardian or the child",
}


C = TypeVar("C", bound=Command)


async def sealed(kernel: Kernel, meetings: Meetings, command: C, case_id: UUID) -> C:
    """The command with its free text about the child (minutes, reasons, descriptions, the
    agenda, comments) sealed under the child's key, before any rule sees it; sealed in the
    case's context, a retry seals to the same value and is found already satisfied. 404 if the
    case does not exist."""
    child_id = (await call(meetings.case, case_id)).child_id
    return await kernel.seal_texts(command, str(child_id), context=str(case_id))


def command_route(
    meetings: Meetings, kernel: Kernel, path: str, command_type: type[Command]
) -> HTTPRouteHandler:
    """One POST route per command type, each with its own body schema."""

    async def handle(
        meeting_id: FromPath[UUID], data: Command, request: Request[Actor, Any, Any]
    ) -> Answer:
        context = kernel.context(request.user)
        case_id = (await call(meetings.events_of, meeting_id))[0].case_id  # 404 if no meeting
        data = await sealed(kernel, meetings, data, case_id)
        version = await call(meetings.handle, meeting_id, data, context, data.expected_version)
        return Answer(id=meeting_id, version=version)

    # The body is this route's own command, so the OpenAPI document shows every schema.
    body = JSONBody[command_type]  # type: ignore[valid-type]  # a type made at run time, one per command
    handle.__annotations__ = {**handle.__annotations__, "data": body}
    return post(
        f"/meetings/{{meeting_id:uuid}}/{path}",
        operation_id=path,
        summary=SUMMARIES[path],
        description=inspect.cleandoc(doc) if (doc := vars(command_type)["__doc__"]) else None,
        name=path,
    )(handle)
