"""What the case learns from the meeting service: decisions recorded in meetings, exactly once.

`MeetingPolicy` reads the MEETING stream through a `ProcessingLoop` and writes to the CASE
stream, as `Cases` does (same application name), on the same command path
(`stafett_runtime.commands.Policy`). A decision made in a meeting becomes the case's own
decision, without anyone entering it again: each `DecisionRecorded` is a `CarryOutDecision` on
its case, which the case's rules turn into the matching command (close, continue, up or down the
staircase, a system measure: `domain.rules.command_for`).

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
"""

from __future__ import annotations

from eventsourcing.utils import EnvType

from stafett_case.application import CASE
from stafett_case.domain.commands import CarryOutDecision, Command
from stafett_contracts.envelope import Event, topic_of
from stafett_contracts.meeting import DecisionRecorded
from stafett_runtime.commands import Order, Policy, caused_by
from stafett_runtime.directory import DirectorySource
from stafett_runtime.domain import Context
from stafett_runtime.follower import Follower


def carrying_out(event: DecisionRecorded) -> CarryOutDecision:
    """The case command for a meeting's decision."""
    return CarryOutDecision(
        meeting_id=event.aggregate_id,
        decision_id=event.decision_id,
        kind=event.kind,
        to_level=event.to_level,
        reason=event.reason,
        participants=event.participants,
        child_view=event.child_view,
    )


class MeetingDecisions:
    """The translation of a meeting's decision into its case's command, as its recorder."""

    def __init__(self, directory: DirectorySource) -> None:
        self._directory = directory

    def __call__(self, event: Event) -> Order[Command, Context] | None:
        if not isinstance(event, DecisionRecorded):
            return None
        context = caused_by(event, event.actor, self._directory.current())
        return Order(event.case_id, carrying_out(event), context)


class MeetingPolicy(Policy):
    name = "case"  # writes to the CASE stream, beside Cases
    topics = (topic_of(DecisionRecorded),)  # the rest is the meeting's own

    def __init__(self, env: EnvType | None, directory: DirectorySource) -> None:
        super().__init__(env, CASE, MeetingDecisions(directory))


class MeetingFollower(Follower):
    """Runs the meeting policy's loop, once the MEETING stream exists (the case is ready before)."""

    def __init__(
        self, env: EnvType, directory: DirectorySource, retry_seconds: float = 2.0
    ) -> None:
        policy = MeetingPolicy(env, directory)
        super().__init__(policy, "meeting", env, retry_seconds, required=False)
