"""Wiring: the notifications application, its policies' loops over the CASE, CONSENT and MEETING
streams, the courier and the HTTP API, on the one service skeleton (`stafett_runtime.skeleton`);
the notify settings are `stafett_notify.config`'s.
"""

from __future__ import annotations

from typing import cast

import structlog
from litestar import Litestar

from stafett_notify.api import create_app
from stafett_notify.application import Notifications, utc_now
from stafett_notify.channels import EmailSender, WebhookSender, senders
from stafett_notify.config import NotifyConfig
from stafett_notify.courier import Courier
from stafett_notify.policies import UPSTREAMS, NotifyPolicy
from stafett_runtime.follower import Follower
from stafett_runtime.kernel import Kernel
from stafett_runtime.skeleton import Service, run

log = structlog.get_logger(__name__)


def wire(service: Service) -> Litestar:
    config = NotifyConfig.from_env()
    log.info("notify settings", config=repr(config))
    kernel, env = service.kernel, service.env
    webhook = WebhookSender(config.contacts.webhook_secrets())
    service.on_close(webhook.close)
    channels = senders(EmailSender(config.smtp, utc_now), webhook)
    notifications = service.application(Notifications(env, config, channels, kernel.directory))
    for upstream in UPSTREAMS:
        policy = NotifyPolicy(env, config, kernel.register, kernel.directory)
        service.follow(Follower(policy, upstream, env))
    service.timer(Courier(notifications, config.interval))
    return create_app(notifications, kernel, service.readiness, **service.hooks)


def document() -> Litestar:
    """For the OpenAPI document: no request is served, so no application is needed."""
    return create_app(cast(Notifications, None), Kernel.offline("notify"))


def main() -> int:
    return run("notify", wire, document)
