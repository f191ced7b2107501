"""The work on a case: log entries, levels (the staircase, `stafett_contracts.staircase`),
measures, the group.

The rules are named in rules.py's table.
"""

from __future__ import annotations

from datetime import date

from stafett_case.domain.commands import (
    CloseCase,
    DecideLevel,
    DeEscalate,
    DefineProblem,
    EndMeasure,
    Escalate,
    EvaluateMeasure,
    FileChildWelfareReport,
    FormResponsibilityGroup,
    NoteBrightSpot,
    PlanMeasure,
    ProposeSystemMeasure,
    RecordChildView,
    RecordWonderingConversation,
    ReopenCase,
    RequestIndividualPlan,
    ShareConcern,
)
from stafett_case.domain.deciding import decision, next_envelope, require_on_the_case
from stafett_contracts.case import (
    BrightSpotNoted,
    CaseClosed,
    CaseEvent,
    CaseReopened,
    ChildViewRecorded,
    ChildWelfareReportFiled,
    ConcernShared,
    DeEscalated,
    Escalated,
    GroupMember,
    IndividualPlanRequested,
    LevelDecided,
    MeasureEnded,
    MeasureEvaluated,
    MeasurePlanned,
    ProblemDefined,
    ResponsibilityGroupFormed,
    SystemMeasureProposed,
    WonderingConversationHeld,
)
from stafett_contracts.casefile import CaseFile
from stafett_contracts.inputs import DateWindow
from stafett_contracts.people import ServiceKind
from stafett_contracts.staircase import (
    LEVEL_EXITS,
    refusal_to_continue,
    refusal_to_go_down,
    refusal_to_go_up,
)
from stafett_runtime.domain import Context, RuleViolation, require_within

# Log entries: anyone on the case records them; they change no rule's outcome.


@decision.register
def _share_concern(command: ShareConcern, state: CaseFile, context: Context) -> list[CaseEvent]:
    return [
        ConcernShared(
            **next_envelope(state, context), shared_with=command.shared_with, note=command.note
        )
    ]


@decision.register
def _record_wondering_conversation(
    command: RecordWonderingConversation, state: CaseFile, context: Context
) -> list[CaseEvent]:
    require_within(DateWindow.of_case(state.raised_at, context.now), "held_on", command.held_on)
    return [
        WonderingConversationHeld(
            **next_envelope(state, context),
            held_on=command.held_on,
            with_guardians=command.with_guardians,
            with_child=command.with_child,
            summary=command.summary,
        )
    ]


@decision.register
def _record_child_view(
    command: RecordChildView, state: CaseFile, context: Context
) -> list[CaseEvent]:
    return [ChildViewRecorded(**next_envelope(state, context), view=command.view, how=command.how)]


@decision.register
def _note_bright_spot(
    command: NoteBrightSpot, state: CaseFile, context: Context
) -> list[CaseEvent]:
    return [BrightSpotNoted(**next_envelope(state, context), note=command.note)]


@decision.register
def _file_child_welfare_report(
    command: FileChildWelfareReport, state: CaseFile, context: Context
) -> list[CaseEvent]:
    """The duty to report overrides consent (rule 4): no consent is asked, a legal basis is;
    and it goes to child welfare, as the directory knows it."""
    if not command.legal_basis.strip():
        raise RuleViolation(
            "report-names-legal-basis", "a child-welfare report must name its legal basis"
        )
    child_welfare = context.directory.of_kind(ServiceKind.CHILD_WELFARE)
    if command.reported_to not in child_welfare:
        would_do = " or ".join(child_welfare) or "none: the directory lists no child welfare unit"
        raise RuleViolation(
            "report-to-child-welfare",
            f"{command.reported_to} is not child welfare; a report goes to {would_do}",
        )
    return [
        ChildWelfareReportFiled(
            **next_envelope(state, context),
            reported_to=command.reported_to,
            legal_basis=command.legal_basis,
            grounds=command.grounds,
        )
    ]


# Levels: the staircase (`stafett_contracts.staircase`).


@decision.register
def _decide_level(command: DecideLevel, state: CaseFile, context: Context) -> list[CaseEvent]:
    refusal = refusal_to_continue(state.level)
    if refusal is not None:
        raise RuleViolation(LEVEL_EXITS, refusal)
    return [
        LevelDecided(
            **next_envelope(state, context),
            level=state.level,
            reason=command.reason,
            participants=command.participants,
            child_view=command.child_view,
        )
    ]


@decision.register
def _escalate(command: Escalate, state: CaseFile, context: Context) -> list[CaseEvent]:
    if command.to_level == state.level:
        return []
    refusal = refusal_to_go_up(state.level, command.to_level)
    if refusal is not None:
        raise RuleViolation(LEVEL_EXITS, refusal)
    if command.to_level == 1 and not state.has_active_consent(context.now):
        raise RuleViolation(
            "level-1-needs-consent", "consent is obtained at level 0: none is in force"
        )
    if command.to_level == 3 and state.coordinator is None:
        raise RuleViolation(
            "level-3-needs-coordinator", "assign a coordinator before going to level 3"
        )
    return [
        Escalated(
            **next_envelope(state, context),
            from_level=state.level,
            to_level=command.to_level,
            reason=command.reason,
            participants=command.participants,
            child_view=command.child_view,
        )
    ]


