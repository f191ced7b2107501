"""What the case learns from the meeting service: decisions recorded in meetings, exactly once.

`MeetingPolicy` reads the MEETING stream through a `ProcessingLoop` and writes to the CASE
stream, as `Cases` does (same application name). A decision made in a meeting becomes the
case's own decision, without anyone entering it again:

| DecisionRecorded kind | case command |
|---|---|
| close | CloseCase |
| continue | DecideLevel |
| move_to_level N | Escalate to N when N is above the case's level, DeEscalate when below, DecideLevel when equal |
| system_measure | ProposeSystemMeasure, described by the decision's reason |

The command is decided by the person who recorded the decision (the event's actor), as of the
decision's `occurred_at`, caused by it and in its correlation, with the municipality directory as
it stands (who leads the case's unit), so the case's rules (who may decide, the staircase,
consent for level 1, a coordinator for level 3) hold as if that person had entered it.

A decision the case refuses, by one of its rules (`RuleViolation`) or because the person who
recorded it may not give that command (`NotAllowed`, rule `who-may-act`), is recorded as
`DecisionRefused` on the case: the decision, the rule and the refusal in words, as that person
and caused by the decision, so it is on the relay log and notify tells them. Like a decision
carried out, it is written with its tracking record, so a redelivered decision records nothing
twice. A decision for a case the case service does not know is logged and skipped: there is no
case to record it on. Every other meeting event is not the case's.
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

from typing import Any

import structlog
from eventsourcing.application import ProcessingEvent
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.utils import EnvType

from stafett_case.application import case_history
from stafett_case.domain import decide
from stafett_case.domain.access import WHO_MAY_ACT
from stafett_case.domain.commands import (
    CloseCase,
    Command,
    DecideLevel,
    DeEscalate,
    Escalate,
    ProposeSystemMeasure,
)
from stafett_case.domain.deciding import next_envelope
from stafett_contracts.case import CaseEvent, DecisionRefused
from stafett_contracts.casefile import CaseFile, fold
from stafett_contracts.envelope import topic_of
from stafett_contracts.meeting import DecisionKind, DecisionRecorded
from stafett_runtime.contracts import ContractProcessApplication
from stafett_runtime.directory import DirectorySource
from stafett_runtime.domain import Context, NotAllowed, RuleViolation
from stafett_runtime.follower import Follower

log = structlog.get_logger(__name__)


class MeetingPolicy(ContractProcessApplication):
    name = "case"  # writes to the CASE stream, beside Cases
    topics = (topic_of(DecisionRecorded),)  # the rest is the meeting's own

    def __init__(self, env: EnvType | None, directory: DirectorySource) -> None:
        super().__init__(env)
        self._directory = directory

    def policy(
        self, domain_event: DomainEventProtocol[Any], processing_event: ProcessingEvent[Any]
    ) -> None:
        if not isinstance(domain_event, DecisionRecorded):
            return
        event = domain_event
        history = case_history(self, event.case_id)
        state = fold(history)
        if state is None:
            log.warning("decision for no known case skipped", case_id=event.case_id)
            return
        context = Context(
            actor=event.actor,
            now=event.occurred_at,
            correlation_id=event.correlation_id,
            causation_id=str(event.event_id),
            directory=self._directory.current(),
        )
        processing_event.collect_events(*carry_out(event, state, context))


def carry_out(event: DecisionRecorded, state: CaseFile, context: Context) -> list[CaseEvent]:
    """The case's events for the meeting's decision: its command's, or, if the case refuses the
    command, the `DecisionRefused` that names the rule."""
    try:
        return decide(state, command_for(event, state), context)
    except (RuleViolation, NotAllowed) as refusal:
        rule = refusal.rule or WHO_MAY_ACT
        log.info("case refused a meeting's decision", case_id=state.id, rule=rule)
        refused = DecisionRefused(
            **next_envelope(state, context),
            meeting_id=event.aggregate_id,
            decision_id=event.decision_id,
            kind=event.kind,
            to_level=event.to_level,
            rule=rule,
            reason=str(refusal),
        )
        return [refused]


def command_for(event: DecisionRecorded, state: CaseFile) -> Command:
    """The case command that carries out the meeting's decision on the case as it is now."""
    reason, participants = event.reason, event.participants
    match event.kind:
        case DecisionKind.CLOSE:
            return CloseCase(reason=reason, participants=participants)
        case DecisionKind.SYSTEM_MEASURE:
            return ProposeSystemMeasure(description=reason)
        case DecisionKind.MOVE_TO_LEVEL if event.to_level is not None:
            if event.to_level > state.level:
                return Escalate(to_level=event.to_level, reason=reason, participants=participants)
            if event.to_level < state.level:
                return DeEscalate(to_level=event.to_level, reason=reason, participants=participants)
    return DecideLevel(reason=reason, participants=participants)


class MeetingFollower(Follower):
    """Runs the meeting policy's loop, once the MEETING stream exists (the case is ready before)."""

    def __init__(
        self, env: EnvType, directory: DirectorySource, retry_seconds: float = 2.0
    ) -> None:
        policy = MeetingPolicy(env, directory)
        super().__init__(policy, "meeting", env, retry_seconds, required=False)
