"""Following another service's stream from a service: its policy's loop, once the stream exists.

Services start in any order and each makes its own stream, so a follower tries again every
`retry_seconds` until the upstream stream is there. Meanwhile the service is not ready, unless
the upstream is not `required` (the case works without meetings, never without consents).
"""

from __future__ import annotations

import threading
from typing import Any

import structlog
from eventsourcing.projection import EventSourcedProjection
from eventsourcing.utils import EnvType

from stafett_runtime.contracts import CONTRACT_ENV
from stafett_runtime.health import CheckResult
from stafett_runtime.processing import ProcessingLoop, Upstream
from stafett_runtime.service import call

log = structlog.get_logger(__name__)


class Follower:
    """Runs `policy` over the stream of the service named `upstream`; a readiness check."""

    def __init__(
        self,
        policy: EventSourcedProjection[Any],
        upstream: str,
        env: EnvType,
        retry_seconds: float = 2.0,
        required: bool = True,
    ) -> None:
        self.policy = policy
        self.required = required
        self.upstream = Upstream.named(upstream, {**env, **CONTRACT_ENV})
        self.loop: ProcessingLoop | None = None
        self._retry_seconds = retry_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._start_loop, name=f"{upstream}-follower")

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self._thread.join()
        if self.loop is not None:
            self.loop.stop()
        self.policy.close()
        self.upstream.close()

    async def check(self) -> CheckResult:
        name = self.upstream.name
        if self.loop is not None and self.loop.running:
            lag = await call(self.loop.lag)  # reads the store: off the event loop
            return CheckResult(ok=True, detail=f"{lag} {name} events behind")
        if self.loop is None:
            return CheckResult(ok=not self.required, detail=f"waiting for the {name} stream")
        return CheckResult(ok=False, detail=f"{name} policy not running: {self.loop.error}")

    def _start_loop(self) -> None:
        while not self._stopping.is_set():
            loop = ProcessingLoop(self.policy, self.upstream)
            try:
                loop.start()
            except Exception as error:
                log.warning(
                    "policy waits for its upstream", upstream=self.upstream.name, reason=str(error)
                )
                self._stopping.wait(self._retry_seconds)
                continue
            self.loop = loop
            return
