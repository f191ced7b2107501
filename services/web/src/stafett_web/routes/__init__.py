"""The pages, by who uses them: signing in, cases, consent, meetings, work, audit, erasure."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

from stafett_web.routes import audit, auth, cases, children, consents, meetings, work

ROUTES: list[ControllerRouterHandler] = [
    *auth.ROUTES,
    *cases.ROUTES,
    *consents.ROUTES,
    *meetings.ROUTES,
    *work.ROUTES,
    *audit.ROUTES,
    *children.ROUTES,
]
