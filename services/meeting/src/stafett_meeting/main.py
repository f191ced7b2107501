"""Wiring: settings, logging, tracing, the application, the roster policy's loop, HTTP.

NATS_URL and STAFETT_HTTP_PORT (8103 for this service) come from the environment, as every
setting in `stafett_runtime.settings`. The roster loop starts with the HTTP app and stops
before the application closes; a loop stopped mid-event leaves nothing half-written (its events
and its position are one atomic write), so it resumes where it left off.
"""

from __future__ import annotations

import json
from typing import cast

from cryptography.hazmat.primitives.asymmetric import ec

from stafett_meeting.api import create_app
from stafett_meeting.application import Meetings
from stafett_meeting.policies import CaseFollower
from stafett_runtime.auth import TokenVerifier
from stafett_runtime.health import Readiness
from stafett_runtime.logging import configure_logging
from stafett_runtime.service import call, serve
from stafett_runtime.settings import Settings
from stafett_runtime.tracing import configure_tracing


def main() -> None:
    settings = Settings.from_env("meeting")
    configure_logging(settings.service, settings.log_level, settings.log_format)
    configure_tracing(settings.service)
    env = settings.eventsourcing_env()
    meetings = Meetings(env)
    cases = CaseFollower(env)
    readiness = Readiness()
    readiness.add("roster-policy", cases.check)

    async def stop() -> None:
        # Both block on the store, which must never run on the event loop.
        await call(cases.stop)
        await call(meetings.close)

    app = create_app(
        meetings,
        TokenVerifier.from_env(),
        readiness,
        on_startup=[cases.start],
        on_shutdown=[stop],
    )
    serve(app, settings)


def openapi() -> str:
    """The OpenAPI document, without NATS or a signing key: built from the routes alone."""
    # No request is served, so the routes need no application and any verifier will do.
    unused = TokenVerifier(ec.generate_private_key(ec.SECP256R1()).public_key())
    app = create_app(cast(Meetings, None), unused)
    return json.dumps(app.openapi_schema.to_schema(), indent=2, sort_keys=True)
