"""The front page, signing in and out, and the choice of language."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import get, post
from litestar.params import FromQuery
from litestar.response import Redirect, Response, Template

from stafett_web.i18n import COOKIE, LANGUAGES, REMEMBERED_FOR
from stafett_web.sessions import NEW_ID
from stafett_web.signin import CALLBACK, SIGNED_IN, SignInFailed
from stafett_web.web import AnyRequest, current, form_data, local_path, page, translator, web

HOME_OF_ROLE = {
    "guardian": "/worklist",
    "child": "/worklist",
    "employee": "/worklist",
    "unit_leader": "/worklist",
    "auditor": "/audit",
    "administrator": "/figures",
}


@get("/", name="home")
async def home(request: AnyRequest) -> Template | Redirect:
    person = current(request)
    if person is not None:
        return Redirect(HOME_OF_ROLE.get(person.role, "/worklist"))
    return page(request, "home.html", "title.home")


@get("/login")
async def login(request: AnyRequest, next: FromQuery[str | None] = None) -> Redirect | Template:
    """Off to the identity provider; back at the page asked for once signed in."""
    target = local_path(next)
    if current(request) is not None:
        return Redirect(target)
    try:
        url = await web(request).signin.begin(request.session, target, translator(request).language)
    except SignInFailed as failed:
        return page(
            request, "signin_failed.html", "title.signin_failed", status=503, reason=str(failed)
        )
    return Redirect(url)


@get(CALLBACK)
async def callback(request: AnyRequest) -> Redirect | Template:
    query = {key: value for key, value in request.query_params.items() if isinstance(value, str)}
    try:
        signed_in, target = await web(request).signin.complete(request.session, query)
    except SignInFailed as failed:
        return page(
            request, "signin_failed.html", "title.signin_failed", status=400, reason=str(failed)
        )
    request.session[SIGNED_IN] = msgspec.to_builtins(signed_in)
    request.session[NEW_ID] = True  # a new session id now that someone is signed in
    return Redirect(local_path(target))


@post("/logout")
async def logout(request: AnyRequest) -> Redirect:
    """Ends the session here, then at the provider (which comes back to the front page)."""
    at_provider = await web(request).signin.logout_url(current(request))
    request.clear_session()
    return Redirect(at_provider or "/")


@post("/language")
async def language(request: AnyRequest) -> Response[Any]:
    """Remembers the language chosen, and shows the same page in it."""
    data = await form_data(request)
    chosen = (data.get("lang") or [""])[0]
    answer: Response[Any] = Redirect(local_path((data.get("next") or ["/"])[0]))
    if chosen in LANGUAGES:
        answer.set_cookie(
            COOKIE,
            chosen,
            max_age=REMEMBERED_FOR,
            httponly=True,
            samesite="lax",
            secure=web(request).settings.secure_cookies,
        )
    return answer


ROUTES = [home, login, callback, logout, language]
