"""The notify service's HTTP API: the notifications of a case, and one notification's status.

| method and path | what |
|---|---|
| GET /notifications?case_id=... | the case's notifications, oldest first: whom, why, on which channel, status |
| GET /notifications/{id} | one notification: requested, sending, retrying, sent or failed (with the error) |

The leader of the case's unit, an administrator or an auditor sees every notification of a case;
anyone else sees only those addressed to them (or to the service they act for). A notification never holds
its message: only its reason, reference and link (DOMAIN.md rule 8).
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import msgspec
from litestar import Litestar, Request, get
from litestar.params import FromPath, FromQuery
from litestar.types import LifespanHook

from stafett_contracts.identity import Actor, Role
from stafett_notify.application import Notifications
from stafett_notify.domain.facts import NotificationView
from stafett_runtime.auth import TokenVerifier
from stafett_runtime.domain import NotAllowed
from stafett_runtime.health import Readiness
from stafett_runtime.service import call, http_app

SEES_ALL = (Role.ADMINISTRATOR, Role.AUDITOR, Role.SYSTEM)


class NotificationStatus(msgspec.Struct, frozen=True, kw_only=True):
    id: UUID
    case_id: UUID | None
    recipient: str
    channel: str
    reason: str
    reference: str
    link: str
    status: str  # requested, sending, retrying, sent, failed
    attempts: int
    requested_at: datetime
    retry_at: datetime | None = None
    sent_at: datetime | None = None
    error: str | None = None


def status_of(view: NotificationView) -> NotificationStatus:
    return NotificationStatus(**{f: getattr(view, f) for f in NotificationStatus.__struct_fields__})


def may_see(actor: Actor, view: NotificationView, unit: str | None) -> bool:
    """Its recipient; the leader of the case's unit; those who oversee."""
    leads = actor.role == Role.UNIT_LEADER and unit is not None and actor.service == unit
    return leads or actor.role in SEES_ALL or view.recipient in (actor.person, actor.service)


def create_app(
    notifications: Notifications,
    verifier: TokenVerifier,
    readiness: Readiness | None = None,
    on_startup: Sequence[LifespanHook] = (),
    on_shutdown: Sequence[LifespanHook] = (),
) -> Litestar:
    """The HTTP app in front of `notifications`; main.py wires it, tests give their own parts."""

    @get("/notifications", summary="The notifications of a case that the caller may see")
    async def of_case(
        case_id: FromQuery[UUID], request: Request[Actor, Any, Any]
    ) -> list[NotificationStatus]:
        views = await call(notifications.notifications_of, case_id)
        unit = notifications.unit_of(case_id)
        return [status_of(v) for v in views if may_see(request.user, v, unit)]

    @get("/notifications/{notification_id:uuid}", summary="One notification and its status")
    async def one(
        notification_id: FromPath[UUID], request: Request[Actor, Any, Any]
    ) -> NotificationStatus:
        view = await call(notifications.notification, notification_id)
        if not may_see(request.user, view, notifications.unit_of(view.case_id)):
            raise NotAllowed("only its recipient and those who oversee may see a notification")
        return status_of(view)

    return http_app(
        service="notify",
        route_handlers=[of_case, one],
        readiness=readiness or Readiness(),
        verifier=verifier,
        description=__doc__ or "",
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )
