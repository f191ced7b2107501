"""Wiring: the kernel (settings, identity, register, directory, NATS), logging, tracing, the
application, the expiry timer, HTTP."""

from __future__ import annotations

import json
from typing import cast

import structlog

from stafett_consent.api import create_app
from stafett_consent.application import Consents
from stafett_consent.config import ConsentConfig
from stafett_consent.expiry import ExpiryTimer
from stafett_runtime.kernel import Kernel
from stafett_runtime.logging import configure_logging
from stafett_runtime.service import call, serve
from stafett_runtime.tracing import configure_tracing

log = structlog.get_logger(__name__)


def main() -> None:
    kernel = Kernel.from_env("consent")
    settings = kernel.settings
    configure_logging(settings.service, settings.log_level, settings.log_format)
    configure_tracing(settings.service)
    config = ConsentConfig.from_env()
    log.info("starting", settings=repr(settings), rules=str(config.rules))
    consents = Consents(settings.eventsourcing_env(), rules=config.rules)
    timer = ExpiryTimer(consents, config.expiry_interval)

    async def close() -> None:
        await call(consents.close)

    app = create_app(consents, kernel, on_startup=[timer.start], on_shutdown=[timer.stop, close])
    serve(app, settings)


def openapi() -> str:
    """The OpenAPI document, made without connecting (`python -m stafett_consent openapi`).

    The handlers are never called, so the application is a stand-in, and the kernel is never
    opened.
    """
    app = create_app(cast(Consents, None), Kernel.offline("consent"))
    return json.dumps(app.openapi_schema.to_schema(), indent=2, sort_keys=True) + "\n"
