"""Wiring: the case application, the consent and meeting policies' loops, erasure and the
retention timer (`children`, `retention`), the HTTP API, on the one service skeleton
(`stafett_runtime.skeleton`: settings, logging, tracing, the kernel, health, metrics,
lifecycle). STAFETT_HTTP_PORT is 8102 under `stafett up`.
"""

from __future__ import annotations

from typing import cast

from litestar import Litestar

from stafett_case.api import create_app
from stafett_case.application import Cases
from stafett_case.children import Children
from stafett_case.meeting_policy import MeetingFollower
from stafett_case.policies import ConsentFollower
from stafett_case.retention import RetentionTimer, interval_from_env
from stafett_runtime.kernel import Kernel
from stafett_runtime.skeleton import Service, run


def wire(service: Service) -> Litestar:
    cases = service.application(Cases(service.env))
    service.follow(ConsentFollower(service.env, service.kernel.directory))
    service.follow(MeetingFollower(service.env, service.kernel.directory))
    # Erasure, and the retention timer that erases when a child's period ends.
    children = service.application(Children(cases, service.env))
    kernel = service.kernel
    service.timer(RetentionTimer(children, kernel.directory, kernel.erase, interval_from_env()))
    return create_app(cases, kernel, service.readiness, **service.hooks, children=children)


def document() -> Litestar:
    """For the OpenAPI document: no request is served, so no application is needed."""
    return create_app(cast(Cases, None), Kernel.offline("case"))


def main() -> int:
    return run("case", wire, document, child_keys="seal")
