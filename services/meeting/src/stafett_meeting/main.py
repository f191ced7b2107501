"""Wiring: the kernel, logging, tracing, the application, HTTP.

NATS_URL and STAFETT_HTTP_PORT (8103 for this service) come from the environment, as every
setting in `stafett_runtime.settings`; the population register and the municipality directory
as `stafett_runtime.kernel` says. The kernel's NATS connection (reads of the CASE stream, the
access log) opens with the HTTP app and closes last. The service follows no stream: it reads
each case from the CASE stream when a command or a read needs it.
"""

from __future__ import annotations

import json
from typing import cast

from stafett_meeting.api import create_app
from stafett_meeting.application import Meetings
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

    async def stop() -> None:
        await call(meetings.close)  # blocks on the store, which must never run on the event loop

    app = create_app(meetings, kernel, on_shutdown=[stop])
    serve(app, settings)


def openapi() -> str:
    """The OpenAPI document, without NATS, a register or a signing key: from the routes alone."""
    # No request is served, so the routes need no application, and a kernel never opened will do.
    app = create_app(cast(Meetings, None), Kernel.offline("meeting"))
    return json.dumps(app.openapi_schema.to_schema(), indent=2, sort_keys=True)
