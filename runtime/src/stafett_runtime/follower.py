"""Following another service's stream from a service: its policy's loop, its health, its parked
events.

Services start in any order and each makes its own stream; a follower's loop
(`stafett_runtime.processing.ProcessingLoop`) simply retries until the upstream stream is there,
as it retries any failure to follow, forever, after pauses that double from `retry_seconds` to
30 s. Register it with `Readiness.add_policy`, which gives the service:

| loop | readiness (`check`) | liveness (`failure`) |
|---|---|---|
| processing, caught up | ready: `processing` | alive |
| processing, behind | ready: `catching up: N <upstream> events behind` (the true lag) | alive |
| with parked events | ready but degraded (200): `degraded: N parked; processing` | alive |
| starting, or retrying after a failure | `starting`, or `retrying since <time> after <error>`: not ready, unless the upstream is not `required` (the case works without meetings, never without consents) | alive |
| failed: a programming error in the loop | not ready: `failed: <error>` | failed (503), so the process is restarted |

`retry` processes its parked events again (`POST /processing/parked/retry`, in
`stafett_runtime.service`).
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

from typing import Any

from eventsourcing.projection import EventSourcedProjection
from eventsourcing.utils import EnvType

from stafett_contracts.identity import Actor
from stafett_runtime.checks import CheckResult
from stafett_runtime.contracts import CONTRACT_ENV
from stafett_runtime.processing import FIRST_PAUSE, ProcessingLoop, RetryOutcome, Upstream
from stafett_runtime.threads import call


class Follower:
    """Runs `policy` over the stream of the service named `upstream`, until stopped."""

    def __init__(
        self,
        policy: EventSourcedProjection[Any],
        upstream: str,
        env: EnvType,
        retry_seconds: float = FIRST_PAUSE,
        required: bool = True,
    ) -> None:
        self.policy = policy
        self.required = required
        self.upstream = Upstream.named(upstream, {**env, **CONTRACT_ENV})
        self.loop = ProcessingLoop(policy, self.upstream, first_pause=retry_seconds)

    def start(self) -> None:
        self.loop.start()

    def stop(self) -> None:
        self.loop.stop()
        self.policy.close()
        self.upstream.close()

    async def check(self) -> CheckResult:
        """Readiness: what the loop does, how far behind it is, and how many events it parked."""
        state = self.loop.state
        if state.phase == "processing":
            lag = await call(self.loop.lag)  # reads the store: off the event loop
            parked = len(await call(self.loop.parked))
            doing = (
                "processing"
                if lag == 0
                else f"catching up: {lag} {self.upstream.name} events behind"
            )
            if parked:
                return CheckResult(
                    ok=True, detail=f"degraded: {parked} parked; {doing}", degraded=True
                )
            return CheckResult(ok=True, detail=doing)
        if state.phase == "failed":
            return CheckResult(ok=False, detail=f"failed: {state.error}")
        if state.phase == "retrying":
            since = f"{state.since:%Y-%m-%d %H:%M:%S} UTC"
            return CheckResult(
                ok=not self.required, detail=f"retrying since {since} after {state.error}"
            )
        return CheckResult(ok=not self.required, detail=state.phase)

    def failure(self) -> str | None:
        """Liveness: why the loop cannot recover in this process, if it cannot."""
        state = self.loop.state
        return state.error if state.phase == "failed" else None

    def retry(self, actor: Actor, position: int | None = None) -> list[RetryOutcome]:
        """Process the parked events again, as `actor` (see `ProcessingLoop.retry`)."""
        return self.loop.retry(actor, position)
