"""The day's work: the worklist (for a guardian or the child, their cases), raising a concern,
a leader's unit overview, and the management figures as tables and charts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from litestar import get, post
from litestar.params import FromPath
from litestar.response import Redirect, Template

from stafett_web.charts import Bar, bar_chart
from stafett_web.forms import RAISE_CONCERN
from stafett_web.i18n import Translator
from stafett_web.models import Figures, Overview, WorkItem
from stafett_web.routes.common import render_form, submit
from stafett_web.web import AnyRequest, form_data, page, signed_in, translator, web


@get("/worklist")
async def worklist(request: AnyRequest) -> Template:
    person = signed_in(request)
    items = await web(request).services.read(
        "projection", "/worklist", person.access_token, list[WorkItem]
    )
    today = datetime.now(web(request).zone).date()
    own_cases = person.role in ("guardian", "child")
    return page(
        request,
        "worklist.html",
        "title.my_cases" if own_cases else "title.worklist",
        items=items,
        own_cases=own_cases,
        overdue=[i for i in items if i.is_overdue(today)],
        today=today,
    )


@get("/concerns/new")
async def concern_form(request: AnyRequest) -> Template:
    signed_in(request)
    return render_form(request, RAISE_CONCERN, values={})


@post("/concerns/new")
async def raise_concern(request: AnyRequest) -> Template | Redirect:
    person = signed_in(request)
    services = web(request).services

    async def send(body: dict[str, Any]) -> Any:
        return await services.command("case", "/cases", person.access_token, body)

    return await submit(
        request,
        RAISE_CONCERN,
        await form_data(request),
        send,
        done=lambda saved: f"/cases/{saved.id}?seen={saved.version}",
    )


@get("/units/{unit:str}/overview")
async def overview(request: AnyRequest, unit: FromPath[str]) -> Template:
    person = signed_in(request)
    found = await web(request).services.read(
        "projection", f"/units/{unit}/overview", person.access_token, Overview
    )
    t = translator(request)
    per_level = [
        Bar(label=t("level.short", level=level), value=float(count), shown=str(count))
        for level, count in sorted(found.open_cases_per_level.items())
    ]
    return page(
        request,
        "overview.html",
        "title.overview",
        overview=found,
        unit_name=web(request).unit_name(found.unit),
        chart=bar_chart(
            "per-level", t("overview.per_level"), t("overview.per_level.about"), per_level
        ),
        today=date.today(),
    )


@get("/figures")
async def figures(request: AnyRequest) -> Template:
    person = signed_in(request)
    found = await web(request).services.read("projection", "/figures", person.access_token, Figures)
    t = translator(request)
    return page(
        request,
        "figures.html",
        "title.figures",
        figures=found,
        withheld=t("figures.withheld", n=found.min_group),
        charts=_charts(found, t, web(request).unit_name),
        months=sorted(
            {m for per_unit in found.concerns_per_unit_and_month.values() for m in per_unit}
        ),
    )


def _charts(found: Figures, t: Translator, unit_name: Callable[[str], str]) -> dict[str, str]:
    withheld = t("figures.withheld", n=found.min_group)

    def bar(label: str, value: float | None, shown: str | None = None) -> Bar:
        if value is None:
            return Bar(label=label, value=None, shown=withheld)
        return Bar(label=label, value=value, shown=shown or f"{value:g}")

    concerns = [
        bar(
            unit_name(unit),
            None
            if any(v is None for v in months.values())
            else float(sum(v or 0 for v in months.values())),
        )
        for unit, months in sorted(found.concerns_per_unit_and_month.items())
    ]
    at_level = [
        bar(t("level.short", level=level), days)
        for level, days in sorted(found.days_at_each_level.items())
    ]
    movement = [
        bar(t("figures.escalations"), _number(found.escalations)),
        bar(t("figures.de_escalations"), _number(found.de_escalations)),
    ]
    return {
        "concerns": bar_chart(
            "concerns", t("figures.concerns"), t("figures.concerns.about"), concerns
        ),
        "at_level": bar_chart(
            "at-level", t("figures.days_at_level"), t("figures.days_at_level.about"), at_level
        ),
        "movement": bar_chart(
            "movement", t("figures.movement"), t("figures.movement.about"), movement
        ),
    }


def _number(value: int | None) -> float | None:
    return None if value is None else float(value)


ROUTES = [worklist, concern_form, raise_concern, overview, figures]
