"""Wiring: the meeting application and the HTTP API, on the one service skeleton
(`stafett_runtime.skeleton`). The service follows no stream: it reads each case from the CASE
stream, through the kernel, when a command or a read needs it.
"""

from __future__ import annotations

from typing import cast

from litestar import Litestar

from stafett_meeting.api import create_app
from stafett_meeting.application import Meetings
from stafett_runtime.kernel import Kernel
from stafett_runtime.skeleton import Service, run


def wire(service: Service) -> Litestar:
    meetings = service.application(Meetings(service.env))
    return create_app(meetings, service.kernel, **service.hooks)


def document() -> Litestar:
    """For the OpenAPI document: no request is served, so no application is needed."""
    return create_app(cast(Meetings, None), Kernel.offline("meeting"))


def main() -> int:
    return run("meeting", wire, document, child_keys="open")
