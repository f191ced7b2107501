"""decide(state, command, context): the rules of the relay log, as DOMAIN.md states them.

`decide` checks what holds for every command, in this order: the case exists, the actor may
give the command (access.py), the case is open, a baton holder is there when one is needed. Then
it hands the command to the rules of its kind: `progress.py` (entries, levels, measures) or
`sharing.py` (services, baton, consent). Who may act is checked before anything that tells the
state of the case, so a stranger learns nothing of it (not even that it is closed). Each refusal
names its rule; a command already satisfied returns no events.

| rule | holds |
|---|---|
| case-exists | every command but RaiseConcern is for a case that exists (the application answers 404 before) |
| unit-in-directory | a concern is raised only by staff of a unit in the municipality's directory, for that unit (403) |
| consent-covers-the-service | a service joins, is referred to, or takes the baton only under a consent covering it now (in scope, purpose, validity, not lapsed), a legal basis, or a report to it |
| consent-lapse-removes-the-service | (not a refusal) a lapsed consent takes its services off the case at once; a holder among them leaves the baton vacant |
| baton-holder-required | from level 1, decisions wait while nobody holds the baton; the unit leader appoints one |
| report-names-legal-basis | a child-welfare report needs no consent, but always its legal basis |
| report-to-child-welfare | a report goes to a unit the directory lists as child welfare |
| level-exits | 0 -> 1 or close; 1 -> continue, 2, 3, close; 2 -> continue, 1, 3, close; 3 -> continue, 1, 2, close |
| level-1-needs-consent | consent is obtained at level 0: the case reaches level 1 only with a consent in force |
| level-3-needs-coordinator | a coordinator is assigned before the case goes to level 3 |
| decision-carried-out | (not a refusal) a meeting's decision becomes the case's own command, decided as the person who recorded it; refused by any rule here, it is recorded as DecisionRefused naming that rule |
| closed-case-accepts-only-reopen | a closed case takes ReopenCase; also consent facts and child-welfare reports, which nothing may block |
| measure-has-evaluation-date | a measure's (next) evaluation date is not in the past |
| date-within-window | an evaluation date, and the day a wondering conversation was held, lie in the case's window: not before the case was raised, at most `STAFETT_MAX_YEARS_AHEAD` years (default 5) ahead (`stafett_contracts.inputs`) |
| measure-is-open | only a planned, not yet ended measure is evaluated or ended |
| one-baton-holder | a held baton is not appointed anew: it passes only by an accepted handover |
| service-on-the-case | a baton holder, coordinator, handover receiver or measure belongs to a service on the case |
| unit-stays-on-its-case, holder-hands-over-before-leaving | the unit never leaves its own case; the holder's service hands over before it leaves |
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

from typing import cast

from stafett_case.domain import progress, sharing  # noqa: F401 (their rules register with decision)
from stafett_case.domain.access import WHO_MAY_ACT, check_allowed, unit_raising_concern
from stafett_case.domain.commands import (
    CONSENT_FACTS,
    CarryOutDecision,
    CloseCase,
    Command,
    DecideLevel,
    DeEscalate,
    DefineProblem,
    EndMeasure,
    Escalate,
    EvaluateMeasure,
    FileChildWelfareReport,
    OfferBaton,
    PlanMeasure,
    ProposeSystemMeasure,
    RaiseConcern,
    ReopenCase,
    SendReferral,
)
from stafett_case.domain.deciding import decision, next_envelope
from stafett_contracts.case import CaseEvent, ConcernRaised, DecisionKind, DecisionRefused
from stafett_contracts.casefile import CaseFile
from stafett_runtime.domain import Context, NotAllowed, RuleViolation, envelope

NEEDS_BATON_HOLDER = (
    DecideLevel,
    Escalate,
    DeEscalate,
    DefineProblem,
    PlanMeasure,
    EvaluateMeasure,
    EndMeasure,
    SendReferral,
    OfferBaton,
)
ACCEPTED_WHEN_CLOSED = (ReopenCase, CloseCase, FileChildWelfareReport, *CONSENT_FACTS)


def decide(state: CaseFile | None, command: Command, context: Context) -> list[CaseEvent]:
    if isinstance(command, RaiseConcern):
        return _raise_concern(state, command, context)
    case = _existing(state)
    if isinstance(command, CarryOutDecision):
        return _carry_out(case, command, context)
    check_allowed(case, command, context)
    if case.closed and not isinstance(command, ACCEPTED_WHEN_CLOSED):
        raise RuleViolation(
            "closed-case-accepts-only-reopen", "the case is closed: reopen it first"
        )
    if isinstance(command, NEEDS_BATON_HOLDER) and case.level >= 1 and case.holder is None:
        raise RuleViolation(
            "baton-holder-required",
            "nobody holds the baton: the unit leader must appoint a baton holder first",
        )
    return decision(command, case, context)


def refuse_strangers(state: CaseFile | None, command: Command, context: Context) -> None:
    """Refuse, as `decide` does first, an actor who may not give `command` at all: for what is
    checked before deciding (a stale version), so that a stranger learns nothing of the case."""
    if isinstance(command, RaiseConcern):
        unit_raising_concern(context.actor, context.directory)
    else:
        check_allowed(_existing(state), command, context)


def _existing(state: CaseFile | None) -> CaseFile:
    if state is None:
        raise RuleViolation("case-exists", "there is no such case: raise a concern first")
    return state


def _raise_concern(
    state: CaseFile | None, command: RaiseConcern, context: Context
) -> list[CaseEvent]:
    unit = unit_raising_concern(context.actor, context.directory)
    if state is not None:
        if (state.child_id, state.unit, state.concern) == (command.child_id, unit, command.concern):
            return []
        raise RuleViolation("case-already-raised", "this case was raised with another concern")
    return [
        ConcernRaised(
            **envelope(context, command.case_id, 1),
            child_id=command.child_id,
            unit=unit,
            concern=command.concern,
            personal_data=command.personal_data,
            guides=command.guides,
        )
    ]


# A meeting's decision (the meeting policy's CarryOutDecision).


def command_for(decided: CarryOutDecision, state: CaseFile) -> Command:
    """The case command that carries out the meeting's decision on the case as it is now:

    | decision | case command |
    |---|---|
    | close | CloseCase |
    | continue | DecideLevel |
    | move_to_level N | Escalate to N when N is above the case's level, DeEscalate when below, DecideLevel when equal |
    | system_measure | ProposeSystemMeasure, described by the decision's reason |
    """  # noqa: E501 (a table reads best on one line per row)
    # The meeting sealed the reason: it is carried as it is, where a client's text would stand
    # once the API sealed it (commands' private fields hold sealed text after the API).
    reason, participants = cast(str, decided.reason), decided.participants
    view = cast(str | None, decided.child_view)  # the child's view, recorded beside it
    match decided.kind:
        case DecisionKind.CLOSE:
            return CloseCase(reason=reason, participants=participants, child_view=view)
        case DecisionKind.SYSTEM_MEASURE:
            return ProposeSystemMeasure(description=reason)
        case DecisionKind.MOVE_TO_LEVEL if decided.to_level is not None:
            if decided.to_level > state.level:
                return Escalate(
                    to_level=decided.to_level,
                    reason=reason,
                    participants=participants,
                    child_view=view,
                )
            if decided.to_level < state.level:
                return DeEscalate(
                    to_level=decided.to_level,
                    reason=reason,
                    participants=participants,
                    child_view=view,
                )
    return DecideLevel(reason=reason, participants=participants, child_view=view)


def _carry_out(case: CaseFile, decided: CarryOutDecision, context: Context) -> list[CaseEvent]:
    """The decision's command, decided as the person who recorded it, so every rule of the case
    holds as if they had entered it; a refusal, by a rule or of who may act, is recorded as
    `DecisionRefused` naming the rule, so it is on the relay log."""
    try:
        return decide(case, command_for(decided, case), context)
    except (RuleViolation, NotAllowed) as refusal:
        return [
            DecisionRefused(
                **next_envelope(case, context),
                meeting_id=decided.meeting_id,
                decision_id=decided.decision_id,
                kind=decided.kind,
                to_level=decided.to_level,
                rule=refusal.rule or WHO_MAY_ACT,
                reason=str(refusal),
            )
        ]
