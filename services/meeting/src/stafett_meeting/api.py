"""The meeting service's HTTP API: parse, build the Context, call the application, answer.

| method and path | what |
|---|---|
| POST /meetings | schedule a meeting of a case (the case must be known to the meeting service: 404 until then) |
| POST /meetings/{meeting_id}/<command> | invite, reschedule, cancel, record-held, record-minutes, record-decision, assign-action-item, complete-action-item, give-feedback |
| GET /meetings/{meeting_id} | the meeting, to those taking part in the case and its invitees |
| GET /cases/{case_id}/meetings | the case's meetings the caller may see |
| GET /cases/{case_id}/roster | what the meeting service knows of the case: services, deciders, consents |

Every POST answers `{"id", "version"}`; refusals are mapped by `stafett_runtime.service`
(a person from a service the case's consent does not cover: 403).
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID, uuid4

import msgspec
from litestar import Litestar, Request, get, post
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, JSONBody
from litestar.types import LifespanHook

from stafett_contracts.identity import Actor
from stafett_meeting.application import Meetings
from stafett_meeting.domain import Meeting, Roster
from stafett_meeting.domain.commands import ROUTES, Command, ScheduleMeeting
from stafett_runtime.auth import TokenVerifier
from stafett_runtime.domain import Context, NotAllowed
from stafett_runtime.health import Readiness
from stafett_runtime.logging import current_correlation_id
from stafett_runtime.service import call, http_app


class Answer(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    version: int


def context_of(request: Request[Actor, Any, Any]) -> Context:
    return Context(
        actor=request.user,
        now=datetime.now(UTC),
        correlation_id=current_correlation_id() or uuid4().hex,
    )


def sees_the_case(roster: Roster, actor: Actor) -> bool:
    return roster.takes_part(actor) or roster.is_decider(actor)


def sees(meeting: Meeting, roster: Roster, actor: Actor) -> bool:
    """Those taking part in the case, the meeting's leader, and its invitees."""
    return (
        sees_the_case(roster, actor)
        or meeting.led_by(actor)
        or meeting.invitee(actor.person) is not None
    )


def create_app(
    meetings: Meetings,
    verifier: TokenVerifier,
    readiness: Readiness | None = None,
    on_startup: Sequence[LifespanHook] = (),
    on_shutdown: Sequence[LifespanHook] = (),
) -> Litestar:
    """The HTTP app in front of `meetings`; main.py wires it, tests give it their own parts."""

    @post("/meetings", summary="Schedule a meeting of a case")
    async def schedule(
        data: JSONBody[ScheduleMeeting], request: Request[Actor, Any, Any]
    ) -> Answer:
        meeting_id = uuid4()
        version = await call(meetings.schedule, meeting_id, data, context_of(request))
        return Answer(id=meeting_id, version=version)

    @get("/meetings/{meeting_id:uuid}", summary="The meeting")
    async def read_meeting(
        meeting_id: FromPath[UUID], request: Request[Actor, Any, Any]
    ) -> Meeting:
        meeting = await call(meetings.get, meeting_id)
        roster = await call(meetings.roster, meeting.case_id)
        if not sees(meeting, roster, request.user):
            raise NotAllowed("only those taking part in the case or the meeting may read it")
        return meeting

    @get("/cases/{case_id:uuid}/meetings", summary="The case's meetings the caller may see")
    async def case_meetings(
        case_id: FromPath[UUID], request: Request[Actor, Any, Any]
    ) -> list[Meeting]:
        roster = await call(meetings.roster, case_id)
        found = await call(meetings.meetings_of, case_id)
        return [m for m in found if sees(m, roster, request.user)]

    @get("/cases/{case_id:uuid}/roster", summary="What the meeting service knows of the case")
    async def case_roster(case_id: FromPath[UUID], request: Request[Actor, Any, Any]) -> Roster:
        roster = await call(meetings.roster, case_id)
        if not sees_the_case(roster, request.user):
            raise NotAllowed("only those taking part in the case may read its roster")
        return roster

    return http_app(
        service="meeting",
        route_handlers=[
            schedule,
            read_meeting,
            case_meetings,
            case_roster,
            *(command_route(meetings, path, t) for path, t in ROUTES.items()),
        ],
        readiness=readiness or Readiness(),
        verifier=verifier,
        description=__doc__ or "",
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )


def command_route(meetings: Meetings, path: str, command_type: type[Command]) -> HTTPRouteHandler:
    """One POST route per command type, each with its own body schema."""

    async def handle(
        meeting_id: FromPath[UUID], data: Command, request: Request[Actor, Any, Any]
    ) -> Answer:
        context = context_of(request)
        version = await call(meetings.handle, meeting_id, data, context, data.expected_version)
        return Answer(id=meeting_id, version=version)

    # The body is this route's own command, so the OpenAPI document shows every schema.
    body = JSONBody[command_type]  # type: ignore[valid-type]  # a type made at run time, one per command
    handle.__annotations__ = {**handle.__annotations__, "data": body}
    return post(
        f"/meetings/{{meeting_id:uuid}}/{path}",
        operation_id=path,
        summary=(command_type.__doc__ or command_type.__name__).splitlines()[0],
        name=path,
    )(handle)
