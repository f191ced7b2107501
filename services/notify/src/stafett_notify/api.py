"""The notify service's HTTP API: the notifications of a case, and one notification's status.

| method and path | what |
|---|---|
| GET /notifications?case_id=...&purpose=... | the case's notifications the caller may see, oldest first: whom, why, on which channel, status |
| GET /notifications/{id}?purpose=... | one notification: requested, sending, retrying, sent or failed (with the error) |

A notification is an entry of its case, made when it was requested. Who may see it is the one
access rule's answer (`stafett_contracts.access`), asked through the read gate
(`stafett_runtime.reads`), which records every read and every refusal as `CaseAccessed` on the
AUDIT stream before anything about the case is said:

- whoever may read the whole case (someone of its own unit, a guardian of the child as the
  register says, the child from the reading age, an auditor who states a `purpose`) sees every
  notification of it;
- someone of a unit a consent, legal basis or report covers sees those addressed to them or to
  their unit, requested in the periods the unit was covered (rule `shown-with-its-case`);
- anyone else is refused, 403 naming the access rule (an auditor without a purpose: 422).

A notification of no case is its recipient's alone (rule `for-its-recipient`). A notification
that does not exist is 404: its id is derived from a random event id, so that says nothing.
A notification never holds its message: only its reason, reference and link (DOMAIN.md rule 8).
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import msgspec
from litestar import Litestar, Request, get
from litestar.params import FromPath, FromQuery, Parameter
from litestar.types import LifespanHook

from stafett_contracts.access import Access
from stafett_contracts.identity import Actor
from stafett_contracts.inputs import ReadPurpose, limits
from stafett_notify.application import Notifications
from stafett_notify.domain.facts import NotificationView
from stafett_runtime.domain import NotAllowed
from stafett_runtime.health import Readiness
from stafett_runtime.kernel import Kernel
from stafett_runtime.service import call, http_app, refusals

# The rules a refusal here names, beside the access rule's own.
SHOWN_WITH_ITS_CASE = "shown-with-its-case"
FOR_ITS_RECIPIENT = "for-its-recipient"

Purpose = Annotated[
    str | None,
    Parameter(
        description="why you read: required of auditors, recorded for everyone; a consent "
        "purpose (cooperation, tvist, referral) counts only consents given for it; at most "
        "500 characters, no control character",
        **limits(ReadPurpose),
    ),
]


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


def addressed_to(reader: Actor, view: NotificationView) -> bool:
    return view.recipient in (reader.person, reader.service)


def shown(access: Access, reader: Actor, view: NotificationView) -> bool:
    """Shown as the entries of its case are; to a unit that sees the case only in part, only
    if it is addressed to the reader or their unit."""
    return access.shows(view.requested_at) and (access.whole_case or addressed_to(reader, view))


def create_app(
    notifications: Notifications,
    kernel: Kernel,
    readiness: Readiness | None = None,
    on_startup: Sequence[LifespanHook] = (),
    on_shutdown: Sequence[LifespanHook] = (),
) -> Litestar:
    """The HTTP app in front of `notifications`; main.py wires it, tests give their own parts."""

    @get(
        "/notifications",
        summary="The notifications of a case that the caller may see",
        responses=refusals(403, 404),
    )
    async def of_case(
        case_id: FromQuery[UUID], request: Request[Actor, Any, Any], purpose: Purpose = None
    ) -> list[NotificationStatus]:
        reader = request.user
        admitted = await kernel.reads().admit(reader, case_id, "notifications", purpose)
        views = await call(notifications.notifications_of, case_id)
        return [status_of(v) for v in views if shown(admitted.access, reader, v)]

    @get(
        "/notifications/{notification_id:uuid}",
        summary="One notification and its status",
        responses=refusals(403),
    )
    async def one(
        notification_id: FromPath[UUID],
        request: Request[Actor, Any, Any],
        purpose: Purpose = None,
    ) -> NotificationStatus:
        reader = request.user
        view = await call(notifications.notification, notification_id)
        if view.case_id is None:
            if not addressed_to(reader, view):
                raise NotAllowed(
                    "a notification of no case is for its recipient only", rule=FOR_ITS_RECIPIENT
                )
            return status_of(view)
        admitted = await kernel.reads().admit(reader, view.case_id, "notification", purpose)
        if not shown(admitted.access, reader, view):
            raise NotAllowed(
                "you see this case only in part: its notifications addressed to you or your "
                "unit, from the periods your unit was covered",
                rule=SHOWN_WITH_ITS_CASE,
            )
        return status_of(view)

    return http_app(
        service="notify",
        route_handlers=[of_case, one],
        readiness=readiness or Readiness(),
        kernel=kernel,
        description=__doc__ or "",
        on_startup=on_startup,
        on_shutdown=on_shutdown,
    )
