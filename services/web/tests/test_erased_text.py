"""Free text of an erased child on the pages (DOMAIN.md rules 8 and 10).

Once a child is erased, the services answer each piece of free text about them as
`{"erased": true, ...}` instead of a string (the child's key is gone, so nothing can open it).
Given such answers, the case's page and the meeting's page say in the reader's language that the
text was erased with the child, and never fail, nor show the marker as raw data.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest

from stafett_contracts import case, meeting
from stafett_contracts.identity import Actor, Role
from stafett_contracts.personal import Erased
from stafett_web.testing import Browser, Services, entry, envelope

KINDERGARTEN = "barnehage-solsikke"
GUARDIAN = Actor(person="forelder-1", role=Role.GUARDIAN)
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service=KINDERGARTEN)
CASE_ID = UUID("5a2a8c6e-1111-4222-8333-944445555666")
MEETING_ID = UUID("6b5f6a7c-9999-4888-8777-666655554444")
PROJECTION = "http://projection.test"
NOW = datetime.now(UTC)
ERASED = msgspec.to_builtins(Erased())
SAID = {
    "nb": "(slettet sammen med barnets opplysninger)",
    "en": "(erased with the child's data)",
}


def erased_entry(event: case.CaseEvent | meeting.MeetingEvent, seq: int, *texts: str) -> Any:
    """The projection's entry for `event` once the child is erased: each text an `Erased`."""
    found = entry(event, seq)
    found["event"].update(dict.fromkeys(texts, ERASED))
    return found


def an_erased_childs_case(services: Services) -> None:
    at = NOW - timedelta(days=10)
    measure_id = uuid4()
    events = [
        erased_entry(
            case.ConcernRaised(
                **envelope(TEACHER, CASE_ID, 1, at),
                child_id=uuid4(),
                unit=KINDERGARTEN,
                concern="gone",
            ),
            1,
            "concern",
        ),
        erased_entry(
            case.Escalated(
                **envelope(TEACHER, CASE_ID, 2, at + timedelta(days=1)),
                from_level=0,
                to_level=1,
                reason="gone",
                child_view="gone",
            ),
            2,
            "reason",
            "child_view",
        ),
        erased_entry(
            meeting.MinutesRecorded(
                **envelope(TEACHER, MEETING_ID, 3, at + timedelta(days=2)),
                case_id=CASE_ID,
                minutes="gone",
            ),
            3,
            "minutes",
        ),
    ]
    services.reply(
        "GET",
        f"{PROJECTION}/cases/{CASE_ID}/relay-log",
        json_body={
            "case_id": str(CASE_ID),
            "basis": "own unit",
            "state": {
                "status": "open",
                "level": 1,
                "unit": KINDERGARTEN,
                "services": [KINDERGARTEN],
                "open_measures": [
                    {
                        "measure_id": str(measure_id),
                        "description": ERASED,
                        "responsible": TEACHER.person,
                        "service": KINDERGARTEN,
                        "evaluation_date": (NOW + timedelta(days=20)).date().isoformat(),
                    }
                ],
            },
            "erased": ERASED,
            "entries": events,
        },
    )
    services.reply("GET", f"{PROJECTION}/cases/{CASE_ID}/consent-status", json_body={})
    services.reply("GET", f"http://meeting.test/cases/{CASE_ID}/meetings", json_body=[])
    services.reply(
        "GET",
        f"http://meeting.test/meetings/{MEETING_ID}",
        json_body={
            "id": str(MEETING_ID),
            "case_id": str(CASE_ID),
            "version": 3,
            "meeting_type": "cooperation",
            "starts_at": (NOW - timedelta(days=8)).isoformat(),
            "ends_at": (NOW - timedelta(days=8, hours=-1)).isoformat(),
            "place": "Solsikken, møterom",
            "leader": TEACHER.person,
            "leader_service": KINDERGARTEN,
            "agenda": [ERASED],
            "held_at": (NOW - timedelta(days=8)).isoformat(),
            "attended": [TEACHER.person],
            "minutes": [ERASED],
            "decisions": {str(uuid4()): {"kind": "continue", "reason": ERASED}},
            "action_items": {
                str(uuid4()): {
                    "description": ERASED,
                    "due_on": (NOW + timedelta(days=3)).date().isoformat(),
                    "owner": TEACHER.person,
                }
            },
        },
    )


@pytest.mark.parametrize("language", ["nb", "en"])
def test_given_an_erased_child_the_case_page_says_each_text_was_erased_in_the_readers_language(
    browser: Browser, services: Services, language: str
) -> None:
    # Given the projection answers the case of an erased child
    an_erased_childs_case(services)
    # When a teacher of the unit opens the case's page, in their language
    browser.client.headers["accept-language"] = language
    page = browser.sign_in(TEACHER, f"/cases/{CASE_ID}")
    # Then each text (the concern, the reason, the child's view, the minutes, the measure) says
    # it was erased, in the page's language, and the marker is never shown as data
    assert page.status_code == 200, page.text
    assert html.unescape(page.text).count(SAID[language]) == 5
    assert '{"' not in page.text
    assert "'erased'" not in page.text


@pytest.mark.parametrize("language", ["nb", "en"])
def test_given_an_erased_child_the_meeting_page_says_each_text_was_erased(
    browser: Browser, services: Services, language: str
) -> None:
    # Given the meeting service answers a meeting of an erased child's case
    an_erased_childs_case(services)
    # When a teacher opens the meeting's page, in their language
    browser.client.headers["accept-language"] = language
    page = browser.sign_in(TEACHER, f"/cases/{CASE_ID}/meetings/{MEETING_ID}")
    # Then the agenda, the minutes, the decision's reason and the action item say so
    assert page.status_code == 200, page.text
    assert html.unescape(page.text).count(SAID[language]) == 4
    assert "'erased'" not in page.text
