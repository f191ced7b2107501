"""Wiring: the consent application, its expiry timer and the HTTP API, on the one service
skeleton (`stafett_runtime.skeleton`); the consent rules are `stafett_consent.config`'s."""

from __future__ import annotations

from typing import cast

import structlog
from litestar import Litestar

from stafett_consent.api import create_app
from stafett_consent.application import Consents
from stafett_consent.config import ConsentConfig
from stafett_consent.expiry import ExpiryTimer
from stafett_runtime.kernel import Kernel
from stafett_runtime.skeleton import Service, run

log = structlog.get_logger(__name__)


def wire(service: Service) -> Litestar:
    config = ConsentConfig.from_env()
    log.info("consent rules", rules=str(config.rules))
    consents = service.application(Consents(service.env, rules=config.rules))
    service.timer(ExpiryTimer(consents, config.expiry_interval))
    return create_app(consents, service.kernel, **service.hooks)


def document() -> Litestar:
    """For the OpenAPI document: no request is served, so no application is needed."""
    return create_app(cast(Consents, None), Kernel.offline("consent"))


def main() -> int:
    return run("consent", wire, document, child_keys="open")
