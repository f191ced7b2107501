"""Meetings of a case: the meeting's page (a notification's link lands here), its calendar
file, scheduling, and every command of the meeting service, feedback included."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from litestar import get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath
from litestar.response import Redirect, Response, Template

from stafett_web import ics
from stafett_web.forms import MEETING_FORMS, SCHEDULE_MEETING, Form, initial
from stafett_web.models import Meeting
from stafett_web.routes.common import purpose_of, render_form, state_purpose, submit
from stafett_web.web import AnyRequest, form_data, page, signed_in, translator, web


async def _meeting(request: AnyRequest, case_id: UUID, meeting_id: UUID) -> Meeting:
    person = signed_in(request)
    meeting = await web(request).services.read(
        "meeting",
        f"/meetings/{meeting_id}",
        person.access_token,
        Meeting,
        params={"purpose": purpose_of(request, case_id)},
    )
    if meeting.case_id != case_id:
        raise NotFoundException()
    return meeting


@get("/cases/{case_id:uuid}/meetings/{meeting_id:uuid}")
async def meeting_page(
    request: AnyRequest, case_id: FromPath[UUID], meeting_id: FromPath[UUID]
) -> Template:
    person = signed_in(request)
    if person.role == "auditor" and purpose_of(request, case_id) is None:
        return state_purpose(request, case_id)
    meeting = await _meeting(request, case_id, meeting_id)
    invited = any(i.person == person.person for i in meeting.invited)
    return page(
        request,
        "meeting.html",
        "title.meeting",
        case_id=case_id,
        meeting=meeting,
        upcoming=meeting.upcoming(datetime.now(UTC)),
        may_give_feedback=(
            person.role in ("guardian", "child")
            and invited
            and meeting.held_at is not None
            and person.person not in meeting.feedback_from
        ),
        forms=MEETING_FORMS,
    )


@get("/cases/{case_id:uuid}/meetings/{meeting_id:uuid}/calendar.ics")
async def calendar(
    request: AnyRequest, case_id: FromPath[UUID], meeting_id: FromPath[UUID]
) -> Response[bytes] | Template:
    person = signed_in(request)
    if person.role == "auditor" and purpose_of(request, case_id) is None:
        return state_purpose(request, case_id)
    meeting = await _meeting(request, case_id, meeting_id)
    t, w = translator(request), web(request)
    link = f"{w.settings.public_url}/cases/{case_id}/meetings/{meeting_id}"
    summary = t("ics.summary", kind=t(f"meeting.{meeting.meeting_type}"))
    return Response(
        ics.calendar(meeting, summary, link, datetime.now(UTC)),
        media_type="text/calendar; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="meeting-{meeting_id}.ics"'},
    )


@get("/cases/{case_id:uuid}/meetings/new")
async def schedule_form(request: AnyRequest, case_id: FromPath[UUID]) -> Template:
    signed_in(request)
    return render_form(request, SCHEDULE_MEETING, case_id=case_id, values={})


@post("/cases/{case_id:uuid}/meetings/new")
async def schedule(request: AnyRequest, case_id: FromPath[UUID]) -> Template | Redirect:
    person = signed_in(request)
    services = web(request).services

    async def send(body: dict[str, Any]) -> Any:
        return await services.command(
            "meeting", "/meetings", person.access_token, {"case_id": str(case_id), **body}
        )

    return await submit(
        request,
        SCHEDULE_MEETING,
        await form_data(request),
        send,
        done=lambda saved: f"/cases/{case_id}/meetings/{saved.id}",
        case_id=case_id,
    )


@get("/cases/{case_id:uuid}/meetings/{meeting_id:uuid}/act/{command:str}")
async def command_form(
    request: AnyRequest, case_id: FromPath[UUID], meeting_id: FromPath[UUID], command: FromPath[str]
) -> Template:
    signed_in(request)
    form = _meeting_form(command)
    given = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    return render_form(
        request, form, case_id=case_id, meeting_id=meeting_id, values=initial(form, given)
    )


@post("/cases/{case_id:uuid}/meetings/{meeting_id:uuid}/act/{command:str}")
async def command(
    request: AnyRequest, case_id: FromPath[UUID], meeting_id: FromPath[UUID], command: FromPath[str]
) -> Template | Redirect:
    person = signed_in(request)
    form = _meeting_form(command)
    services = web(request).services

    async def send(body: dict[str, Any]) -> Any:
        path = f"/meetings/{meeting_id}/{form.name}"
        return await services.command("meeting", path, person.access_token, body)

    return await submit(
        request,
        form,
        await form_data(request),
        send,
        done=lambda _: f"/cases/{case_id}/meetings/{meeting_id}",
        case_id=case_id,
        meeting_id=meeting_id,
    )


def _meeting_form(command: str) -> Form:
    form = MEETING_FORMS.get(command)
    if form is None:
        raise NotFoundException()
    return form


ROUTES = [meeting_page, calendar, schedule_form, schedule, command_form, command]
