"""The words: both languages say everything, every page asks only for words that exist, and the
relay log tells every event a person should read (and only those), whatever its values."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest

from stafett_contracts.catalogue import EVENTS
from stafett_contracts.envelope import Event, type_name
from stafett_web import forms
from stafett_web.i18n import LANGUAGES, Translator, negotiate
from stafett_web.messages import CATALOGUES
from stafett_web.models import Entry
from stafett_web.relaylog import SYSTEM_EVENTS, describe, lines

ROOT = Path(__file__).parents[3]
PACKAGE = Path(__file__).parents[1] / "src" / "stafett_web"
ZONE = ZoneInfo("Europe/Oslo")


def test_both_languages_have_the_same_words() -> None:
    nb, en = (set(CATALOGUES[language]) for language in LANGUAGES)
    assert nb - en == set(), "in bokmål only"
    assert en - nb == set(), "in English only"


def test_every_word_a_page_or_route_asks_for_by_name_exists() -> None:
    asked: set[str] = set()
    for path in [*PACKAGE.glob("templates/*.html"), *PACKAGE.glob("**/*.py")]:
        text = path.read_text()
        asked |= set(re.findall(r"""\bt\(\s*["']([a-z_][\w.-]*)["']\s*[,)]""", text))
        asked |= set(re.findall(r"""\bpage\(\s*request,\s*"[\w.]+",\s*"([\w.-]+)\"""", text))
    missing = sorted(key for key in asked if key not in CATALOGUES["nb"])
    assert missing == []


def test_every_form_field_and_choice_has_words() -> None:
    every = [
        *forms.CASE_FORMS.values(),
        *forms.MEETING_FORMS.values(),
        forms.SCHEDULE_MEETING,
        forms.RAISE_CONCERN,
        forms.GIVE_CONSENT,
        forms.RECORD_CONSENT,
        forms.CHANGE_SCOPE,
        forms.WITHDRAW_CONSENT,
        forms.ERASE_CHILD,
    ]
    words = CATALOGUES["en"]
    for form in every:
        assert f"command.{form.name}" in words, form.name
        for field in form.fields:
            assert f"field.{field.name}" in words, (form.name, field.name)
            for choice in field.choices:
                assert f"{field.label}.{choice}" in words, (form.name, field.name, choice)


@pytest.mark.parametrize(
    ("chosen", "header", "language"),
    [
        (None, None, "nb"),
        (None, "en-US,en;q=0.8", "en"),
        (None, "de-DE,en;q=0.5", "en"),
        (None, "nn,en;q=0.5", "nb"),
        (None, "en;q=0.2,no;q=0.9", "nb"),
        (None, "xx-!!,;q=abc,", "nb"),
        ("en", "nb", "en"),
        ("fr", "en", "en"),
    ],
)
def test_the_language_is_the_choice_else_the_browser_s_else_bokmal(
    chosen: str | None, header: str | None, language: str
) -> None:
    assert negotiate(chosen, header) == language


def _golden(cls: type[Event]) -> dict[str, Any]:
    path = ROOT / "contracts" / "golden" / cls.CONTEXT / f"{type_name(cls)}.v1.json"
    loaded: dict[str, Any] = json.loads(path.read_text())
    return loaded


def _variants(cls: type[Event]) -> list[dict[str, Any]]:
    """The golden event, and one more for each value of each of its choices."""
    base = _golden(cls)
    found = [base]
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType)
    for field in info.fields:
        kinds = (
            field.type.types if isinstance(field.type, msgspec.inspect.UnionType) else (field.type,)
        )
        for kind in kinds:
            values: list[Any] = []
            if isinstance(kind, msgspec.inspect.LiteralType):
                values = list(kind.values)
            elif isinstance(kind, msgspec.inspect.EnumType):
                values = [member.value for member in kind.cls]
            found += [{**base, field.encode_name: value} for value in values]
    return found


def told_types() -> frozenset[str]:
    """The event types the relay log tells: those `describe` has a branch for."""
    registry: dict[Any, Any] = dict(describe.registry)
    return frozenset(
        type_name(cls)
        for cls in registry
        if isinstance(cls, type) and issubclass(cls, Event) and cls is not Event
    )


def test_the_relay_log_tells_every_event_or_names_it_bookkeeping() -> None:
    every = {type_name(cls) for cls in EVENTS.values()}
    assert told_types() | SYSTEM_EVENTS >= every
    assert not told_types() & SYSTEM_EVENTS


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_event_told_reads_as_a_sentence_whatever_its_values(language: str) -> None:
    t = Translator(language, ZONE)
    for cls in EVENTS.values():
        name = type_name(cls)
        if name in SYSTEM_EVENTS:
            continue
        for n, event in enumerate(_variants(cls)):
            told = lines(
                [
                    Entry(
                        stream=cls.CONTEXT.upper(),
                        seq=n,
                        type=name,
                        occurred_at=event["occurred_at"],
                        person="p-1",
                        role="employee",
                        service="ppt",
                        event=event,
                    )
                ],
                t,
                lambda service: f"unit {service}",
            )
            assert len(told) == 1, (name, event)
            assert "{" not in told[0].what
            assert "}" not in told[0].what, told[0].what
            assert name not in told[0].what


def test_bookkeeping_and_unknown_events_are_left_out_never_dumped() -> None:
    t = Translator("en", ZONE)
    roster = _golden(EVENTS["meeting.CaseRosterNoted@1"])
    entries = [
        Entry(
            stream="MEETING",
            seq=1,
            type="CaseRosterNoted",
            occurred_at=roster["occurred_at"],
            person="meeting",
            role="system",
            event=roster,
        ),
        Entry(
            stream="CASE",
            seq=2,
            type="SomethingNew",
            occurred_at=roster["occurred_at"],
            person="p",
            role="employee",
            event={"type": "SomethingNew", "secret": "x"},
        ),
        Entry(
            stream="CASE",
            seq=3,
            type="Escalated",
            occurred_at=roster["occurred_at"],
            person="p",
            role="employee",
            event={"type": "Escalated", "broken": True},
        ),
    ]
    assert lines(entries, t, str) == []
