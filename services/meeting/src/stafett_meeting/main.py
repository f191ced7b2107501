"""Wiring: the kernel, logging, tracing, the application, the roster policy's loop, HTTP.

NATS_URL and STAFETT_HTTP_PORT (8103 for this service) come from the environment, as every
setting in `stafett_runtime.settings`; the population register and the municipality directory
as `stafett_runtime.kernel` says. The kernel's NATS connection (reads of the CASE stream, the
access log) opens with the HTTP app and closes last. The roster loop starts with the HTTP app
and stops before the application closes; a loop stopped mid-event leaves nothing half-written
(its events and its position are one atomic write), so it resumes where it left off.
Each loop retries any failure to follow, forever, and parks an event it cannot handle
(`stafett_runtime.processing`); `Readiness.add_policy` makes it a readiness check and part of
liveness, and gives the app the administrator's route that retries parked events.
"""

from __future__ import annotations

import json
from typing import cast

from stafett_meeting.api import create_app
from stafett_meeting.application import Meetings
from stafett_meeting.policies import CaseFollower
from stafett_runtime.health import Readiness
from stafett_runtime.kernel import Kernel
from stafett_runtime.logging import configure_logging
from stafett_runtime.service import call, serve
from stafett_runtime.tracing import configure_tracing


def main() -> None:
    kernel = Kernel.from_env("meeting")
    settings = kernel.settings
    configure_logging(settings.service, settings.log_level, settings.log_format)
    configure_tracing(settings.service)
    env = settings.eventsourcing_env()
    meetings = Meetings(env)
    cases = CaseFollower(env)
    readiness = Readiness()
    readiness.add_policy("roster-policy", cases)

    async def stop() -> None:
        # Both block on the store, which must never run on the event loop.
        await call(cases.stop)
        await call(meetings.close)

    app = create_app(
        meetings,
        kernel,
        readiness,
        on_startup=[cases.start],
        on_shutdown=[stop],
    )
    serve(app, settings)


def openapi() -> str:
    """The OpenAPI document, without NATS, a register or a signing key: from the routes alone."""
    # No request is served, so the routes need no application, and a kernel never opened will do.
    app = create_app(cast(Meetings, None), Kernel.offline("meeting"))
    return json.dumps(app.openapi_schema.to_schema(), indent=2, sort_keys=True)
