"""The action guides over HTTP: publishing one (administrators), and reading them.

| method and path | what |
|---|---|
| POST /guides | publish the next version of a service's guide: the body is the guide file, TOML (`Content-Type: application/toml` or `text/plain`) or the same as JSON (`application/json`) |
| GET /guides | the version of each service's guide in force: what a case opened now follows |
| GET /guides/{service}/{version} | one version of a service's guide, to show a step or render a form |

Publishing is refused first of all to anyone but an administrator (403,
`administrator-publishes-guides`), before the body is read. A body that is not UTF-8 is 400; a
guide that does not parse, or that names an unknown level, exit, form, role or event, is 422
with the line and the reason (`{"key": "guide", "line": n, "message": reason}`), and nothing is
stored. Publishing the guide already in force records nothing and answers its version. Cases
already open keep the version they were opened under (docs/guides.md).
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Request, get, post
from litestar.exceptions import ClientException, NotFoundException, ValidationException
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath

from stafett_case.application import Cases
from stafett_case.domain.guides import PublishGuide, may_publish
from stafett_contracts.guides import GUIDE_BOOK_ID, Guide, GuideError, parse
from stafett_contracts.identity import Actor
from stafett_contracts.people import ServiceKind
from stafett_runtime.apidocs import refusals
from stafett_runtime.kernel import Kernel
from stafett_runtime.service import call


class Published(msgspec.Struct, frozen=True, kw_only=True):
    """The version of the service's guide now in force."""

    service: ServiceKind
    version: int
    recorded: bool  # False: this guide was in force already, nothing new was recorded


class GuidesInForce(msgspec.Struct, frozen=True, kw_only=True):
    """Each service's guide version in force (version 1: the guide Stafett ships)."""

    versions: dict[ServiceKind, int]


def guide_routes(cases: Cases | None, kernel: Kernel) -> list[HTTPRouteHandler]:
    """The routes; `cases` is None only for the OpenAPI document, which calls nothing."""

    @post(
        "/guides",
        operation_id="publish-guide",
        summary="Publish a new version of a service's action guide (administrators)",
        description=__doc__,
        responses=refusals(400, 403, 422),
    )
    async def publish_guide(request: Request[Actor, Any, Any]) -> Published:
        assert cases is not None, "the OpenAPI document's app is never called"
        context = kernel.context(request.user)
        may_publish(context.actor)  # before the body is read
        guide = _guide_in(await request.body(), request.content_type[0])
        decision = await call(
            cases.guides.handle, GUIDE_BOOK_ID, PublishGuide(guide=guide), context
        )
        book = await call(cases.guide_book)
        return Published(
            service=guide.service,
            version=book.in_force()[guide.service],
            recorded=bool(decision.events),
        )

    @get("/guides", operation_id="guides-in-force", summary="The guide versions in force")
    async def guides_in_force() -> GuidesInForce:
        assert cases is not None, "the OpenAPI document's app is never called"
        book = await call(cases.guide_book)
        return GuidesInForce(versions=book.in_force())

    @get(
        "/guides/{service:str}/{version:int}",
        operation_id="read-guide",
        summary="One version of a service's action guide",
    )
    async def read_guide(service: FromPath[ServiceKind], version: FromPath[int]) -> Guide:
        assert cases is not None, "the OpenAPI document's app is never called"
        book = await call(cases.guide_book)
        guide = book.guide(service, version)
        if guide is None:
            raise NotFoundException(f"no version {version} of the {service} guide")
        return guide

    return [publish_guide, guides_in_force, read_guide]


def _guide_in(body: bytes, content_type: str) -> Guide:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ClientException("the guide is not UTF-8 text") from None
    try:
        return parse(text, "json" if content_type.endswith("json") else "toml")
    except GuideError as refused:
        extra = [{"key": "guide", "line": refused.line, "message": refused.reason}]
        raise ValidationException(detail=str(refused), extra=extra) from None
