"""What every page needs: who is signed in, their language, the services, and how a page is
answered (a template with the words, the person and the navigation of their role).

A page that needs a signed-in person gets them from `signed_in(request)`; without a session, or
with an access token that has ended, it raises `SignInNeeded`, and the app sends the person to
sign in and then back to the page they asked for.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from litestar import Request
from litestar.response import Template

from stafett_runtime.directory import DirectorySource
from stafett_web.apis import Services
from stafett_web.forms import PURPOSES, plain
from stafett_web.i18n import COOKIE, Translator, negotiate
from stafett_web.relaylog import basis, who
from stafett_web.settings import WebSettings
from stafett_web.signin import SIGNED_IN, OpenIdSignIn, SignedIn

AnyRequest = Request[Any, Any, Any]
_LOCAL_PATH = re.compile(r"^/(?![/\\])[\x21-\x7e]*$")


@dataclass(frozen=True)
class Web:
    """The app's parts, one each per process (on `app.state.web`)."""

    settings: WebSettings
    services: Services
    signin: OpenIdSignIn
    directory: DirectorySource
    zone: ZoneInfo

    def unit_name(self, service: str | None) -> str:
        if not service:
            return ""
        unit = self.directory.current().unit(service)
        return unit.name if unit else service

    def units(self) -> list[tuple[str, str]]:
        """Every unit of the directory: (id, name), by name."""
        units = self.directory.current().units
        return sorted(((s, u.name) for s, u in units.items()), key=lambda unit: unit[1])


class SignInNeeded(Exception):  # noqa: N818 (an outcome, named as the page tells it)
    """No one is signed in, or their sign-in has ended: sign in, then come back to `next_path`."""

    def __init__(self, next_path: str) -> None:
        super().__init__(next_path)
        self.next_path = next_path


def web(request: AnyRequest) -> Web:
    found: Web = request.app.state.web
    return found


def translator(request: AnyRequest) -> Translator:
    language = negotiate(request.cookies.get(COOKIE), request.headers.get("accept-language"))
    return Translator(language, web(request).zone)


def current(request: AnyRequest) -> SignedIn | None:
    """Who is signed in, if anyone is and their sign-in has not ended."""
    kept = request.session.get(SIGNED_IN) if request.scope.get("session") else None
    if not isinstance(kept, dict):
        return None
    try:
        signed_in = msgspec.convert(kept, SignedIn)
    except msgspec.ValidationError:
        return None
    return None if signed_in.expired() else signed_in


def signed_in(request: AnyRequest) -> SignedIn:
    found = current(request)
    if found is None:
        raise SignInNeeded(return_path(request))
    return found


def return_path(request: AnyRequest) -> str:
    """The page to come back to after signing in: this one, or for a form, the page it was on."""
    if request.method == "GET":
        path = request.url.path
        query = request.url.query
        return local_path(f"{path}?{query}" if query else path)
    referer = request.headers.get("referer") or ""
    origin = web(request).settings.public_url
    if referer.startswith(f"{origin}/"):
        return local_path(referer[len(origin) :])
    return "/"


def local_path(candidate: str | None) -> str:
    """`candidate` if it is a path on this site, else the front page: never another site."""
    if candidate and _LOCAL_PATH.match(candidate):
        return candidate
    return "/"


NAVIGATION: dict[str, tuple[tuple[str, str], ...]] = {
    "guardian": (("nav.my_cases", "/worklist"),),
    "child": (("nav.my_cases", "/worklist"),),
    "employee": (("nav.worklist", "/worklist"), ("nav.raise_concern", "/concerns/new")),
    "unit_leader": (
        ("nav.worklist", "/worklist"),
        ("nav.raise_concern", "/concerns/new"),
        ("nav.overview", "/units/{service}/overview"),
        ("nav.figures", "/figures"),
    ),
    "auditor": (
        ("nav.audit", "/audit"),
        ("nav.overrides", "/audit/overrides"),
        ("nav.figures", "/figures"),
    ),
    "administrator": (("nav.figures", "/figures"), ("nav.erase_child", "/children/erase")),
}


def page(
    request: AnyRequest,
    template: str,
    title: str,
    *,
    status: int = 200,
    **context: Any,
) -> Template:
    """A page: `title` is a message key (page titles never hold personal data)."""
    t = translator(request)
    person = current(request)
    role, service = (person.role, person.service or "") if person else ("", "")
    navigation = [(t(key), href.format(service=service)) for key, href in NAVIGATION.get(role, ())]
    flash = request.session.pop("flash", None) if request.scope.get("session") else None
    w = web(request)
    return Template(
        template_name=template,
        context={
            "t": t,
            "plain": lambda message: plain(message, t),
            "purposes": PURPOSES,
            "units_named": lambda services: ", ".join(w.unit_name(s) for s in services),
            "purposes_named": lambda purposes: ", ".join(
                t(f"purpose.{p}") if t.has(f"purpose.{p}") else p for p in purposes
            ),
            "consent_units": lambda consent: [(s, w.unit_name(s)) for s in consent.scope.services],
            "who": lambda person, role, service: who(person, role, service, t, w.unit_name),
            "basis": lambda said: basis(said, t),
            "lang": t.language,
            "title": t(title),
            "person": person,
            "navigation": navigation,
            "here": return_path(request)
            if request.method == "GET"
            else local_path(request.url.path),
            "flash": t(flash) if isinstance(flash, str) and t.has(flash) else None,
            "web": w,
            **context,
        },
        status_code=status,
    )


def flash(request: AnyRequest, key: str) -> None:
    """A message for the next page the person sees ("Saved.")."""
    request.session["flash"] = key


async def form_data(request: AnyRequest) -> Mapping[str, list[str]]:
    """A submitted form, every field as a list of its values (checkboxes give several)."""
    form = await request.form()
    return {key: [v for v in form.getall(key) if isinstance(v, str)] for key in form}
