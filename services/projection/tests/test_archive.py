"""The archive document tells every event a person should read in words, in both languages.

Given every event type of the contracts, each as the services would publish it, when the archive
document is made of them in bokmål and in English, then every event that is not the services'
bookkeeping is a sentence, and no sentence shows a type name or raw data.
"""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4
from zoneinfo import ZoneInfo

import msgspec
import pytest

from stafett_contracts.casefile import CaseSummary
from stafett_contracts.catalogue import EVENTS
from stafett_contracts.export import example_of
from stafett_projection import archive
from stafett_projection.phrases import PHRASES, Language
from stafett_projection.views import Entry
from stafett_runtime.testing import TEST_DIRECTORY

ZONE = ZoneInfo("Europe/Oslo")


def entries() -> list[Entry]:
    told = []
    for seq, cls in enumerate(EVENTS.values(), start=1):
        event = example_of(cls)
        told.append(
            Entry(
                stream=cls.CONTEXT.upper(),
                seq=seq,
                type=cls.__name__,
                occurred_at=datetime(2026, 3, 2, 8, 30, tzinfo=UTC),
                person=event.actor.person,
                role=str(event.actor.role),
                service=event.actor.service,
                event=msgspec.to_builtins(event),
            )
        )
    return told


def test_both_languages_have_a_phrase_for_every_key() -> None:
    assert PHRASES["nb"].keys() == PHRASES["en"].keys()


@pytest.mark.parametrize("language", ["nb", "en"])
def test_every_event_a_person_reads_is_told_in_words(language: Language) -> None:
    # Given one event of every type
    shown = entries()
    # When the archive document is made of them
    document = archive.document(
        uuid4(), None, shown, CaseSummary(status="closed", level=1), TEST_DIRECTORY, language, ZONE
    )
    # Then each event that is not bookkeeping is a line of the log, a sentence
    told = [e.type for e in shown if e.type not in archive.BOOKKEEPING]
    assert len(document.log) == len(told)
    text = archive.markdown(document, ZONE, TEST_DIRECTORY)
    for name in told:
        assert name not in text, f"{name} is shown by its type name"
    assert "{" not in text  # no raw data, no phrase left unfilled
    # and the dates are the municipality's: 08:30 UTC is 09:30 in Oslo in March
    assert "09:30" in text
