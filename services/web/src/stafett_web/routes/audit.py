"""The auditor's pages: find a case (stating why, before anything is read), and every override
(a legal basis or a report to child welfare) across cases."""

from __future__ import annotations

from uuid import UUID

from litestar import get, post
from litestar.response import Redirect, Template

from stafett_web.apis import Invalid
from stafett_web.models import Override
from stafett_web.web import AnyRequest, form_data, page, signed_in, translator, web

OVERRIDES = "overrides"  # the session's key of the purpose stated for the overrides


@get("/audit")
async def audit(request: AnyRequest) -> Template:
    signed_in(request)
    return page(request, "audit.html", "title.audit", values={}, problems={})


@post("/audit/find")
async def find(request: AnyRequest) -> Template | Redirect:
    """A case by its reference, with the purpose of reading it."""
    signed_in(request)
    data = await form_data(request)
    reference = (data.get("case_id") or [""])[0].strip()
    stated = (data.get("purpose") or [""])[0].strip()
    try:
        case_id = UUID(reference)
    except ValueError:
        t = translator(request)
        return page(
            request,
            "audit.html",
            "title.audit",
            status=422,
            values={"case_id": reference, "purpose": stated},
            problems={"case_id": t("problem.case_reference")},
        )
    purposes = dict(request.session.get("purposes") or {})
    purposes[str(case_id)] = stated
    request.session["purposes"] = purposes
    return Redirect(f"/cases/{case_id}")


@get("/audit/overrides")
async def overrides(request: AnyRequest) -> Template:
    person = signed_in(request)
    stated = request.session.get(OVERRIDES)
    if not isinstance(stated, str):
        return page(
            request, "overrides.html", "title.overrides", listed=None, stated="", problem=None
        )
    try:
        listed = await web(request).services.read(
            "projection",
            "/overrides",
            person.access_token,
            list[Override],
            params={"purpose": stated},
        )
    except Invalid as invalid:  # the projection's own word on the purpose
        return page(
            request,
            "overrides.html",
            "title.overrides",
            status=422,
            listed=None,
            stated=stated,
            problem=invalid.detail,
        )
    return page(
        request, "overrides.html", "title.overrides", listed=listed, stated=stated, problem=None
    )


@post("/audit/overrides")
async def state_overrides_purpose(request: AnyRequest) -> Redirect:
    signed_in(request)
    request.session[OVERRIDES] = ((await form_data(request)).get("purpose") or [""])[0].strip()
    return Redirect("/audit/overrides")


ROUTES = [audit, find, overrides, state_overrides_purpose]
