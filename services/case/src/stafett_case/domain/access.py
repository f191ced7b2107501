"""Who may do what on a case (DOMAIN.md, "People and roles").

A token gives an organisational role and the service acted for; the municipality directory says
which units exist and who leads each; the case roles (baton holder, coordinator) follow from the
case's events. Anyone else, such as an employee of a service that is not on the case, a guardian
or an auditor, gets `NotAllowed` naming the rule `who-may-act` (this table).

| command | who may |
|---|---|
| RaiseConcern | an employee or unit leader, for the unit they act for, which is in the directory (`unit-in-directory`) |
| ShareConcern, RecordWonderingConversation, RecordChildView, NoteBrightSpot, FileChildWelfareReport | anyone acting for a service on the case (the unit is always on it) |
| DecideLevel, Escalate, DeEscalate, DefineProblem, PlanMeasure, EvaluateMeasure, EndMeasure, SendReferral, AssignCoordinator, FormResponsibilityGroup, RequestIndividualPlan, ProposeSystemMeasure, CloseCase, ReopenCase | a decider: the baton holder, the unit leader or the coordinator |
| JoinAgency | a decider, or someone of the joining service once the case was referred to it |
| LeaveAgency | a decider, or someone of the leaving service |
| AppointBatonHolder | the unit leader |
| OfferBaton | the baton holder |
| AcceptBaton | the person offered the baton (or its holder already, which changes nothing) |
| NoteConsent, NoteScopeChange, LapseConsent, NoteLegalBasis | the system: the consent policy |
| CarryOutDecision | whoever may give the command it becomes: the meeting policy gives it as the person who recorded the decision (rules.py) |

The unit leader is the person the directory names as leader of the case's unit, acting for that
unit: a token's role `unit_leader` alone makes nobody the leader of a unit. Who decides (the
baton holder, the unit leader, the coordinator) is the case's own answer, `CaseFile.decided_by`,
which the meeting service asks too.
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stafett_case.domain.commands import (
    CONSENT_FACTS,
    AcceptBaton,
    AppointBatonHolder,
    AssignCoordinator,
    CloseCase,
    Command,
    DecideLevel,
    DeEscalate,
    DefineProblem,
    EndMeasure,
    Escalate,
    EvaluateMeasure,
    FileChildWelfareReport,
    FormResponsibilityGroup,
    JoinAgency,
    LeaveAgency,
    NoteBrightSpot,
    OfferBaton,
    PlanMeasure,
    ProposeSystemMeasure,
    RecordChildView,
    RecordWonderingConversation,
    ReopenCase,
    RequestIndividualPlan,
    SendReferral,
    ShareConcern,
)
from stafett_contracts.access import UNIT_IN_DIRECTORY
from stafett_contracts.casefile import CaseFile, holds
from stafett_contracts.identity import STAFF, Actor, Role
from stafett_contracts.people import Directory
from stafett_runtime.domain import Context, NotAllowed

WHO_MAY_ACT = "who-may-act"  # the rule of the table above, as a refusal names it


def unit_raising_concern(actor: Actor, directory: Directory) -> str:
    """The unit `actor` raises a concern for: their own, which must be in the directory."""
    if actor.role not in STAFF or actor.service is None:
        raise NotAllowed("only an employee or unit leader raises a concern, for their own unit")
    if directory.unit(actor.service) is None:
        raise NotAllowed(
            f"the unit {actor.service} is not in the municipality's directory",
            rule=UNIT_IN_DIRECTORY,
        )
    return actor.service


def acts_for_case_service(case: CaseFile, actor: Actor) -> bool:
    return actor.role in STAFF and actor.service in case.services


Permit = Callable[[CaseFile, Any, Context], bool]


def _participant(case: CaseFile, _: Command, context: Context) -> bool:
    return acts_for_case_service(case, context.actor)


def _decider(case: CaseFile, _: Command, context: Context) -> bool:
    return case.decided_by(context.actor, context.directory)


def _joiner(case: CaseFile, command: JoinAgency, context: Context) -> bool:
    actor = context.actor
    referred = command.service in case.referrals and actor.service == command.service
    return case.decided_by(actor, context.directory) or (actor.role in STAFF and referred)


def _leaver(case: CaseFile, command: LeaveAgency, context: Context) -> bool:
    actor = context.actor
    own = actor.service == command.service and acts_for_case_service(case, actor)
    return case.decided_by(actor, context.directory) or own


def _unit_leader(case: CaseFile, _: Command, context: Context) -> bool:
    return case.led_by(context.actor, context.directory)


def _holder(case: CaseFile, _: Command, context: Context) -> bool:
    return holds(case.holder, context.actor)


def _offered(case: CaseFile, _: Command, context: Context) -> bool:
    return holds(case.offer, context.actor) or holds(case.holder, context.actor)


def _system(_: CaseFile, __: Command, context: Context) -> bool:
    return context.actor.role == Role.SYSTEM


_DECIDERS = "the baton holder, the unit leader or the coordinator"
_PERMITS: dict[type[Command], tuple[Permit, str]] = {
    **dict.fromkeys(
        (
            ShareConcern,
            RecordWonderingConversation,
            RecordChildView,
            NoteBrightSpot,
            FileChildWelfareReport,
        ),
        (_participant, "someone acting for a service on the case"),
    ),
    **dict.fromkeys(
        (
            DecideLevel,
            Escalate,
            DeEscalate,
            DefineProblem,
            PlanMeasure,
            EvaluateMeasure,
            EndMeasure,
            SendReferral,
            AssignCoordinator,
            FormResponsibilityGroup,
            RequestIndividualPlan,
            ProposeSystemMeasure,
            CloseCase,
            ReopenCase,
        ),
        (_decider, _DECIDERS),
    ),
    JoinAgency: (_joiner, f"{_DECIDERS}, or the service the case was referred to,"),
    LeaveAgency: (_leaver, f"{_DECIDERS}, or the leaving service itself,"),
    AppointBatonHolder: (_unit_leader, "the unit leader"),
    OfferBaton: (_holder, "the baton holder"),
    AcceptBaton: (_offered, "the person offered the baton"),
    **dict.fromkeys(CONSENT_FACTS, (_system, "the consent policy")),
}


def check_allowed(case: CaseFile, command: Command, context: Context) -> None:
    """Raise NotAllowed unless the context's actor may give `command` on `case`."""
    permit, who = _PERMITS[type(command)]
    if not permit(case, command, context):
        raise NotAllowed(f"only {who} may {type(command).__name__} on this case", rule=WHO_MAY_ACT)
