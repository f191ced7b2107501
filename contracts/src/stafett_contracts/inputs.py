"""What a request may say: the bounded shapes of every command's fields and query parameters,
and the window every date of a case lies in.

Events keep their own field types (`envelope.PersonRef`, `Text`, ...), so that every event ever
stored still decodes. These are the stricter shapes of what a person sends, each at most as wide
as the event field it becomes. Each carries its limits and a description, so the JSON Schema and
every service's OpenAPI document show them; a body that breaks one is refused (422) naming the
field and the limit, before any rule runs and before anything is stored.

| type | what | limits |
|---|---|---|
| `PersonId` | a person, by the id the identity provider gives them | 1-128 characters: letters a-z and A-Z, digits and `._@:+/=-` (an OIDC subject is printable ASCII); no space, control or invisible character |
| `UnitId` | a unit of the municipality directory (`ServiceRef`'s shape) | 1-128 characters: a-z, 0-9 and `-` |
| `FreeText` | a concern, a note, minutes, a description | 1-10 000 characters, at least one visible; no control character but line breaks and tabs |
| `ShortText` | a reason, a purpose, a legal basis, an agenda item | 1-1 000 characters, as `FreeText` |
| `DocumentRef` | where a document is kept (evidence of a consent) | 1-500 printable characters on one line, no invisible character, no space at either end |
| `NationalId` | a national id (fødselsnummer, CPR) | six digits, an optional `-`, four or five digits |
| `Moment` | a moment | an RFC 3339 date-time with its time zone (`Z` or an offset) |
| `ReadPurpose` | why someone reads (a query parameter) | at most 500 characters, no control character |
| `PersonIds` | the people who took part, attended | at most 100 person ids |

A query or path parameter takes the same limits through `limits(UnitId)` (Litestar reads no
`msgspec.Meta` there), and a moment a query names goes through `utc_moment`, which refuses one
without a time zone or with no moment in UTC.

An id's pattern ends with `(?![\\s\\S])`, "no character follows", which means the same in every
regex dialect, and not with `$`: Python's `$` also matches before a final newline (text may end
in one, so its pattern may end in `$`).

**The date window** (rule `date-within-window`): a date of a case (an evaluation date, a due
date, a meeting's start and end, when a meeting or a conversation was held) lies neither before
the case was raised nor more than `STAFETT_MAX_YEARS_AHEAD` years (default 5, at most 100) after
now. The variable is read once, when the process starts. Each domain asks `DateWindow.refusal`
from its `decide`, with the case's `raised_at` and the context's `now`, and refuses with
`stafett_runtime.domain.require_within` (409 naming the rule and the window).
"""  # noqa: E501 (a table reads best on one line per row)

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Annotated, Any

import msgspec
import msgspec.inspect

# Characters no text may hold: the C0 and C1 controls, but tab, line feed and carriage return.
_CONTROL = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f"
# Characters that show nothing: soft hyphen, zero-width and joiners, direction marks and
# overrides, word joiner and invisible operators, byte order mark, interlinear annotation.
_INVISIBLE = (
    r"\u00ad\u061c\u180e\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
)
# What a text may begin with and still show nothing: spaces, line breaks, tabs, invisibles.
_BLANK = r"\t\n\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000" + _INVISIBLE
_END = r"(?![\s\S])"  # no character follows: the end, also after a final newline

# Blanks, then one visible character, then anything but a control (each part excludes the
# next one's first character, so the match never backtracks more than once per character).
TEXT_PATTERN = f"^[{_BLANK}]*[^\\s{_CONTROL}{_INVISIBLE}][^{_CONTROL}]*$"
PERSON_ID_PATTERN = rf"^[A-Za-z0-9._@:+/=-]+{_END}"
UNIT_ID_PATTERN = rf"^[a-z0-9-]+{_END}"
# One line of printable characters: none of these anywhere, and no space at either end.
_OFF_THE_LINE = f"\\t\\n\\r\\u2028\\u2029{_CONTROL}{_INVISIBLE}"
_NOT_AT_AN_END = f"\\s{_CONTROL}{_INVISIBLE}"
DOCUMENT_REF_PATTERN = f"^[^{_NOT_AT_AN_END}](?:[^{_OFF_THE_LINE}]*[^{_NOT_AT_AN_END}])?{_END}"
NATIONAL_ID_PATTERN = rf"^[0-9]{{6}}-?[0-9]{{4,5}}{_END}"
READ_PURPOSE_PATTERN = rf"^[^\x00-\x1f\x7f-\x9f]*{_END}"

