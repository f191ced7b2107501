"""Erasing a child, for an administrator: the form, then what it means in plain words, confirmed.

The case service decides (`POST /children/{child_id}/erase`, docs/openapi/case.json): who may
erase (an administrator: anyone else is refused, 403, with the rule's message above the form),
whether a case names the child (404, next to the child's id), and whether the reason and the
reference are its fixed words (422, next to the field). The page only checks that the child's
id is an id, to put it in the address. Nothing is stored here.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import msgspec
from litestar import get, post
from litestar.response import Redirect, Template

from stafett_web.apis import Conflict, Invalid, NotFound, Refused
from stafett_web.forms import ERASE_CHILD, Problems, body, problems, typed
from stafett_web.i18n import Translator
from stafett_web.web import AnyRequest, flash, form_data, page, signed_in, translator, web

ERASE = "/children/erase"


class Erasure(msgspec.Struct, frozen=True, kw_only=True):
    """The case service's answer: the child, and whether it was erased already."""

    child_id: UUID
    already_erased: bool


def _show(
    request: AnyRequest,
    step: str,
    values: dict[str, Any],
    found: Problems | None = None,
    status: int = 200,
) -> Template:
    t = translator(request)
    return page(
        request,
        "erase.html",
        "command.erase-child",
        status=status,
        form=ERASE_CHILD,
        step=step,
        values=values,
        problems=found or Problems(),
        summary=_summary(t, values) if step == "review" else [],
        units=[],
    )


def _summary(t: Translator, values: dict[str, Any]) -> list[str]:
    """What confirming means, in words: the child, the reason, the reference, for good."""
    reason = values.get("reason") or ""
    key = f"erasure_reason.{reason}"
    said = [
        t("erase.review.child", child_id=values.get("child_id") or ""),
        t("erase.review.reason", reason=t(key) if t.has(key) else reason),
    ]
    if values.get("reference"):
        said.append(t("erase.review.reference", reference=values["reference"]))
    return [*said, t("erase.review.after")]


@get(ERASE)
async def erase_form(request: AnyRequest) -> Template:
    signed_in(request)
    return _show(request, "edit", values={})


@post(ERASE)
async def erase(request: AnyRequest) -> Template | Redirect:
    person = signed_in(request)
    data = await form_data(request)
    values = typed(ERASE_CHILD, data)
    step = (data.get("step") or ["review"])[0]
    try:
        child_id = UUID(values["child_id"].strip())
    except ValueError:
        t = translator(request)
        found = Problems(fields={"child_id": t("problem.child_reference")})
        return _show(request, "edit", values, found, status=422)
    if step == "review":
        return _show(request, "review", values)
    if step != "confirm":
        return _show(request, "edit", values)
    command = body(ERASE_CHILD, data, web(request).zone)
    command.pop("child_id", None)  # in the address
    path = f"/children/{child_id}/erase"
    try:
        erased = await web(request).services.post(
            "case", path, person.access_token, command, Erasure
        )
    except (Invalid, Conflict, Refused, NotFound) as refused:
        found = problems(refused.detail, refused.extra, [f.name for f in ERASE_CHILD.fields])
        if isinstance(refused, NotFound):  # no case names the child: said next to its id
            found = Problems(fields={"child_id": refused.detail})
        return _show(request, "edit", values, found, status=refused.status)
    flash(request, "flash.child_already_erased" if erased.already_erased else "flash.child_erased")
    return Redirect(ERASE)


ROUTES = [erase_form, erase]
