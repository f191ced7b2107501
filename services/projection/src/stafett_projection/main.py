"""Wiring and the command line.

    python -m stafett_projection            run the service (port from STAFETT_HTTP_PORT, 8105)
    python -m stafett_projection rebuild    rebuild the read models from the streams beside the
                                            ones in use, and swap them in (the service, if it
                                            runs, switches to them)
    python -m stafett_projection openapi    print the OpenAPI document as JSON

The service runs on the one service skeleton (`stafett_runtime.skeleton`); its NATS connection,
token verifier, population register, municipality directory, access log and children's keys are
its kernel's. The read models live in SQLite under STAFETT_DATA_DIR, or in PostgreSQL when
STAFETT_PROJECTION_DATABASE_URL is set (postgresql://user@host:port/database).
STAFETT_PROJECTION_FIGURES_MIN_GROUP (default 5) is the smallest group a figure is given for,
STAFETT_PROJECTION_TIMEZONE (default Europe/Oslo) the municipality's time zone. Closed cases
go to the archive STAFETT_ARCHIVE_DIR or STAFETT_ARCHIVE_URL names (`delivery`).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Sequence

import nats
from litestar import Litestar

from stafett_projection.api import create_app, min_group, time_zone
from stafett_projection.delivery import ArchiveDelivery, archive_from_env
from stafett_projection.delivery import interval_from_env as delivery_interval
from stafett_projection.projection import Projection, RebuildBusyError, rebuild
from stafett_projection.store import Database
from stafett_runtime.directory import directory_from_env
from stafett_runtime.kernel import Kernel
from stafett_runtime.settings import Settings
from stafett_runtime.skeleton import Service, run


def wire(service: Service) -> Litestar:
    projection = Projection(Database.from_env())
    zone = time_zone(os.environ)
    # Each closed case's archive document, delivered to the municipality's archive.
    archive, interval = archive_from_env(), delivery_interval()
    service.timer(ArchiveDelivery(projection, service.kernel, archive, interval, zone))
    return create_app(
        projection,
        service.kernel,
        service.readiness,
        **service.hooks,
        figures_min_group=min_group(os.environ),
        zone=zone,
    )


def document() -> Litestar:
    return create_app(Projection(Database("sqlite:///:memory:")), Kernel.offline("projection"))


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    if arguments == ["rebuild"]:
        return asyncio.run(_rebuild(Settings.from_env("projection")))
    if arguments not in ([], ["openapi"]):
        print(__doc__, file=sys.stderr)
        return 2
    return run("projection", wire, document, child_keys="open", argv=arguments)


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
