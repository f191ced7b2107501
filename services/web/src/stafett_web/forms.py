"""The forms: one per command of the case and meeting services, as their OpenAPI documents
describe the command's body, and what a submitted form becomes.

The web app checks nothing the services check: a form is turned into the command's JSON body
as typed (an empty field is left out, a local date and time gets the municipality's offset),
and the service's own answer says what is wrong. A 422 names the field (`extra[].key`), and the
message is shown next to it; a 409 or 403 names the rule, shown above the form. What was typed
is shown again either way. A test checks every form against the services' OpenAPI documents.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal
from uuid import uuid4
from zoneinfo import ZoneInfo

import msgspec

from stafett_contracts.erasure import ErasureReason
from stafett_web.i18n import Translator

Kind = Literal[
    "text",  # one line
    "textarea",  # free text
    "date",
    "until",  # a last day: sent as the end of that day in the municipality's time zone
    "datetime",  # a local date and time: sent with the municipality's offset
    "level",  # a level of the staircase, 0-3
    "score",  # 1 (poor) to 5 (very good)
    "bool",  # a checkbox
    "choice",  # one of `choices`
    "unit",  # one unit of the directory
    "units",  # some units of the directory
    "purposes",  # some consent purposes
    "people",  # person ids, one a line
    "lines",  # lines of text (an agenda)
    "members",  # a responsibility group: "person; unit; task", one a line
    "new_id",  # an id the client chooses, so that a retry records the same thing once
    "given_id",  # an id the page was opened for (the measure, the action item)
]


class Field(msgspec.Struct, frozen=True, kw_only=True):
    name: str  # the body's field, dotted for a nested one ("evidence.form")
    kind: Kind
    required: bool = False
    choices: tuple[str, ...] = ()  # for "choice", each labelled by the key f"{label}.{value}"
    label: str | None = None  # the key prefix of a choice's labels
    max_length: int | None = None


class Form(msgspec.Struct, frozen=True, kw_only=True):
    """One command: where it goes, and its fields."""

    name: str  # the route's last segment, e.g. "escalate"
    fields: tuple[Field, ...] = ()
    danger: bool = False  # closes or refuses something: its button says so


TEXT = 10_000
REF = 128


def _text(name: str, required: bool = True) -> Field:
    return Field(name=name, kind="textarea", required=required, max_length=TEXT)


def _person(name: str, required: bool = True) -> Field:
    return Field(name=name, kind="text", required=required, max_length=REF)


def _unit(name: str, required: bool = True) -> Field:
    return Field(name=name, kind="unit", required=required)


_PARTICIPANTS = Field(name="participants", kind="people")

# The case service: POST /cases/{id}/<name> (docs/openapi/case.json).
CASE_FORMS: dict[str, Form] = {
    f.name: f
    for f in (
        Form(name="share-concern", fields=(_person("shared_with"), _text("note", False))),
        Form(
            name="record-wondering-conversation",
            fields=(
                Field(name="held_on", kind="date", required=True),
                Field(name="with_guardians", kind="bool"),
                Field(name="with_child", kind="bool"),
                _text("summary"),
            ),
        ),
        Form(
            name="record-child-view",
            fields=(
                _text("view"),
                Field(
                    name="how",
                    kind="choice",
                    choices=("conversation", "drawing", "observation", "other"),
                    label="how",
                ),
            ),
        ),
        Form(name="note-bright-spot", fields=(_text("note"),)),
        Form(
            name="define-problem",
            fields=(_text("description"), Field(name="with_guardians", kind="bool")),
        ),
        Form(
            name="plan-measure",
            fields=(
                Field(name="measure_id", kind="new_id"),
                _text("description"),
                _person("responsible"),
                _unit("service"),
                Field(name="evaluation_date", kind="date", required=True),
            ),
        ),
        Form(
            name="evaluate-measure",
            fields=(
                Field(name="measure_id", kind="given_id"),
                Field(
                    name="outcome",
                    kind="choice",
                    required=True,
                    choices=("worked", "partly", "did_not_work"),
                    label="outcome",
                ),
                _text("notes"),
                Field(name="next_evaluation_date", kind="date"),
            ),
        ),
        Form(
            name="end-measure", fields=(Field(name="measure_id", kind="given_id"), _text("reason"))
        ),
        Form(name="decide-level", fields=(_text("reason"), _PARTICIPANTS)),
        Form(
            name="escalate",
            fields=(
                Field(name="to_level", kind="level", required=True),
                _text("reason"),
                _PARTICIPANTS,
            ),
        ),
        Form(
            name="de-escalate",
            fields=(
                Field(name="to_level", kind="level", required=True),
                _text("reason"),
                _PARTICIPANTS,
            ),
        ),
        Form(name="send-referral", fields=(_unit("to_service"), _text("purpose"))),
        Form(name="join-agency", fields=(_unit("service"),)),
        Form(
            name="leave-agency",
            fields=(
                _unit("service"),
                Field(name="reason", kind="choice", choices=("done", "other"), label="leave"),
                _text("note", False),
            ),
        ),
        Form(name="appoint-baton-holder", fields=(_person("holder"), _unit("service"))),
        Form(
            name="offer-baton",
            fields=(_person("to_person"), _unit("to_service"), _text("note", False)),
        ),
        Form(name="accept-baton"),
        Form(name="assign-coordinator", fields=(_person("coordinator"), _unit("service"))),
        Form(
            name="form-responsibility-group",
            fields=(Field(name="members", kind="members", required=True),),
        ),
        Form(
            name="request-individual-plan",
            fields=(Field(name="requested_by_guardian", kind="bool"), _text("note", False)),
        ),
        Form(name="propose-system-measure", fields=(_text("description"),)),
        Form(
            name="file-child-welfare-report",
            fields=(
                _unit("reported_to", False),
                Field(name="legal_basis", kind="text", required=True, max_length=TEXT),
                _text("grounds"),
            ),
        ),
        Form(name="close-case", fields=(_text("reason"), _PARTICIPANTS), danger=True),
        Form(name="reopen-case", fields=(_text("reason"),)),
    )
}

RAISE_CONCERN = Form(
    name="raise-concern",
    fields=(
        Field(name="national_id", kind="text", max_length=12),
        Field(name="child_id", kind="text"),
        _text("concern"),
    ),
)

MEETING_TYPES = (
    "pedagogical_team",
    "interdisciplinary",
    "cooperation",
    "responsibility_group",
    "tvist",
    "network",
    "dialogue",
)

SCHEDULE_MEETING = Form(
    name="schedule",
    fields=(
        Field(
            name="meeting_type",
            kind="choice",
            required=True,
            choices=MEETING_TYPES,
            label="meeting",
        ),
        Field(name="starts_at", kind="datetime", required=True),
        Field(name="ends_at", kind="datetime", required=True),
        Field(name="place", kind="text", max_length=500),
        Field(name="video_link", kind="text", max_length=2000),
        Field(name="agenda", kind="lines"),
    ),
)

# The meeting service: POST /meetings/{id}/<name> (docs/openapi/meeting.json).
MEETING_FORMS: dict[str, Form] = {
    f.name: f
    for f in (
        Form(
            name="invite",
            fields=(
                Field(
                    name="kind",
                    kind="choice",
                    required=True,
                    choices=("guardian", "child", "service"),
                    label="role",
                ),
                _person("person"),
                _unit("service", False),
            ),
        ),
        Form(
            name="reschedule",
            fields=(
                Field(name="starts_at", kind="datetime", required=True),
                Field(name="ends_at", kind="datetime", required=True),
                Field(name="place", kind="text", max_length=500),
                Field(name="video_link", kind="text", max_length=2000),
                _text("reason", False),
            ),
        ),
        Form(name="cancel", fields=(_text("reason"),), danger=True),
        Form(
            name="record-held",
            fields=(
                Field(name="attended", kind="people", required=True),
                Field(name="held_at", kind="datetime"),
            ),
        ),
        Form(name="record-minutes", fields=(_text("minutes"),)),
        Form(
            name="record-decision",
            fields=(
                Field(name="decision_id", kind="new_id"),
                Field(
                    name="kind",
                    kind="choice",
                    required=True,
                    choices=("continue", "move_to_level", "close", "system_measure"),
                    label="decision",
                ),
                Field(name="to_level", kind="level"),
                _text("reason"),
                _PARTICIPANTS,
            ),
        ),
        Form(
            name="assign-action-item",
            fields=(
                Field(name="item_id", kind="new_id"),
                _text("description"),
                _person("owner"),
                _unit("owner_service", False),
                Field(name="due_on", kind="date", required=True),
            ),
        ),
        Form(
            name="complete-action-item",
            fields=(Field(name="item_id", kind="given_id"), _text("note", False)),
        ),
        Form(
            name="give-feedback",
            fields=(
                Field(name="rating", kind="score", required=True),
                Field(name="heard", kind="score", required=True),
                _text("comment", False),
            ),
        ),
    )
}


PURPOSES = ("cooperation", "tvist", "referral")
_SERVICES = Field(name="services", kind="units", required=True)
_PURPOSES = Field(name="purposes", kind="purposes", required=True)
_UNTIL = Field(name="valid_until", kind="until")

# The consent service (docs/openapi/consent.json). Who gives a consent, from when, and for a
# guardian or the child the evidence, the page adds: never what the request says of a person.
GIVE_CONSENT = Form(name="give-consent", fields=(_SERVICES, _PURPOSES, _UNTIL))
RECORD_CONSENT = Form(
    name="record-consent",
    fields=(
        Field(
            name="given_by.kind",
            kind="choice",
            required=True,
            choices=("guardian", "child"),
            label="role",
        ),
        _person("given_by.person"),
        _SERVICES,
        _PURPOSES,
        _UNTIL,
        Field(
            name="evidence.form",
            kind="choice",
            required=True,
            choices=("written", "oral"),
            label="evidence",
        ),
        Field(name="evidence.document_ref", kind="text", max_length=500),
        Field(name="evidence.document_sha256", kind="text", max_length=64),
    ),
)
CHANGE_SCOPE = Form(name="change-scope", fields=(_SERVICES, _PURPOSES, _UNTIL))
WITHDRAW_CONSENT = Form(
    name="withdraw-consent",
    fields=(
        Field(
            name="whole", kind="choice", required=True, choices=("all", "some"), label="withdraw"
        ),
        Field(name="services", kind="units"),
        _text("reason", False),
    ),
    danger=True,
)

# The case service's erasure: POST /children/{child_id}/erase (docs/openapi/case.json). The
# child's id goes in the address, not the body; the reasons are the contracts' fixed words.
ERASE_CHILD = Form(
    name="erase-child",
    fields=(
        Field(name="child_id", kind="text", required=True, max_length=36),
        Field(
            name="reason",
            kind="choice",
            required=True,
            # An administrator's usual reasons first: the first is the one shown chosen.
            choices=tuple(
                r.value
                for r in (
                    ErasureReason.ERASURE_REQUESTED,
                    ErasureReason.REGISTERED_IN_ERROR,
                    ErasureReason.RETENTION_PERIOD_ENDED,
                )
            ),
            label="erasure_reason",
        ),
        Field(name="reference", kind="text", max_length=64),
    ),
    danger=True,
)


FormData = Mapping[str, Sequence[str]]


def initial(form: Form, given: Mapping[str, str] | None = None) -> dict[str, Any]:
    """What a fresh form shows: new ids made, given ids filled in."""
    values: dict[str, Any] = {}
    for field in form.fields:
        if field.kind == "new_id":
            values[field.name] = str(uuid4())
        elif field.kind == "given_id" and given and field.name in given:
            values[field.name] = given[field.name]
    return values


def typed(form: Form, data: FormData) -> dict[str, Any]:
    """What the person typed, field by field, to show again."""
    values: dict[str, Any] = {}
    for field in form.fields:
        got = [v for v in data.get(field.name, ()) if isinstance(v, str)]
        if field.kind in ("units", "purposes"):
            values[field.name] = got
        elif field.kind == "bool":
            values[field.name] = bool(got)
        else:
            values[field.name] = got[0] if got else ""
    return values


def body(form: Form, data: FormData, zone: ZoneInfo) -> dict[str, Any]:
    """The command's JSON body from what was typed; the service checks it."""
    out: dict[str, Any] = {}
    for field in form.fields:
        value = _value(field, [v for v in data.get(field.name, ()) if isinstance(v, str)], zone)
        if value is not None:
            _put(out, field.name, value)
    return out


