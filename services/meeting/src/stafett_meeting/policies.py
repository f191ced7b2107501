"""What the meeting service learns from the case service: each case's roster, exactly once.

`RosterPolicy` reads the CASE stream through a `ProcessingLoop` and writes `CaseRosterNoted` to
the MEETING stream (same application name as `Meetings`), whenever a case event changes who
takes part in the case or under what: the case's start, its level, services joining and
leaving, the baton holder and coordinator, consents noted and lapsed, legal bases, closing and
reopening (domain/roster.py). Its position in the CASE stream is written in the same atomic
batch as the roster, so a redelivered case event notes nothing twice.

Each roster event is decided as of the case event's `occurred_at`, caused by it and in its
correlation, by the system actor of the meeting service.
"""

from __future__ import annotations

import threading
from typing import Any

import structlog
from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.utils import EnvType

from stafett_contracts.case import CaseEvent
from stafett_contracts.identity import Actor, Role
from stafett_meeting.application import meeting_history
from stafett_meeting.domain.roster import fold_roster, note
from stafett_runtime.contracts import CONTRACT_ENV, ContractProcessApplication
from stafett_runtime.domain import Context
from stafett_runtime.health import CheckResult
from stafett_runtime.processing import ProcessingLoop, Upstream
from stafett_runtime.service import call

POLICY_ACTOR = Actor(person="roster-policy", role=Role.SYSTEM, service="meeting")

log = structlog.get_logger(__name__)


class RosterPolicy(ContractProcessApplication):
    name = "meeting"  # writes to the MEETING stream, beside Meetings

    def policy(
        self, domain_event: DomainEventProtocol[Any], processing_event: ProcessingEvent[Any]
    ) -> None:
        if not isinstance(domain_event, CaseEvent):
            log.info("event not of a case", event_type=type(domain_event).__name__)
            return
        context = Context(
            actor=POLICY_ACTOR,
            now=domain_event.occurred_at,
            correlation_id=domain_event.correlation_id,
            causation_id=str(domain_event.event_id),
        )
        roster = fold_roster(meeting_history(self, domain_event.aggregate_id))
        processing_event.collect_events(*note(roster, domain_event, context))


class CaseFollower:
    """Runs the roster policy's loop, once the CASE stream exists.

    The case service makes its stream; services start in any order, so until it exists the
    follower tries again every `retry_seconds`, and the service is not ready meanwhile.
    """

    def __init__(self, env: EnvType, retry_seconds: float = 2.0) -> None:
        self.policy = RosterPolicy(env)
        self.upstream = Upstream.named("case", {**env, **CONTRACT_ENV})
        self.loop: ProcessingLoop | None = None
        self._retry_seconds = retry_seconds
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._start_loop, name="case-follower")

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
        if self.loop is not None and self.loop.running:
            lag = await call(self.loop.lag)  # reads the store: off the event loop
            return CheckResult(ok=True, detail=f"{lag} case events behind")
        error = self.loop.error if self.loop is not None else "waiting for the CASE stream"
        return CheckResult(ok=False, detail=f"roster policy not running: {error}")

    def _start_loop(self) -> None:
        while not self._stopping.is_set():
            loop = ProcessingLoop(self.policy, self.upstream)
            try:
                loop.start()
            except Exception as error:
                log.warning("roster policy waits for its upstream", reason=str(error))
                self._stopping.wait(self._retry_seconds)
                continue
            self.loop = loop
            return
