"""A case: its page (the notifications' links land here), its access log, its commands, and
the auditor's downloads.

Every read goes to the service that owns it, as the signed-in person: the projection's relay
log first (the one access rule decides, and a refusal is the 403 page), then the case's consents
and meetings. An auditor states a purpose before anything is read, and it goes with every read
of the case.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from litestar import get, post
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Response, Template

from stafett_contracts.guides import Form as GuideForm
from stafett_contracts.guides import Guide, GuideProgress
from stafett_web import guideforms, relaylog
from stafett_web.apis import Invalid, NotFound, Refused, Unavailable
from stafett_web.forms import CASE_FORMS, Form, Problems, initial, local_moment
from stafett_web.models import ConsentStatus, Meeting, Reading, RelayLog
from stafett_web.routes.common import (
    BadField,
    purpose_of,
    render_form,
    state_purpose,
    submit,
)
from stafett_web.web import AnyRequest, form_data, page, signed_in, translator, web


@get("/cases/{case_id:uuid}")
async def case_page(
    request: AnyRequest,
    case_id: FromPath[UUID],
    as_of: FromQuery[str | None] = None,
    seen: FromQuery[int | None] = None,
) -> Template:
    person = signed_in(request)
    purpose = purpose_of(request, case_id)
    if person.role == "auditor" and purpose is None:
        return state_purpose(request, case_id)
    w, t = web(request), translator(request)
    moment = _moment(as_of, w.zone) if as_of else None
    token = person.access_token
    try:
        log = await w.services.read(
            "projection",
            f"/cases/{case_id}/relay-log",
            token,
            RelayLog,
            params={
                "purpose": purpose,
                "as_of": moment.isoformat() if moment else None,
                "min_version": seen if seen and seen > 0 else None,
            },
        )
    except Invalid as invalid:
        if person.role == "auditor":  # the projection's own word on the stated purpose
            return state_purpose(request, case_id, invalid.detail)
        raise
    consents, meetings = ConsentStatus(), list[Meeting]()
    if moment is None:  # consents and meetings are as they are now: not shown in time travel
        consents, meetings = await asyncio.gather(
            w.services.read(
                "projection",
                f"/cases/{case_id}/consent-status",
                token,
                ConsentStatus,
                params={"purpose": purpose},
            ),
            _meetings(request, case_id, purpose),
        )
    now = datetime.now(UTC)
    tools = await _guide_forms(request, log.guide)
    # The step's own forms, for those who do the work, on the case as it is now.
    step_forms = guideforms.step_forms(log.guide, tools) if _works(person.role, moment) else []
    return page(
        request,
        "case.html",
        "title.case",
        case_id=case_id,
        log=log,
        tools=tools,
        step_forms=step_forms,
        step_values={f.key: initial(f.command) for f in _drawn(step_forms)},
        units=w.units(),
        no_problems=Problems(),
        lines=list(reversed(relaylog.lines(log.entries, t, w.unit_name))),
        level=relaylog.level_name(log.state.level, t),
        consents=consents,
        upcoming=[m for m in meetings if m.upcoming(now)],
        consents_live_of_mine=[
            c for c in consents.consents if c.live and c.given_by.person == person.person
        ],
        past=[m for m in meetings if not m.upcoming(now)],
        as_of=moment,
        as_of_input=t.local_input(moment) if moment else "",
        forms=CASE_FORMS,
        purpose=purpose,
    )


def _works(role: str, moment: datetime | None) -> bool:
    return role in ("employee", "unit_leader") and moment is None


def _drawn(forms: list[guideforms.DrawnForm | Form]) -> list[guideforms.DrawnForm]:
    return [form for form in forms if isinstance(form, guideforms.DrawnForm)]


async def _guide_forms(request: AnyRequest, shown: GuideProgress | None) -> dict[str, GuideForm]:
    """The forms of the guide the case follows, by id, as the case service has that version
    (`GET /guides/{service}/{version}`): the page names a step's tools by their titles, and
    draws the step's form from its template. Empty when the case follows no guide, or the guide
    cannot be read: the ids stand in for them, and the commands' own forms for theirs."""
    if shown is None:
        return {}
    return await _templates(request, shown.service, shown.version)


async def _templates(request: AnyRequest, service: str, version: int) -> dict[str, GuideForm]:
    person = signed_in(request)
    path = f"/guides/{service}/{version}"
    try:
        guide = await web(request).services.read("case", path, person.access_token, Guide)
    except (NotFound, Invalid, Refused, Unavailable):
        return {}
    return {form.id: form for form in guide.forms}