@decision.register
def _de_escalate(command: DeEscalate, state: CaseFile, context: Context) -> list[CaseEvent]:
    if command.to_level == state.level:
        return []
    refusal = refusal_to_go_down(state.level, command.to_level)
    if refusal is not None:
        raise RuleViolation(LEVEL_EXITS, refusal)
    return [
        DeEscalated(
            **next_envelope(state, context),
            from_level=state.level,
            to_level=command.to_level,
            reason=command.reason,
            participants=command.participants,
            child_view=command.child_view,
        )
    ]


@decision.register
def _close_case(command: CloseCase, state: CaseFile, context: Context) -> list[CaseEvent]:
    if state.closed:
        return []
    return [
        CaseClosed(
            **next_envelope(state, context),
            at_level=state.level,
            reason=command.reason,
            participants=command.participants,
            child_view=command.child_view,
        )
    ]


@decision.register
def _reopen_case(command: ReopenCase, state: CaseFile, context: Context) -> list[CaseEvent]:
    if not state.closed:
        return []
    return [CaseReopened(**next_envelope(state, context), reason=command.reason)]


# Problem and measures (rule 6).


@decision.register
def _define_problem(command: DefineProblem, state: CaseFile, context: Context) -> list[CaseEvent]:
    return [
        ProblemDefined(
            **next_envelope(state, context),
            description=command.description,
            with_guardians=command.with_guardians,
        )
    ]


@decision.register
def _plan_measure(command: PlanMeasure, state: CaseFile, context: Context) -> list[CaseEvent]:
    planned = state.measures.get(command.measure_id)
    if planned is not None:
        if (planned.description, planned.responsible, planned.service) == (
            command.description,
            command.responsible,
            command.service,
        ):
            return []
        raise RuleViolation("measure-id-taken", "another measure has this id")
    if not command.responsible.strip():
        raise RuleViolation("measure-has-responsible", "a measure needs a responsible person")
    _evaluation_in_time(state, "evaluation_date", command.evaluation_date, context)
    require_on_the_case(state, command.service)
    return [
        MeasurePlanned(
            **next_envelope(state, context),
            measure_id=command.measure_id,
            description=command.description,
            responsible=command.responsible,
            service=command.service,
            evaluation_date=command.evaluation_date,
        )
    ]


@decision.register
def _evaluate_measure(
    command: EvaluateMeasure, state: CaseFile, context: Context
) -> list[CaseEvent]:
    _open_measure(state, command)
    if command.next_evaluation_date is not None:
        next_date = command.next_evaluation_date
        _evaluation_in_time(state, "next_evaluation_date", next_date, context)
    return [
        MeasureEvaluated(
            **next_envelope(state, context),
            measure_id=command.measure_id,
            outcome=command.outcome,
            notes=command.notes,
            next_evaluation_date=command.next_evaluation_date,
        )
    ]


@decision.register
def _end_measure(command: EndMeasure, state: CaseFile, context: Context) -> list[CaseEvent]:
    _open_measure(state, command)
    return [
        MeasureEnded(
            **next_envelope(state, context), measure_id=command.measure_id, reason=command.reason
        )
    ]


def _open_measure(state: CaseFile, command: EvaluateMeasure | EndMeasure) -> None:
    measure = state.measures.get(command.measure_id)
    if measure is None or measure.ended:
        state_of = "has ended" if measure else "was never planned"
        raise RuleViolation("measure-is-open", f"measure {command.measure_id} {state_of}")


def _evaluation_in_time(
    state: CaseFile, field: str, evaluation_date: date, context: Context
) -> None:
    """Not in the past, and in the case's date window (not too far ahead)."""
    if evaluation_date < context.now.date():
        raise RuleViolation(
            "measure-has-evaluation-date",
            f"the evaluation date {evaluation_date} is in the past",
        )
    require_within(DateWindow.of_case(state.raised_at, context.now), field, evaluation_date)


@decision.register
def _form_responsibility_group(
    command: FormResponsibilityGroup, state: CaseFile, context: Context
) -> list[CaseEvent]:
    members = tuple(
        GroupMember(person=member.person, service=member.service, task=member.task)
        for member in command.members
    )
    return [ResponsibilityGroupFormed(**next_envelope(state, context), members=members)]


@decision.register
def _request_individual_plan(
    command: RequestIndividualPlan, state: CaseFile, context: Context
) -> list[CaseEvent]:
    return [
        IndividualPlanRequested(
            **next_envelope(state, context),
            requested_by_guardian=command.requested_by_guardian,
            note=command.note,
        )
    ]


@decision.register
def _propose_system_measure(
    command: ProposeSystemMeasure, state: CaseFile, context: Context
) -> list[CaseEvent]:
    return [
        SystemMeasureProposed(
            **next_envelope(state, context), unit=state.unit, description=command.description
        )
    ]
