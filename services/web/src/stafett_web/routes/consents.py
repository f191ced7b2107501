"""Giving, changing and withdrawing consent, each in two steps: the form, then what it means in
plain words, confirmed.

The consent service decides who may (docs/access.md: a guardian in their own name for their
child, the child from the age threshold, an employee taking part recording a guardian's consent
with evidence). The page only fills in what it knows for certain: a guardian or child giving
consent in person is the signed-in person, the consent begins now, and its evidence is the very
text they confirmed (its reference and SHA-256: docs/web.md). Nothing is stored here.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID

from litestar import get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from stafett_web.apis import Conflict, Invalid, Refused
from stafett_web.forms import (
    CHANGE_SCOPE,
    GIVE_CONSENT,
    RECORD_CONSENT,
    WITHDRAW_CONSENT,
    Form,
    FormData,
    Problems,
    body,
    problems,
    typed,
)
from stafett_web.i18n import Translator
from stafett_web.models import Consent
from stafett_web.routes.common import purpose_of
from stafett_web.signin import SignedIn
from stafett_web.web import AnyRequest, Web, flash, form_data, page, signed_in, translator, web

IN_PERSON = ("guardian", "child")
EVIDENCE_REF = "stafett-web:consent-confirmation:v1"


def _give_form(person: SignedIn) -> Form:
    return GIVE_CONSENT if person.role in IN_PERSON else RECORD_CONSENT


def _show(
    request: AnyRequest,
    form: Form,
    step: str,
    *,
    case_id: UUID,
    values: dict[str, Any],
    found: Problems | None = None,
    status: int = 200,
    **context: Any,
) -> Template:
    return page(
        request,
        "consent.html",
        f"command.{form.name}",
        status=status,
        form=form,
        step=step,
        case_id=case_id,
        values=values,
        problems=found or Problems(),
        units=web(request).units(),
        **context,
    )


def _summary(
    t: Translator, w: Web, form: Form, values: dict[str, Any], person: SignedIn, case_id: UUID
) -> list[str]:
    """What the consent means, in plain words: shown before it is confirmed, and for a guardian
    or the child the text their confirmation is evidence of (made from the consent's own
    fields alone, so it can be made again to check the evidence's hash)."""
    services = ", ".join(w.unit_name(s) for s in values.get("services") or []) or "-"
    purposes = (
        ", ".join(t(f"purpose.{p}") for p in values.get("purposes") or [] if t.has(f"purpose.{p}"))
        or "-"
    )
    until = _day(values.get("valid_until"), t)
    if form is WITHDRAW_CONSENT:
        if values.get("whole") == "all":
            return [t("consent.review.withdraw_all"), t("consent.review.withdraw_after")]
        return [
            t("consent.review.withdraw_some", services=services),
            t("consent.review.withdraw_after"),
        ]
    lines = [
        t("consent.review.services", services=services),
        t("consent.review.purposes", purposes=purposes),
        t("consent.review.until", until=until) if until else t("consent.review.default_until"),
    ]
    if form is RECORD_CONSENT:
        lines.insert(0, t("consent.review.party", person=values.get("given_by.person") or "-"))
    else:
        lines.insert(0, t("consent.review.in_person", person=person.person))
    return [
        t("consent.review.case", case_id=case_id),
        *lines,
        t("consent.review.withdraw_any_time"),
    ]


def _day(typed: Any, t: Translator) -> str:
    """A typed last day as the reader reads it; as typed if it is no date (the service says)."""
    if not isinstance(typed, str) or not typed:
        return ""
    try:
        return t.day(date.fromisoformat(typed))
    except ValueError:
        return typed


@get("/cases/{case_id:uuid}/consents/new")
async def give_form(request: AnyRequest, case_id: FromPath[UUID]) -> Template:
    person = signed_in(request)
    return _show(request, _give_form(person), "edit", case_id=case_id, values={})


@post("/cases/{case_id:uuid}/consents/new")
async def give(request: AnyRequest, case_id: FromPath[UUID]) -> Template | Redirect:
    person = signed_in(request)
    form = _give_form(person)
    data = await form_data(request)
    values = typed(form, data)
    step = (data.get("step") or ["review"])[0]
    t, w = translator(request), web(request)
    summary = _summary(t, w, form, values, person, case_id)
    if step == "review":
        return _show(request, form, "review", case_id=case_id, values=values, summary=summary)
    if step != "confirm":
        return _show(request, form, "edit", case_id=case_id, values=values)
    command = body(form, data, w.zone)
    command.update(case_id=str(case_id), valid_from=datetime.now(UTC).isoformat())
    if person.role in IN_PERSON:
        command["given_by"] = {"kind": person.role, "person": person.person}
        text = "\n".join(summary)
        command["evidence"] = {
            "form": "written",
            "document_ref": f"{EVIDENCE_REF}:{t.language}",
            "document_sha256": hashlib.sha256(text.encode()).hexdigest(),
        }
    elif command.get("evidence", {}).get("form") == "oral":
        command["evidence"]["recorded_by"] = person.person  # the employee who heard it
    return await _send(request, form, data, case_id, "/consents", command)


async def _consent(request: AnyRequest, case_id: UUID, consent_id: UUID) -> Consent:
    person = signed_in(request)
    return await web(request).services.read(
        "consent",
        f"/consents/{consent_id}",
        person.access_token,
        Consent,
        params={"purpose": purpose_of(request, case_id)},
    )


@get("/cases/{case_id:uuid}/consents/{consent_id:uuid}/withdraw")
async def withdraw_form(
    request: AnyRequest, case_id: FromPath[UUID], consent_id: FromPath[UUID]
) -> Template:
    consent = await _consent(request, case_id, consent_id)
    values = {"whole": "all", "services": []}
    return _show(request, WITHDRAW_CONSENT, "edit", case_id=case_id, values=values, consent=consent)


@get("/cases/{case_id:uuid}/consents/{consent_id:uuid}/scope")
async def scope_form(
    request: AnyRequest, case_id: FromPath[UUID], consent_id: FromPath[UUID]
) -> Template:
    consent = await _consent(request, case_id, consent_id)
    zone = web(request).zone
    values = {
        "services": list(consent.scope.services),
        "purposes": list(consent.scope.purposes),
        "valid_until": consent.scope.valid_until.astimezone(zone).date().isoformat(),
    }
    return _show(request, CHANGE_SCOPE, "edit", case_id=case_id, values=values, consent=consent)


@post("/cases/{case_id:uuid}/consents/{consent_id:uuid}/withdraw")
async def withdraw(
    request: AnyRequest, case_id: FromPath[UUID], consent_id: FromPath[UUID]
) -> Template | Redirect:
    return await _change(request, case_id, consent_id, WITHDRAW_CONSENT, "withdraw")


@post("/cases/{case_id:uuid}/consents/{consent_id:uuid}/scope")
async def change_scope(
    request: AnyRequest, case_id: FromPath[UUID], consent_id: FromPath[UUID]
) -> Template | Redirect:
    return await _change(request, case_id, consent_id, CHANGE_SCOPE, "scope")


async def _change(
    request: AnyRequest, case_id: UUID, consent_id: UUID, form: Form, change: str
) -> Template | Redirect:
    person = signed_in(request)
    data = await form_data(request)
    values = typed(form, data)
    step = (data.get("step") or ["review"])[0]
    consent = await _consent(request, case_id, consent_id)
    if form is WITHDRAW_CONSENT and values["whole"] == "some" and not values["services"]:
        # Naming no service withdraws the whole consent: never what "some" means.
        found = Problems(fields={"services": translator(request)("problem.choose_one")})
        return _show(
            request,
            form,
            "edit",
            case_id=case_id,
            values=values,
            found=found,
            status=422,
            consent=consent,
        )
    summary = _summary(translator(request), web(request), form, values, person, case_id)
    if step == "review":
        return _show(
            request,
            form,
            "review",
            case_id=case_id,
            values=values,
            summary=summary,
            consent=consent,
        )
    if step != "confirm":
        return _show(request, form, "edit", case_id=case_id, values=values, consent=consent)
    command = body(form, data, web(request).zone)
    if form is WITHDRAW_CONSENT:
        whole = command.pop("whole", "all") == "all"
        command["services"] = [] if whole else command.get("services", [])
    path = f"/consents/{consent_id}/{change}"
    return await _send(request, form, data, case_id, path, command, consent=consent)


async def _send(
    request: AnyRequest,
    form: Form,
    data: FormData,
    case_id: UUID,
    path: str,
    command: dict[str, Any],
    **context: Any,
) -> Template | Redirect:
    person = signed_in(request)
    try:
        await web(request).services.command("consent", path, person.access_token, command)
    except (Invalid, Conflict, Refused) as refused:
        found = problems(refused.detail, refused.extra, [f.name for f in form.fields])
        return _show(
            request,
            form,
            "edit",
            case_id=case_id,
            values=typed(form, data),
            found=found,
            status=refused.status,
            **context,
        )
    flash(request, f"flash.{form.name}")
    return Redirect(f"/cases/{case_id}")


ROUTES = [give_form, give, withdraw_form, scope_form, withdraw, change_scope]