PersonId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=128,
        pattern=PERSON_ID_PATTERN,
        description="a person, by the id the identity provider gives them: 1-128 characters, "
        "letters, digits and ._@:+/=- (no space, control or invisible character)",
    ),
]
UnitId = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=128,
        pattern=UNIT_ID_PATTERN,
        description="a unit of the municipality directory, such as skole-lia or ppt: "
        "1-128 characters, a-z, 0-9 and -",
    ),
]
FreeText = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=10_000,
        pattern=TEXT_PATTERN,
        description="text: 1-10 000 characters, at least one visible; no control character "
        "but line breaks and tabs",
    ),
]
ShortText = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=1_000,
        pattern=TEXT_PATTERN,
        description="short text: 1-1 000 characters, at least one visible; no control "
        "character but line breaks and tabs",
    ),
]
# Free text about a child or family, as a client sends it: in clear, sealed under the child's
# key by the service that receives it, before it reaches any event (`envelope.PrivateText`).
_SEALED_ON_RECEIPT = msgspec.Meta(extra_json_schema={"x-sealed": True})
PrivateFreeText = Annotated[FreeText, _SEALED_ON_RECEIPT]
PrivateShortText = Annotated[ShortText, _SEALED_ON_RECEIPT]
DocumentRef = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=500,
        pattern=DOCUMENT_REF_PATTERN,
        description="where the document is kept (an archive reference, a file name, a URL): "
        "1-500 printable characters on one line, no space at either end",
    ),
]
NationalId = Annotated[
    str,
    msgspec.Meta(
        min_length=10,
        max_length=12,
        pattern=NATIONAL_ID_PATTERN,
        description="a national id (fødselsnummer, CPR): six digits, an optional -, "
        "four or five digits",
    ),
]
Moment = Annotated[
    datetime,
    msgspec.Meta(tz=True, description="a date-time with its time zone (Z or an offset)"),
]
ReadPurpose = Annotated[
    str,
    msgspec.Meta(
        max_length=500,
        pattern=READ_PURPOSE_PATTERN,
        description="why you read: at most 500 characters, no control character",
    ),
]
PersonIds = Annotated[
    tuple[PersonId, ...], msgspec.Meta(max_length=100, description="people, at most 100")
]


def limits(input_type: Any) -> dict[str, Any]:
    """The limits of a string type above by name (`min_length`, `max_length`, `pattern`), for a
    query or path parameter: Litestar's `Parameter` takes them so, and reads no `msgspec.Meta`."""
    info = msgspec.inspect.type_info(input_type)
    if isinstance(info, msgspec.inspect.Metadata):
        info = info.type
    if not isinstance(info, msgspec.inspect.StrType):
        raise TypeError(f"{input_type} is not a string type")
    found = {"min_length": info.min_length, "max_length": info.max_length, "pattern": info.pattern}
    return {name: value for name, value in found.items() if value is not None}


def utc_moment(value: datetime) -> datetime:
    """`value` in UTC, for a moment a query names; ValueError saying why if it has no time zone
    or lies so near the ends of the calendar that it has no moment in UTC."""
    if value.tzinfo is None:
        raise ValueError("needs a time zone: add Z or an offset such as +01:00")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError("lies outside the calendar once taken to UTC") from None


# The date window.

DATE_WITHIN_WINDOW = "date-within-window"
MAX_YEARS_AHEAD_VARIABLE = "STAFETT_MAX_YEARS_AHEAD"
_MOST_YEARS_AHEAD = 100  # a limit on the limit: dates stay far from the end of the calendar


def max_years_ahead(environ: Mapping[str, str]) -> int:
    """How many years after now a date of a case may lie: `STAFETT_MAX_YEARS_AHEAD`, default 5;
    ValueError naming the variable if it is not a whole number from 1 to 100."""
    text = environ.get(MAX_YEARS_AHEAD_VARIABLE) or "5"
    if not text.isdigit() or not 1 <= int(text) <= _MOST_YEARS_AHEAD:
        raise ValueError(
            f"{MAX_YEARS_AHEAD_VARIABLE}={text!r}: expected a whole number of years from 1 to "
            f"{_MOST_YEARS_AHEAD}"
        )
    return int(text)


MAX_YEARS_AHEAD = max_years_ahead(os.environ)  # read once, when the process starts


class DateWindow(msgspec.Struct, frozen=True, kw_only=True):
    """Where a date of a case may lie: from when the case was raised to `years_ahead` years
    after now (`latest`)."""

    earliest: datetime
    latest: datetime
    years_ahead: int

    @classmethod
    def of_case(
        cls, raised_at: datetime, now: datetime, years_ahead: int = MAX_YEARS_AHEAD
    ) -> DateWindow:
        latest = _years_after(now, years_ahead)
        return cls(earliest=raised_at, latest=latest, years_ahead=years_ahead)

    def refusal(self, field: str, value: date | datetime) -> str | None:
        """Why `value`, the request's `field`, lies outside the window; None if it lies in it.
        A date (a day) lies in it if any moment of that day does."""
        if isinstance(value, datetime):
            inside = self.earliest <= value <= self.latest
        else:
            inside = self.earliest.date() <= value <= self.latest.date()
        if inside:
            return None
        return (
            f"{field} {value.isoformat()} lies outside the case's window: from when the case was "
            f"raised ({self.earliest.date().isoformat()}) to {self.years_ahead} years ahead "
            f"({self.latest.date().isoformat()})"
        )


def _years_after(moment: datetime, years: int) -> datetime:
    """The same day `years` later (28 February for a 29 February that year lacks)."""
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:
        return moment.replace(year=moment.year + years, day=28)
