"""Who may do what on a case (DOMAIN.md, "People and roles").

A token gives an organisational role and the service acted for; the case roles (baton holder,
coordinator) follow from the case's events. Anyone else, such as an employee of a service that
is not on the case, a guardian or an auditor, gets `NotAllowed`.

| command | who may |
|---|---|
| RaiseConcern | an employee or unit leader, for the unit they act for |
| ShareConcern, RecordWonderingConversation, RecordChildView, NoteBrightSpot, FileChildWelfareReport | anyone acting for a service on the case (the unit is always on it) |
| DecideLevel, Escalate, DeEscalate, DefineProblem, PlanMeasure, EvaluateMeasure, EndMeasure, SendReferral, AssignCoordinator, FormResponsibilityGroup, RequestIndividualPlan, ProposeSystemMeasure, CloseCase, ReopenCase | a decider: the baton holder, the unit leader (role unit_leader of the case's unit) or the coordinator |
| JoinAgency | a decider, or someone of the joining service once the case was referred to it |
| LeaveAgency | a decider, or someone of the leaving service |
| AppointBatonHolder | the unit leader |
| OfferBaton | the baton holder |
| AcceptBaton | the person offered the baton (or its holder already, which changes nothing) |
| NoteConsent, LapseConsent, NoteLegalBasis | the system: the consent policy |
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from stafett_case.domain.case import Case, Post
from stafett_case.domain.commands import (
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
    LapseConsent,
    LeaveAgency,
    NoteBrightSpot,
    NoteConsent,
    NoteLegalBasis,
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
from stafett_contracts.identity import Actor, Role
from stafett_runtime.domain import NotAllowed

WORKS_IN_A_SERVICE = (Role.EMPLOYEE, Role.UNIT_LEADER)


def acts_for_case_service(case: Case, actor: Actor) -> bool:
    return actor.role in WORKS_IN_A_SERVICE and actor.service in case.services


def is_unit_leader(case: Case, actor: Actor) -> bool:
    return actor.role == Role.UNIT_LEADER and actor.service == case.unit


def holds(post: Post | None, actor: Actor) -> bool:
    return (
        post is not None
        and actor.role in WORKS_IN_A_SERVICE
        and (actor.person, actor.service) == (post.person, post.service)
    )


def is_decider(case: Case, actor: Actor) -> bool:
    return (
        holds(case.holder, actor) or is_unit_leader(case, actor) or holds(case.coordinator, actor)
    )


Permit = Callable[[Case, Any, Actor], bool]


def _participant(case: Case, _: Command, actor: Actor) -> bool:
    return acts_for_case_service(case, actor)


def _decider(case: Case, _: Command, actor: Actor) -> bool:
    return is_decider(case, actor)


def _joiner(case: Case, command: JoinAgency, actor: Actor) -> bool:
    referred = command.service in case.referrals and actor.service == command.service
    return is_decider(case, actor) or (actor.role in WORKS_IN_A_SERVICE and referred)


def _leaver(case: Case, command: LeaveAgency, actor: Actor) -> bool:
    own = actor.service == command.service and acts_for_case_service(case, actor)
    return is_decider(case, actor) or own


def _unit_leader(case: Case, _: Command, actor: Actor) -> bool:
    return is_unit_leader(case, actor)


def _holder(case: Case, _: Command, actor: Actor) -> bool:
    return holds(case.holder, actor)


def _offered(case: Case, _: Command, actor: Actor) -> bool:
    return holds(case.offer, actor) or holds(case.holder, actor)


def _system(_: Case, __: Command, actor: Actor) -> bool:
    return actor.role == Role.SYSTEM


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
    **dict.fromkeys((NoteConsent, LapseConsent, NoteLegalBasis), (_system, "the consent policy")),
}


def check_allowed(case: Case, command: Command, actor: Actor) -> None:
    """Raise NotAllowed unless `actor` may give `command` on `case`."""
    permit, who = _PERMITS[type(command)]
    if not permit(case, command, actor):
        raise NotAllowed(f"only {who} may {type(command).__name__} on this case")
