"""What the pages share: a form sent to a service and shown again with its answer, and the
auditor's stated purpose."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any
from uuid import UUID

from litestar.response import Redirect, Template

from stafett_web.apis import Conflict, Invalid, Refused
from stafett_web.forms import Form, FormData, Problems, body, problems, typed
from stafett_web.models import Saved
from stafett_web.web import AnyRequest, flash, page, web


class BadField(Exception):  # noqa: N818 (an outcome, named as the page tells it)
    """A value in the address that is not what the page takes (a date that is no date)."""

    def __init__(self, field: str) -> None:
        super().__init__(field)
        self.field = field


def purpose_of(request: AnyRequest, case_id: UUID) -> str | None:
    """The purpose the auditor stated for this case in this session, if any."""
    purposes = request.session.get("purposes") if request.scope.get("session") else None
    stated = purposes.get(str(case_id)) if isinstance(purposes, dict) else None
    return stated if isinstance(stated, str) else None


def state_purpose(request: AnyRequest, case_id: UUID, problem: str | None = None) -> Template:
    """The page that asks an auditor why they read, before anything of the case is read."""
    return page(
        request,
        "purpose.html",
        "title.purpose",
        status=422 if problem else 200,
        case_id=case_id,
        problem=problem,
        stated=purpose_of(request, case_id) or "",
    )


def render_form(
    request: AnyRequest,
    form: Form,
    *,
    values: Mapping[str, Any],
    found: Problems | None = None,
    status: int = 200,
    **context: Any,
) -> Template:
    return page(
        request,
        "command.html",
        f"command.{form.name}",
        status=status,
        form=form,
        values=values,
        problems=found or Problems(),
        units=web(request).units(),
        **context,
    )


async def submit(
    request: AnyRequest,
    form: Form,
    data: FormData,
    send: Callable[[dict[str, Any]], Awaitable[Saved]],
    *,
    done: Callable[[Saved], str],
    **context: Any,
) -> Template | Redirect:
    """Sends the form to its service; on a refusal, the form again with what was typed and
    what the service said, each message next to its field."""
    try:
        saved = await send(body(form, data, web(request).zone))
    except (Invalid, Conflict, Refused) as refused:
        found = problems(refused.detail, refused.extra, [f.name for f in form.fields])
        return render_form(
            request,
            form,
            values=typed(form, data),
            found=found,
            status=refused.status,
            **context,
        )
    flash(request, "flash.saved")
    return Redirect(done(saved))
