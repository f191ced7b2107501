"""Action guides (handlingsveiledere): per service and level, the steps of the work on a case.

A municipality's guide for one kind of service (kindergarten, school, health clinic ...) says,
for each BTI level, the steps in order (what, how, who, with which tools), and the decision that
ends the level with its exits (A close, B continue, C refer ...); and the forms its tools are,
as structured templates whose fields fill the event a step records (the wondering note fills
`ConcernShared`, the measures log `MeasurePlanned` ...).

Guides are configuration, versioned. Stafett ships the guides the seeds describe (Norwegian
bokmål with English) as version 1 of each service's guide (`guide_data/*.toml`); an
administrator publishes a new version (`GuidePublished`, in the case service's stream), and a
case follows the versions in force when it was opened (`ConcernRaised.guides`). Publishing never
changes a case opened under an older version.

`parse` reads a guide file (TOML, or the same as JSON) and refuses one that does not parse, or
that names an unknown level, exit, form, role or event, with the line and the reason
(`GuideError`). `progress(guide, case)` is the one answer to "where is this case in its guide":
the step it is at, the steps that come next and who does each, and the steps passed without
their event (skipped).
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable, Mapping
from enum import StrEnum
from importlib import resources
from typing import Annotated, Any, ClassVar, Literal
from uuid import UUID, uuid5

import msgspec

from stafett_contracts import case as case_events
from stafett_contracts.access import Access, case_shown
from stafett_contracts.case import CaseEvent
from stafett_contracts.casefile import CaseFile
from stafett_contracts.envelope import Event
from stafett_contracts.people import Directory, ServiceKind
from stafett_contracts.staircase import exits as staircase_exits

GUIDES_NAMESPACE = UUID("0b6c2d4e-8f3a-4c1b-9d7e-5a2f6e8c1b30")
GUIDE_BOOK_ID = uuid5(GUIDES_NAMESPACE, "the municipality's action guides")
DEFAULT_VERSION = 1  # the guides Stafett ships; the first one a municipality publishes is 2
GUIDE_IS_VALID = "guide-is-valid"  # the rule a refused guide is refused by

Id = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9-]*$")]
Line = Annotated[str, msgspec.Meta(min_length=1, max_length=2_000)]
FieldName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_-]*$")]


class Phrase(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A text in Norwegian bokmål and English."""

    nb: Line
    en: Line


class Who(StrEnum):
    """Who does a step: a role on the case or in the unit, as a guide names it."""

    EMPLOYEE = "employee"  # any employee of the unit (alle medarbeidere)
    BATON_HOLDER = "baton_holder"  # stafettholder (often the pedagogical leader or teacher)
    UNIT_LEADER = "unit_leader"  # styrer, rektor, leder
    TEAM = "team"  # the unit's team with the guardians (ped.team, ressursteam)
    MEASURE_OWNER = "measure_owner"  # whoever is responsible for a measure
    MEETING = "meeting"  # the interdisciplinary meeting or responsibility group, with guardians
    COORDINATOR = "coordinator"


WHO_PHRASES: dict[Who, Phrase] = {
    Who.EMPLOYEE: Phrase(nb="alle medarbeidere", en="every employee"),
    Who.BATON_HOLDER: Phrase(nb="stafettholderen", en="the baton holder"),
    Who.UNIT_LEADER: Phrase(nb="lederen av enheten", en="the unit leader"),
    Who.TEAM: Phrase(nb="teamet, sammen med foresatte", en="the team, with the guardians"),
    Who.MEASURE_OWNER: Phrase(nb="den som er ansvarlig for tiltaket", en="the measure's owner"),
    Who.MEETING: Phrase(
        nb="det tverrfaglige møtet, med foresatte",
        en="the interdisciplinary meeting, with guardians",
    ),
    Who.COORDINATOR: Phrase(nb="koordinatoren", en="the coordinator"),
}