def _value(field: Field, got: list[str], zone: ZoneInfo) -> Any:
    first = got[0].strip() if got else ""
    match field.kind:
        case "bool":
            return bool(got)
        case "units" | "purposes":
            return [g for g in got if g]
        case "people":
            return [line.strip() for line in first.splitlines() if line.strip()] or None
        case "lines":
            return [line.strip() for line in first.splitlines() if line.strip()] or None
        case "members":
            return [_member(line) for line in first.splitlines() if line.strip()] or None
        case "level" | "score":
            # A number the service checks; anything else goes as typed, for it to name.
            return int(first) if first.isdigit() else (first or None)
        case "datetime":
            return local_moment(first, zone) if first else None
        case "until":
            return local_moment(f"{first}T23:59:59", zone) if first else None
        case _:
            return first or None


def _member(line: str) -> dict[str, str]:
    person, _, rest = line.partition(";")
    service, _, task = rest.partition(";")
    member = {"person": person.strip()}
    if service.strip():
        member["service"] = service.strip()
    if task.strip():
        member["task"] = task.strip()
    return member


def _put(out: dict[str, Any], dotted: str, value: Any) -> None:
    *path, last = dotted.split(".")
    for part in path:
        out = out.setdefault(part, {})
    out[last] = value


def local_moment(text: str, zone: ZoneInfo) -> str:
    """A `datetime-local` value (local time, no zone) as ISO 8601 with the zone's offset; as
    typed if it is not a date and time, for the service to refuse by name."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return text
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=zone)
    return moment.isoformat()


# The services' refusals, field by field

_MISSING = re.compile(r"missing required field `([^`]+)`")
_INDEX = re.compile(r"\[\d+\]")


class Problems(msgspec.Struct, kw_only=True):
    """What a service said was wrong: next to fields, or above the form."""

    fields: dict[str, str] = {}
    form: list[str] = []

    def __bool__(self) -> bool:
        return bool(self.fields or self.form)


def problems(detail: str, extra: Any, known: Sequence[str]) -> Problems:
    """The refusal's messages, each next to the field it names when the form has that field."""
    found = Problems()
    items = extra if isinstance(extra, list) else []
    for item in items:
        if not isinstance(item, dict):
            continue
        message = str(item.get("message") or detail)
        key = str(item.get("key") or "")
        missing = _MISSING.search(message)
        if missing:  # msgspec names the object that lacks it, or the whole body ("data")
            key = missing.group(1) if key in ("", "data") else f"{key}.{missing.group(1)}"
        key = _INDEX.sub("", key)
        if key in known:
            found.fields.setdefault(key, message)
        else:
            found.form.append(message)
    if not found:
        found.form.append(detail)
    return found


_TOO_LONG = re.compile(r"Expected `(?:str|array)` of length <= (\d+)")
_TOO_SHORT = re.compile(r"Expected `(?:str|array)` of length >= 1")


def plain(message: str, t: Translator) -> str:
    """A service's message in the reader's words where it is one of the common ones (a field
    missing or too long), else as the service said it."""
    if _MISSING.search(message) or _TOO_SHORT.search(message):
        return t("problem.required")
    longest = _TOO_LONG.search(message)
    if longest:
        return t("problem.too_long", n=longest.group(1))
    return message