async def _meetings(request: AnyRequest, case_id: UUID, purpose: str | None) -> list[Meeting]:
    person = signed_in(request)
    try:
        found = await web(request).services.read(
            "meeting",
            f"/cases/{case_id}/meetings",
            person.access_token,
            list[Meeting],
            params={"purpose": purpose},
        )
    except NotFound:  # the meeting service has not learned of the case yet
        return []
    return sorted(found, key=lambda m: m.starts_at)


def _moment(text: str, zone: Any) -> datetime:
    try:
        moment = datetime.fromisoformat(local_moment(text, zone))
    except ValueError:
        raise BadField("as_of") from None
    return moment


@get("/cases/{case_id:uuid}/access-log")
async def access_log(request: AnyRequest, case_id: FromPath[UUID]) -> Template:
    person = signed_in(request)
    purpose = purpose_of(request, case_id)
    if person.role == "auditor" and purpose is None:
        return state_purpose(request, case_id)
    readings = await web(request).services.read(
        "projection",
        f"/cases/{case_id}/access-log",
        person.access_token,
        list[Reading],
        params={"purpose": purpose},
    )
    return page(
        request,
        "access_log.html",
        "title.access_log",
        case_id=case_id,
        readings=list(reversed(readings)),
    )


@get("/cases/{case_id:uuid}/act/{command:str}")
async def command_form(
    request: AnyRequest, case_id: FromPath[UUID], command: FromPath[str]
) -> Template:
    signed_in(request)
    form = _case_form(command)
    given = {k: v for k, v in request.query_params.items() if isinstance(v, str)}
    return render_form(request, form, case_id=case_id, values=initial(form, given))


@post("/cases/{case_id:uuid}/act/{command:str}")
async def command(
    request: AnyRequest, case_id: FromPath[UUID], command: FromPath[str]
) -> Template | Redirect:
    person = signed_in(request)
    form = _case_form(command)
    services = web(request).services

    async def send(body: dict[str, Any]) -> Any:
        return await services.command(
            "case", f"/cases/{case_id}/{form.name}", person.access_token, body
        )

    data = await form_data(request)
    return await submit(
        request,
        form,
        data,
        send,
        done=lambda saved: f"/cases/{case_id}?seen={saved.version}",
        case_id=case_id,
        drawn=await _drawn_again(request, form, data),
    )


async def _drawn_again(
    request: AnyRequest, form: Form, data: Mapping[str, list[str]]
) -> guideforms.DrawnForm | None:
    """The guide's form a command was sent from (`_guide`, from the case page), to show it
    again as it was if the service refuses it; None for the command's own form, or if the
    guide no longer draws it for this command."""
    key = (data.get("_guide") or [""])[0]
    guide = guideforms.guide_of(key)
    if guide is None:
        return None
    drawn = guideforms.drawn_again(key, await _templates(request, *guide))
    return drawn if drawn is not None and drawn.command == form else None


def _case_form(command: str) -> Form:
    form = CASE_FORMS.get(command)
    if form is None:
        raise NotFoundException()
    return form


@post("/cases/{case_id:uuid}/purpose")
async def purpose(request: AnyRequest, case_id: FromPath[UUID]) -> Redirect:
    """An auditor's stated purpose, kept for every read of this case in this session."""
    signed_in(request)
    stated = ((await form_data(request)).get("purpose") or [""])[0].strip()
    purposes = dict(request.session.get("purposes") or {})
    purposes[str(case_id)] = stated
    request.session["purposes"] = purposes
    return Redirect(f"/cases/{case_id}")


@get("/cases/{case_id:uuid}/export.jsonl")
async def export(request: AnyRequest, case_id: FromPath[UUID]) -> Response[bytes] | Template:
    return await _download(request, case_id, "export.jsonl", "application/x-ndjson", "jsonl")


@get("/cases/{case_id:uuid}/archive.md")
async def archive(request: AnyRequest, case_id: FromPath[UUID]) -> Response[bytes] | Template:
    return await _download(request, case_id, "archive", "text/markdown; charset=utf-8", "md")


async def _download(
    request: AnyRequest, case_id: UUID, what: str, media_type: str, suffix: str
) -> Response[bytes] | Template:
    person = signed_in(request)
    purpose = purpose_of(request, case_id)
    if person.role == "auditor" and purpose is None:
        return state_purpose(request, case_id)
    content = await web(request).services.download(
        "projection", f"/cases/{case_id}/{what}", person.access_token, params={"purpose": purpose}
    )
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'attachment; filename="case-{case_id}.{suffix}"'},
    )


ROUTES = [case_page, access_log, command_form, command, purpose, export, archive]
