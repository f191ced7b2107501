"""A step's form, drawn from its action guide's template (docs/guides.md).

A guide's form that `fills` a case event is a template of that event's fields: each with its
label in bokmål and English, its type and whether it is required. Where the step a case is at
records an event that one of the case service's commands records, the case page draws that
command's form from the template: the template's fields, labels and types, posted to the same
command by the same field names (the guide parser has checked them against the event's fields).

A template the command cannot take as it is (a field the command does not have, a type the
command's field does not take, a field the command requires that the template lacks) is not
drawn: the page offers the web app's own form for the command instead, and says why in the log,
once.
"""

from __future__ import annotations

import re
from typing import Literal

import msgspec
import structlog

from stafett_contracts.guides import FieldType, FormField, GuideProgress, Phrase
from stafett_contracts.guides import Form as Template
from stafett_web.forms import CASE_FORMS, Field, Form

log = structlog.get_logger(__name__)

# The command of the case service that records each event a step can record
# (POST /cases/{id}/<command>, docs/openapi/case.json).
RECORDED_BY: dict[str, str] = {
    "ConcernShared": "share-concern",
    "WonderingConversationHeld": "record-wondering-conversation",
    "ChildViewRecorded": "record-child-view",
    "BrightSpotNoted": "note-bright-spot",
    "ProblemDefined": "define-problem",
    "MeasurePlanned": "plan-measure",
    "MeasureEvaluated": "evaluate-measure",
    "MeasureEnded": "end-measure",
    "LevelDecided": "decide-level",
    "Escalated": "escalate",
    "DeEscalated": "de-escalate",
    "ReferralSent": "send-referral",
    "AgencyJoined": "join-agency",
    "AgencyLeft": "leave-agency",
    "ResponsibilityGroupFormed": "form-responsibility-group",
    "IndividualPlanRequested": "request-individual-plan",
    "SystemMeasureProposed": "propose-system-measure",
    "ChildWelfareReportFiled": "file-child-welfare-report",
    "CaseClosed": "close-case",
    "CaseReopened": "reopen-case",
}

Input = Literal["text", "textarea", "date", "bool", "unit", "measure", "choice"]

# How a template's field is shown, and the kinds of command field that take what it gives.
INPUTS: dict[FieldType, tuple[Input, tuple[str, ...]]] = {
    FieldType.TEXT: ("text", ("text", "textarea")),
    FieldType.LONG_TEXT: ("textarea", ("textarea", "text")),
    FieldType.DATE: ("date", ("date",)),
    FieldType.BOOL: ("bool", ("bool",)),
    FieldType.PERSON: ("text", ("text",)),
    FieldType.UNIT: ("unit", ("unit",)),
    FieldType.MEASURE: ("measure", ("given_id",)),  # one of the case's open measures
    FieldType.CHOICE: ("choice", ("choice",)),
}


class DrawnField(msgspec.Struct, frozen=True, kw_only=True):
    """One field as the template has it, sent as the command's field of the same name."""

    name: str
    input: Input
    label: Phrase
    required: bool
    choices: tuple[str, ...] = ()
    choice_labels: str | None = None  # the message key prefix of the choices' words
    max_length: int | None = None


class DrawnForm(msgspec.Struct, frozen=True, kw_only=True):
    """A command's form drawn from a guide's template. `key` names the template
    ("kindergarten/1/conversation-guardians"), so that a refused form is drawn again."""

    key: str
    id: str  # the template's
    title: Phrase
    command: Form
    fields: tuple[DrawnField, ...]
    hidden: tuple[str, ...] = ()  # the ids the page makes for the command (a new measure's)


class MismatchError(ValueError):
    """Why a template cannot be drawn as its command's form."""


def draw(template: Template, key: str) -> DrawnForm:
    """The command's form drawn from `template`; MismatchError with the reason if it cannot be."""
    command = CASE_FORMS.get(RECORDED_BY.get(template.fills or "", ""))
    if command is None:
        raise MismatchError(f"no command of the web app records {template.fills}")
    takes = {f.name: f for f in command.fields}
    fields = tuple(_field(field, takes) for field in template.fields)
    named = {f.name for f in fields}
    lacking = [f.name for f in command.fields if f.required and f.name not in named]
    if lacking:
        raise MismatchError(f"the command {command.name} needs {', '.join(lacking)}")
    return DrawnForm(
        key=key,
        id=template.id,
        title=template.title,
        command=command,
        fields=fields,
        hidden=tuple(f.name for f in command.fields if f.kind == "new_id"),
    )


def _field(field: FormField, takes: dict[str, Field]) -> DrawnField:
    taken = takes.get(field.key)
    if taken is None:
        raise MismatchError(f"the command does not take the field {field.key}")
    shown, fits = INPUTS[field.type]
    if taken.kind not in fits:
        raise MismatchError(
            f"the field {field.key} is {field.type}; the command takes {taken.kind}"
        )
    if field.type == FieldType.CHOICE and not set(field.choices) <= set(taken.choices):
        raise MismatchError(f"the command takes {field.key} as one of {', '.join(taken.choices)}")
    return DrawnField(
        name=field.key,
        input=shown,
        label=field.label,
        required=field.required or taken.required,
        choices=field.choices,
        choice_labels=taken.label,
        max_length=taken.max_length,
    )


def step_forms(
    progress: GuideProgress | None, templates: dict[str, Template]
) -> list[DrawnForm | Form]:
    """The forms of the step a case is at: each of its tools whose template fills the event
    the step records, drawn from the template; where one cannot be drawn, the command's own
    form instead (and the log says why, once)."""
    step = progress.current if progress is not None else None
    if progress is None or step is None or step.records is None:
        return []
    forms: list[DrawnForm | Form] = []
    for tool in step.tools:
        template = templates.get(tool)
        if template is None or template.fills != step.records:
            continue
        key = f"{progress.service}/{progress.version}/{template.id}"
        try:
            forms.append(draw(template, key))
        except MismatchError as mismatch:
            _tell(key, mismatch)
            command = CASE_FORMS.get(RECORDED_BY.get(step.records, ""))
            if command is not None and command not in forms:
                forms.append(command)
    return forms


def drawn_again(key: str, templates: dict[str, Template]) -> DrawnForm | None:
    """The form `key` names, drawn again to show a refused form as it was sent; None if the
    guide has no such template or it cannot be drawn."""
    template = templates.get(key.rsplit("/", 1)[-1])
    if template is None:
        return None
    try:
        return draw(template, key)
    except MismatchError as mismatch:
        _tell(key, mismatch)
        return None


_KEY = re.compile(r"([a-z_]{1,40})/([0-9]{1,6})/[a-z0-9][a-z0-9-]{0,63}")


def guide_of(key: str) -> tuple[str, int] | None:
    """The guide (service, version) a drawn form's key names, if it is a key at all."""
    found = _KEY.fullmatch(key)
    return (found.group(1), int(found.group(2))) if found else None


_told: set[str] = set()  # the templates already logged as not drawn: each is told once


def _tell(key: str, mismatch: MismatchError) -> None:
    if key not in _told:
        _told.add(key)
        log.warning("guide_form_not_drawn", template=key, reason=str(mismatch))
