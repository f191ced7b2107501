"""The bounded shapes of what a request may say, and the date window of a case
(`stafett_contracts.inputs`): given a value, when it is decoded or judged, then it is accepted
or refused naming its limit."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import msgspec
import pytest

from stafett_contracts.inputs import (
    DATE_WITHIN_WINDOW,
    MAX_YEARS_AHEAD_VARIABLE,
    DateWindow,
    DocumentRef,
    FreeText,
    Moment,
    NationalId,
    PersonId,
    ReadPurpose,
    ShortText,
    UnitId,
    limits,
    max_years_ahead,
    utc_moment,
)

RAISED = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
NOW = RAISED + timedelta(days=7)


def accepts(shape: Any, value: object) -> bool:
    """Whether a request carrying `value` where `shape` is expected is decoded."""
    try:
        msgspec.json.decode(msgspec.json.encode(value), type=shape)
    except msgspec.ValidationError:
        return False
    return True


# A person id: what an identity provider's subject can be, and nothing that hides.


@pytest.mark.parametrize(
    "person",
    ["mor-1", "kari.nordmann@kommune.no", "urn:oid:2.16.578.1", "dGVzdA+/=", "a" * 128],
)
def test_a_person_id_from_an_identity_provider_is_accepted(person: str) -> None:
    assert accepts(PersonId, person)


@pytest.mark.parametrize(
    ("person", "what"),
    [
        ("mor\x00-1", "NUL"),
        ("mor\u200b-1", "zero-width space"),
        ("\u202emor-1", "right-to-left override"),
        ("mor\u2066-1", "direction isolate"),
        ("mor-1\n", "a final newline"),
        ("mor 1", "a space"),
        ("", "nothing"),
        ("a" * 129, "129 characters"),
    ],
)
def test_a_person_id_with_a_control_invisible_or_space_character_is_refused(
    person: str, what: str
) -> None:
    assert not accepts(PersonId, person), what


def test_a_unit_id_is_the_directory_s_shape_and_nothing_after_it() -> None:
    assert accepts(UnitId, "skole-lia")
    assert not accepts(UnitId, "skole-lia\n")
    assert not accepts(UnitId, "Skole-Lia")
    assert not accepts(UnitId, "skole\u200b-lia")


# Free and short text: at least one visible character, no control but line breaks and tabs.


@pytest.mark.parametrize(
    "text",
    [
        "Trekker seg unna i lek.",
        "Linje 1\r\nLinje 2\n\tinnrykk",
        "  mellomrom foran og bak  ",
        "familie \U0001f469\u200d\U0001f467",  # a zero-width joiner inside an emoji
        "x" * 10_000,
    ],
)
def test_free_text_with_something_to_read_is_accepted(text: str) -> None:
    assert accepts(FreeText, text)


@pytest.mark.parametrize(
    ("text", "what"),
    [
        (" \n\t\u00a0\u3000 ", "only whitespace"),
        ("\u200b\u200b\ufeff", "only invisible characters"),
        ("", "nothing"),
        ("note\x00", "NUL"),
        ("note\x1b[31m", "an escape"),
        ("note\x85", "a C1 control"),
        ("x" * 10_001, "10 001 characters"),
    ],
)
def test_free_text_of_only_whitespace_with_a_control_or_over_its_limit_is_refused(
    text: str, what: str
) -> None:
    assert not accepts(FreeText, text), what


def test_short_text_holds_at_most_1000_characters() -> None:
    assert accepts(ShortText, "r" * 1_000)
    assert not accepts(ShortText, "r" * 1_001)
    assert not accepts(ShortText, "   ")


@pytest.mark.parametrize(
    ("reference", "accepted"),
    [
        ("archive/2026/17", True),
        ("samtykke skjema.pdf", True),
        ("https://arkiv.kommune.no/sak/17", True),
        (" archive/17", False),
        ("archive/17 ", False),
        ("archive\n17", False),
        ("archive\u200b17", False),
        ("d" * 501, False),
    ],
)
def test_a_document_reference_is_one_printable_line_of_at_most_500(
    reference: str, accepted: bool
) -> None:
    assert accepts(DocumentRef, reference) == accepted


@pytest.mark.parametrize(
    ("national_id", "accepted"),
    [("17051812345", True), ("170518-12345", True), ("1705181234", True), ("17051812345\n", False)],
)
def test_a_national_id_is_digits_with_one_optional_dash(national_id: str, accepted: bool) -> None:
    assert accepts(NationalId, national_id) == accepted


def test_a_read_purpose_is_at_most_500_characters_without_controls() -> None:
    assert accepts(ReadPurpose, "tilsyn 2026-17")
    assert not accepts(ReadPurpose, "tilsyn\x00")
    assert not accepts(ReadPurpose, "p" * 501)


def test_limits_are_what_a_query_or_path_parameter_takes() -> None:
    assert limits(UnitId) == {
        "min_length": 1,
        "max_length": 128,
        "pattern": r"^[a-z0-9-]+(?![\s\S])",
    }
    with pytest.raises(TypeError):
        limits(Moment)


# Moments: with their time zone, and with a moment in UTC.


def test_a_moment_without_a_time_zone_is_refused() -> None:
    assert accepts(Moment, "2026-03-02T09:00:00+01:00")
    assert not accepts(Moment, "2026-03-02T09:00:00")


def test_a_moment_a_query_names_is_taken_to_utc_or_refused_saying_why() -> None:
    oslo = datetime(2026, 3, 2, 10, 0, tzinfo=timezone(timedelta(hours=1)))
    assert utc_moment(oslo) == RAISED
    with pytest.raises(ValueError, match="time zone"):
        utc_moment(datetime(2026, 3, 2, 9, 0))
    with pytest.raises(ValueError, match="outside the calendar"):
        utc_moment(datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=1))))


# date-within-window: not before the case was raised, at most N years after now.


def test_date_within_window_from_the_case_s_start_to_the_years_ahead() -> None:
    window = DateWindow.of_case(RAISED, NOW, years_ahead=5)
    last_day = date(2031, 3, 9)
    assert window.refusal("due_on", RAISED.date()) is None
    assert window.refusal("due_on", last_day) is None
    assert window.refusal("starts_at", RAISED) is None


@pytest.mark.parametrize(
    "value",
    [
        date(2031, 3, 10),
        date(9999, 12, 31),
        date(2026, 3, 1),
        datetime(1970, 1, 1, tzinfo=UTC),
        RAISED - timedelta(seconds=1),
        datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-14))),
    ],
)
def test_date_within_window_refuses_before_the_case_and_beyond_the_years_ahead(
    value: date | datetime,
) -> None:
    refusal = DateWindow.of_case(RAISED, NOW, years_ahead=5).refusal("evaluation_date", value)
    assert refusal is not None
    assert refusal.startswith(f"evaluation_date {value.isoformat()} lies outside")
    assert "(2026-03-02) to 5 years ahead (2031-03-09)" in refusal
    assert DATE_WITHIN_WINDOW == "date-within-window"


def test_date_within_window_from_a_29th_of_february_ends_on_the_28th() -> None:
    leap_day = datetime(2028, 2, 29, 12, 0, tzinfo=UTC)
    assert DateWindow.of_case(RAISED, leap_day, years_ahead=1).latest.date() == date(2029, 2, 28)


def test_the_years_ahead_are_configured_once_in_the_environment() -> None:
    assert max_years_ahead({}) == 5
    assert max_years_ahead({MAX_YEARS_AHEAD_VARIABLE: "10"}) == 10
    for wrong in ("0", "101", "five", "-1", "2.5"):
        with pytest.raises(ValueError, match=MAX_YEARS_AHEAD_VARIABLE):
            max_years_ahead({MAX_YEARS_AHEAD_VARIABLE: wrong})
