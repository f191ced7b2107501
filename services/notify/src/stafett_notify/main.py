"""Wiring: the kernel, logging, tracing, the application, the policies' loops, the courier, HTTP.

NATS_URL and STAFETT_HTTP_PORT (8104 for this service) come from the environment, as every
setting in `stafett_runtime.settings`; the population register and the municipality directory
as the kernel reads them (`stafett_runtime.kernel`); the notify settings are in
`stafett_notify.config`. The service is ready when its NATS connection is up and its policies
follow the CASE, CONSENT and MEETING streams.
Each loop retries any failure to follow, forever, and parks an event it cannot handle
(`stafett_runtime.processing`); `Readiness.add_policy` makes it a readiness check and part of
liveness, and gives the app the administrator's route that retries parked events.
"""

from __future__ import annotations

import sys

import msgspec
import structlog

from stafett_notify.api import create_app
from stafett_notify.application import Notifications, utc_now
from stafett_notify.channels import EmailSender, WebhookSender, senders
from stafett_notify.config import NotifyConfig
from stafett_notify.courier import Courier
from stafett_notify.policies import UPSTREAMS, NotifyPolicy
from stafett_runtime.follower import Follower
from stafett_runtime.health import Readiness
from stafett_runtime.kernel import Kernel
from stafett_runtime.logging import configure_logging
from stafett_runtime.service import call, serve
from stafett_runtime.tracing import configure_tracing

log = structlog.get_logger(__name__)


def openapi() -> bytes:
    """The OpenAPI document, without connecting to anything."""
    app = create_app(None, Kernel.offline("notify"))  # type: ignore[arg-type]  # no route is called
    return msgspec.json.format(msgspec.json.encode(app.openapi_schema.to_schema()), indent=2)


def main(argv: list[str] = sys.argv[1:]) -> None:
    if argv[:1] == ["openapi"]:
        sys.stdout.buffer.write(openapi() + b"\n")
        return
    kernel = Kernel.from_env("notify")
    settings = kernel.settings
    configure_logging(settings.service, settings.log_level, settings.log_format)
    configure_tracing(settings.service)
    config = NotifyConfig.from_env()
    log.info("starting", settings=repr(settings), config=repr(config))
    env = settings.eventsourcing_env()
    webhook = WebhookSender(config.contacts.webhook_secrets())
    channels = senders(EmailSender(config.smtp, utc_now), webhook)
    notifications = Notifications(env, config, channels, kernel.directory)
    followers = [
        Follower(NotifyPolicy(env, config, kernel.register, kernel.directory), name, env)
        for name in UPSTREAMS
    ]
    readiness = Readiness()
    for follower in followers:
        readiness.add_policy(f"{follower.upstream.name}-policy", follower)
    courier = Courier(notifications, config.interval)

    async def start() -> None:
        for follower in followers:
            follower.start()
        await courier.start()

    async def stop() -> None:
        await courier.stop()
        for follower in followers:
            await call(follower.stop)  # blocks on the store: off the event loop
        await call(notifications.close)
        webhook.close()

    app = create_app(
        notifications,
        kernel,
        readiness,
        on_startup=[start],
        on_shutdown=[stop],
    )
    serve(app, settings)
