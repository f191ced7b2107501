"""Wiring and the command line.

    python -m stafett_projection            run the service (port from STAFETT_HTTP_PORT, 8105)
    python -m stafett_projection rebuild    rebuild the read models from the streams beside the
                                            ones in use, and swap them in (the service, if it
                                            runs, switches to them)
    python -m stafett_projection openapi    print the OpenAPI document as JSON

The read models live in SQLite under STAFETT_DATA_DIR, or in PostgreSQL when
STAFETT_PROJECTION_DATABASE_URL is set (postgresql://user@host:port/database). The service's
NATS connection, token verifier, population register, municipality directory, access log and
children's keys are its kernel's (`stafett_runtime.kernel`). STAFETT_PROJECTION_FIGURES_MIN_GROUP
(default 5) is the smallest group a figure is given for, STAFETT_PROJECTION_TIMEZONE (default
Europe/Oslo) the municipality's time zone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence

import nats

from stafett_projection.api import create_app, min_group, time_zone
from stafett_projection.projection import Projection, RebuildBusyError, rebuild
from stafett_projection.store import Database
from stafett_runtime.directory import directory_from_env
from stafett_runtime.kernel import Kernel
from stafett_runtime.logging import configure_logging
from stafett_runtime.service import serve
from stafett_runtime.settings import Settings
from stafett_runtime.tracing import configure_tracing


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stafett_projection", description=__doc__)
    parser.add_argument("command", nargs="?", default="run", choices=["run", "rebuild", "openapi"])
    args = parser.parse_args(argv)
    if args.command == "openapi":
        app = create_app(Projection(Database("sqlite:///:memory:")), Kernel.offline("projection"))
        print(json.dumps(app.openapi_schema.to_schema(), indent=2, sort_keys=True))
        return 0
    if args.command == "rebuild":
        return asyncio.run(_rebuild(Settings.from_env("projection")))
    kernel = Kernel.from_env("projection", child_keys="open")
    settings = kernel.settings
    configure_logging(settings.service, settings.log_level, settings.log_format)
    configure_tracing(settings.service)
    app = create_app(
        Projection(Database.from_env()),
        kernel,
        figures_min_group=min_group(os.environ),
        zone=time_zone(os.environ),
    )
    serve(app, settings)
    return 0


async def _rebuild(settings: Settings) -> int:
    db = Database.from_env()
    directory = directory_from_env()  # each unit's kind: does a handover move a case?
    print(f"rebuilding the read models in {db.describe()} from {settings.nats_url}", flush=True)
    nc = await nats.connect(**settings.nats_options("projection-rebuild"))
    try:
        await rebuild(db, nc, out=sys.stdout, directory=directory)
    except RebuildBusyError as busy:
        print(f"refused: {busy}", file=sys.stderr)
        return 2
    finally:
        await nc.close()
    return 0
