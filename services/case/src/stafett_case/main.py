"""Wiring: the kernel, logging, tracing, the application, the consent and meeting policies' loops,
HTTP.

The kernel (`stafett_runtime.kernel`) holds what the service shares on its event loop: the NATS
connection, the token verifier, the population register, the municipality directory, the access
log and the children's keys. NATS_URL, STAFETT_HTTP_PORT (8102 for this service) and the rest
come from the environment, as every setting in `stafett_runtime.settings`. The loops start with
the HTTP app and stop before the application closes; a loop stopped mid-event leaves nothing
half-written (its events and its position are one atomic write), so it resumes where it left off.
Each loop retries any failure to follow, forever, and parks an event it cannot handle
(`stafett_runtime.processing`); `Readiness.add_policy` makes it a readiness check and part of
liveness, and gives the app the administrator's route that retries parked events.
"""

from __future__ import annotations

import json
from typing import cast

from stafett_case.api import create_app
from stafett_case.application import Cases
from stafett_case.meeting_policy import MeetingFollower
from stafett_case.policies import ConsentFollower
from stafett_runtime.health import Readiness
from stafett_runtime.kernel import Kernel
from stafett_runtime.logging import configure_logging
from stafett_runtime.service import call, serve
from stafett_runtime.tracing import configure_tracing


def main() -> None:
    kernel = Kernel.from_env("case", child_keys="seal")
    settings = kernel.settings
    configure_logging(settings.service, settings.log_level, settings.log_format)
    configure_tracing(settings.service)
    env = settings.eventsourcing_env()
    cases = Cases(env)
    consent = ConsentFollower(env, kernel.directory)
    meeting = MeetingFollower(env, kernel.directory)
    readiness = Readiness()
    readiness.add_policy("consent-policy", consent)
    readiness.add_policy("meeting-policy", meeting)

    async def stop() -> None:
        # All block on the store, which must never run on the event loop.
        await call(consent.stop)
        await call(meeting.stop)
        await call(cases.close)

    app = create_app(
        cases,
        kernel,
        readiness,
        on_startup=[consent.start, meeting.start],
        on_shutdown=[stop],
    )
    serve(app, settings)


def openapi() -> str:
    """The OpenAPI document, made without connecting to anything (`python -m stafett_case openapi`).

    The handlers are never called, so the application is a stand-in and the kernel is never
    opened.
    """
    app = create_app(cast(Cases, None), Kernel.offline("case"))
    return json.dumps(app.openapi_schema.to_schema(), indent=2, sort_keys=True) + "\n"