class FieldType(StrEnum):
    TEXT = "text"  # one line
    LONG_TEXT = "long_text"
    DATE = "date"
    BOOL = "bool"
    PERSON = "person"  # a person id
    UNIT = "unit"  # a unit of the directory
    MEASURE = "measure"  # one of the case's open measures
    CHOICE = "choice"  # one of `choices`


class FormField(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One field of a form: `key` is the field of the event the form fills, when it fills one."""

    key: FieldName
    label: Phrase
    type: FieldType = FieldType.TEXT
    required: bool = False
    choices: tuple[str, ...] = ()


class Form(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A tool of a step, as a template: its fields, and the case event they fill (none for a
    form filled elsewhere, such as the consent form or the meeting template)."""

    id: Id
    title: Phrase
    fills: str | None = None  # a case event's type: "ConcernShared"
    fields: tuple[FormField, ...] = ()


class Step(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One step of a level: what, how, who, the tools (form ids), and the case event that
    records it (none for a step no event records, such as carrying out measures)."""

    id: Id
    what: Phrase
    how: Phrase | None = None
    who: Who
    tools: tuple[Id, ...] = ()
    records: str | None = None


ExitTo = Literal["close", "continue", "level-0", "level-1", "level-2", "level-3", "system-measure"]
EXIT_EVENTS: dict[str, tuple[type[CaseEvent], ...]] = {
    "close": (case_events.CaseClosed,),
    "continue": (case_events.LevelDecided,),
    "system-measure": (case_events.SystemMeasureProposed,),
    **{f"level-{n}": (case_events.Escalated, case_events.DeEscalated) for n in range(4)},
}


class Exit(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One way out of a level's decision: "A" close, "B" continue, "C" to level 2 ..."""

    id: Annotated[str, msgspec.Meta(min_length=1, max_length=16)]
    to: ExitTo
    what: Phrase


class Decision(Step, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The step that ends a level: a decision with its exits."""

    exits: tuple[Exit, ...]


class LevelGuide(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    level: Annotated[int, msgspec.Meta(ge=0, le=3)]
    title: Phrase
    steps: tuple[Step, ...] = ()
    decision: Decision


class Guide(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """One service's action guide: its levels, in order, and its forms."""

    service: ServiceKind
    title: Phrase
    levels: tuple[LevelGuide, ...]
    forms: tuple[Form, ...] = ()

    def level(self, level: int) -> LevelGuide | None:
        return next((lg for lg in self.levels if lg.level == level), None)

    def form(self, form_id: str) -> Form | None:
        return next((f for f in self.forms if f.id == form_id), None)


# The event an administrator's publication is recorded as (in the case service's stream).


class GuidePublished(Event, frozen=True, kw_only=True):
    """An administrator published a new version of one service's action guide. Cases opened
    from now follow it; cases already open keep the version they were opened under."""

    CONTEXT: ClassVar[str] = "case"

    service: ServiceKind
    version: Annotated[int, msgspec.Meta(ge=2)]  # version 1 is the guide Stafett ships
    guide: Guide


GUIDE_EVENTS: tuple[type[Event], ...] = (GuidePublished,)


class GuideBook(msgspec.Struct, frozen=True, kw_only=True):
    """Every guide published in the municipality, by service, oldest first (the fold of the
    guide book's events): version n + 1 of a service's guide is `published[service][n - 1]`."""

    version: int = 0  # of the guide book aggregate
    published: dict[ServiceKind, tuple[Guide, ...]] = {}

    def in_force(self) -> dict[ServiceKind, int]:
        """Each service's guide version in force now: what a case opened now follows."""
        versions = dict.fromkeys(DEFAULT_GUIDES, DEFAULT_VERSION)
        versions.update({kind: DEFAULT_VERSION + len(g) for kind, g in self.published.items()})
        return versions

    def guide(self, service: ServiceKind, version: int) -> Guide | None:
        if version == DEFAULT_VERSION:
            return DEFAULT_GUIDES.get(service)
        published = self.published.get(service, ())
        index = version - DEFAULT_VERSION - 1
        return published[index] if 0 <= index < len(published) else None


def evolve_book(book: GuideBook | None, event: Event) -> GuideBook:
    book = book or GuideBook()
    if not isinstance(event, GuidePublished):
        return book
    published = (*book.published.get(event.service, ()), event.guide)
    return GuideBook(
        version=event.aggregate_version,
        published={**book.published, event.service: published},
    )


# Where a case is in its guide.


class StepStatus(StrEnum):
    DONE = "done"  # its event was recorded since the level's last decision
    SKIPPED = "skipped"  # passed: a later step was done, its event never recorded
    CURRENT = "current"  # the step the case is at
    NEXT = "next"  # comes after the current step


class StepView(msgspec.Struct, frozen=True, kw_only=True):
    """One step as a case shows it: the guide's step, its status, who does it in words, and,
    for the decision, its exits."""

    id: Id
    status: StepStatus
    what: Phrase
    how: Phrase | None = None
    who: Who
    who_is: Phrase  # `who` in words
    tools: tuple[Id, ...] = ()
    records: str | None = None
    exits: tuple[Exit, ...] = ()  # the decision's

    @classmethod
    def of(cls, step: Step, status: StepStatus) -> StepView:
        return cls(
            id=step.id,
            status=status,
            what=step.what,
            how=step.how,
            who=step.who,
            who_is=WHO_PHRASES[step.who],
            tools=step.tools,
            records=step.records,
            exits=step.exits if isinstance(step, Decision) else (),
        )


class GuideProgress(msgspec.Struct, frozen=True, kw_only=True):
    """Where a case is in its guide at its level: each step with its status, the one it is at
    (none once closed), and what comes next."""

    service: ServiceKind
    version: int
    level: int
    steps: tuple[StepView, ...]
    current: StepView | None
    next: tuple[StepView, ...]
    skipped: tuple[Id, ...]


def case_guide(case: CaseFile, directory: Directory, book: GuideBook) -> tuple[Guide, int] | None:
    """The guide a case follows, and its version: that of the unit that owns the case
    (`CaseFile.owning_unit`: where the worry arose, or the unit of the same kind of service it
    was handed over to, so a helper service holding the baton follows the guide of the unit it
    helps), at the version in force when the case was opened. A reader who does not know where
    the worry arose sees the guide of the baton holder's basic service. None for a case opened
    before guides, or a service with no guide."""
    owner = case.owning_unit(directory)
    holder = case.holder.service if case.holder is not None else None
    kind = directory.kind_of(owner or holder)
    if kind is None or not kind.basic:
        return None
    if kind is None or kind not in case.guides:
        return None
    guide = book.guide(kind, case.guides[kind])
    return None if guide is None else (guide, case.guides[kind])


def where_in_guide(
    access: Access,
    case_id: UUID,
    events: Iterable[CaseEvent],
    directory: Directory,
    book: GuideBook,
) -> GuideProgress | None:
    """Where the case is in the guide it follows (`case_guide`, `progress`), as a reader may
    know it (`access.case_shown`): folded from the entries `access` shows; for a receiving unit
    at a handover, where the case stands, which is what the handover hands over."""
    case = case_shown(access, case_id, events)
    followed = case_guide(case, directory, book)
    return None if followed is None else progress(*followed, case)


def progress(guide: Guide, version: int, case: CaseFile) -> GuideProgress | None:
    """The case's steps at its level, as `guide` (at `version`) describes them; None if the
    guide says nothing of the level.

    A step is done when the event it records was recorded since the level's last decision
    (`CaseFile.at_level`); the case is at the first step not done after the last one done (a
    step no event records is passed when a later one is done), and steps before that one that
    were not done are skipped. The decision is the last step; a closed case is at none.
    """
    level = guide.level(case.level)
    if level is None:
        return None
    steps: tuple[Step, ...] = (*level.steps, level.decision)
    done = [step.records is not None and _recorded(step, case) for step in steps]
    last_done = max((i for i, d in enumerate(done) if d), default=-1)
    at = None if case.closed else next((i for i in range(last_done + 1, len(steps))), None)
    views = tuple(
        StepView.of(step, _status(i, done[i], last_done, at)) for i, step in enumerate(steps)
    )
    return GuideProgress(
        service=guide.service,
        version=version,
        level=case.level,
        steps=views,
        current=None if at is None else views[at],
        next=() if at is None else views[at + 1 :],
        skipped=tuple(v.id for v in views if v.status == StepStatus.SKIPPED),
    )


def _recorded(step: Step, case: CaseFile) -> bool:
    return step.records in case.at_level


def _status(index: int, done: bool, last_done: int, at: int | None) -> StepStatus:
    if done:
        return StepStatus.DONE
    if index < last_done:
        return StepStatus.SKIPPED
    if index == at:
        return StepStatus.CURRENT
    return StepStatus.NEXT


def skipped_before_decision(guide: Guide, case: CaseFile) -> tuple[str, ...]:
    """The steps of the case's level passed without their event, as a decision ends the level
    now: what the management figures count as skipped."""
    level = guide.level(case.level)
    if level is None:
        return ()
    return tuple(
        step.id for step in level.steps if step.records is not None and not _recorded(step, case)
    )


# Reading a guide file.


class GuideError(ValueError):
    """A guide refused: the line of the file it is about (None when unknown) and the reason."""

    def __init__(self, reason: str, line: int | None = None) -> None:
        where = f"line {line}: " if line is not None else ""
        super().__init__(f"{where}{reason}")
        self.reason = reason
        self.line = line


CASE_EVENT_TYPES: dict[str, type[CaseEvent]] = {
    cls.__name__: cls for cls in CaseEvent.__subclasses__()
}
_ENVELOPE_FIELDS = frozenset(f.name for f in msgspec.structs.fields(Event))


def parse(source: str | bytes, format: Literal["toml", "json"] = "toml") -> Guide:
    """The guide a file describes; GuideError with the line and the reason if it is not one."""
    text = source.decode() if isinstance(source, bytes) else source
    data = _load(text, format)
    try:
        guide = msgspec.convert(data, Guide)
    except msgspec.ValidationError as error:
        raise GuideError(str(error), _line_of_path(text, str(error))) from None
    _check(guide, text)
    return guide


def _load(text: str, format: str) -> dict[str, Any]:
    if format == "json":
        try:
            loaded = json.loads(text)
        except json.JSONDecodeError as error:
            raise GuideError(f"not JSON: {error.msg}", error.lineno) from None
        if not isinstance(loaded, dict):
            raise GuideError("a guide is an object", 1)
        return loaded
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        found = re.search(r"\(at line (\d+), column \d+\)", str(error))
        reason = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(error))
        raise GuideError(f"not TOML: {reason}", int(found.group(1)) if found else None) from None


def _check(guide: Guide, text: str) -> None:
    """What a guide's types cannot say: every level once, exits the staircase allows, tools
    that are forms of the guide, events and fields that exist."""
    seen_levels: set[int] = set()
    for level in guide.levels:
        if level.level in seen_levels:
            raise GuideError(f"level {level.level} is described twice", _line(text, "level"))
        seen_levels.add(level.level)
        ids = [s.id for s in (*level.steps, level.decision)]
        for step in (*level.steps, level.decision):
            if ids.count(step.id) > 1:
                raise GuideError(
                    f"level {level.level} has two steps named {step.id!r}",
                    _line(text, step.id),
                )
            _check_step(guide, level.level, step, text)
        for exit in level.decision.exits:
            refusal = _exit_refusal(level.level, exit.to)
            if refusal is not None:
                raise GuideError(refusal, _line(text, exit.to, after=level.decision.id))
    form_ids = [f.id for f in guide.forms]
    for form in guide.forms:
        if form_ids.count(form.id) > 1:
            raise GuideError(f"two forms are named {form.id!r}", _line(text, form.id))
        _check_form(form, text)


def _check_step(guide: Guide, level: int, step: Step, text: str) -> None:
    for tool in step.tools:
        if guide.form(tool) is None:
            raise GuideError(
                f"step {step.id!r} of level {level} names the form {tool!r}, which the guide "
                "does not describe",
                _line(text, tool, after=step.id),
            )
    if step.records is not None and step.records not in CASE_EVENT_TYPES:
        raise GuideError(
            f"step {step.id!r} records {step.records!r}, which is no event of the case",
            _line(text, step.records, after=step.id),
        )


def _exit_refusal(level: int, to: str) -> str | None:
    if to == "continue" and level == 0:
        return "at level 0 the case goes to level 1 or closes: an exit 'continue' is not one"
    if to.startswith("level-"):
        target = int(to.removeprefix("level-"))
        if target not in staircase_exits(level):
            return f"from level {level} the case moves to {staircase_exits(level)}, not {target}"
    return None


def _check_form(form: Form, text: str) -> None:
    if form.fills is None:
        return
    event = CASE_EVENT_TYPES.get(form.fills)
    if event is None:
        raise GuideError(
            f"form {form.id!r} fills {form.fills!r}, which is no event of the case",
            _line(text, form.fills, after=form.id),
        )
    known = {f.name for f in msgspec.structs.fields(event)} - _ENVELOPE_FIELDS
    for field in form.fields:
        if field.key not in known:
            raise GuideError(
                f"form {form.id!r} has the field {field.key!r}, which {form.fills} does not "
                f"have (it has {', '.join(sorted(known))})",
                _line(text, field.key, after=form.id),
            )
        if field.type == FieldType.CHOICE and not field.choices:
            raise GuideError(
                f"the field {field.key!r} of form {form.id!r} is a choice with no choices",
                _line(text, field.key, after=form.id),
            )


def _line(text: str, value: str, after: str | None = None) -> int | None:
    """The first line (1-based) that names `value` (quoted), after the line naming `after`."""
    lines = text.splitlines()
    start = 0
    if after is not None:
        start = next((i for i, line in enumerate(lines) if f'"{after}"' in line), 0)
    for i in range(start, len(lines)):
        if f'"{value}"' in lines[i] or re.match(rf"\s*{re.escape(value)}\s*=", lines[i]):
            return i + 1
    return None


def _line_of_path(text: str, error: str) -> int | None:
    """The line of what a msgspec error's path names (`at $.levels[3].steps[1].who`): each
    key's table, the n-th of an array of tables (or of an inline array's items), in turn."""
    found = re.search(r"at `?\$((?:\.\w+|\[\d+\])+)`?", error)
    if not found:
        return None
    lines = text.splitlines()
    at = 0
    for key, index in re.findall(r"\.(\w+)(?:\[(\d+)\])?", found.group(1)):
        names_key = re.compile(rf"^\s*(\[\[?([\w.]+\.)?{key}\]\]?|{key}\s*[.=])")
        start = next((i for i in range(at, len(lines)) if names_key.match(lines[i])), None)
        if start is None:
            return at + 1 if at else None
        at = start
        if index:
            table = re.compile(rf"^\s*\[\[([\w.]+\.)?{key}\]\]")
            tables = [i for i in range(at, len(lines)) if table.match(lines[i])]
            items = [i for i in range(at + 1, len(lines)) if lines[i].lstrip().startswith("{")]
            chosen = tables or items
            if int(index) < len(chosen):
                at = chosen[int(index)]
    return at + 1


# The guides Stafett ships.


def _shipped() -> dict[ServiceKind, Guide]:
    folder = resources.files("stafett_contracts") / "guide_data"
    guides = (
        parse(file.read_text(encoding="utf-8"))
        for file in folder.iterdir()
        if file.name.endswith(".toml")
    )
    return {guide.service: guide for guide in guides}


DEFAULT_GUIDES: Mapping[ServiceKind, Guide] = _shipped()
