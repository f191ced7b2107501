"""Wiring: settings from the environment, logging, tracing, the app, and serving it.

    python -m stafett_web        serve the web app (STAFETT_HTTP_PORT; 8106 under `stafett up`)

The settings are described in `stafett_web.settings` and docs/web.md.
"""

from __future__ import annotations

import logging
import sys

import structlog

from stafett_runtime.auth import TokenVerifier
from stafett_runtime.directory import directory_from_env
from stafett_runtime.logging import configure_logging
from stafett_runtime.metrics import configure_metrics
from stafett_runtime.service import serve
from stafett_runtime.settings import SettingsError
from stafett_runtime.tracing import configure_tracing
from stafett_web.app import create_app
from stafett_web.settings import WebSettings


def main() -> int:
    try:
        settings = WebSettings.from_env()
        directory = directory_from_env()
        verifier = TokenVerifier.from_env()
    except SettingsError as error:
        print(f"stafett web: {error}", file=sys.stderr)
        return 2
    configure_logging("web", settings.server.log_level, settings.server.log_format)
    # httpx logs every request's address at INFO; an address holds a case id and a purpose.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    configure_tracing("web")
    configure_metrics("web")  # GET /metrics, as on every service
    structlog.get_logger(__name__).info("starting", settings=repr(settings))
    serve(create_app(settings, verifier=verifier, directory=directory), settings.server)
    return 0
