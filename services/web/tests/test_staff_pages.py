# ruff: noqa: RUF001 (page titles are written with an en dash, as the pages show them)
"""A case worker's and a leader's pages: the worklist, raising a concern, the case's commands and
meetings, the unit overview and the figures.

Every form goes to its service as the command's body, and the service's answer is what the page
says: a 422 next to the field it names, a 409 or 403 above the form, what was typed kept.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from uuid import UUID, uuid4

from stafett_contracts.identity import Actor, Role
from stafett_web.testing import Browser, Services

KINDERGARTEN = "barnehage-solsikke"
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service=KINDERGARTEN)
LEADER = Actor(person="styrer-1", role=Role.UNIT_LEADER, service=KINDERGARTEN)
CASE_ID = UUID("3f2a8c6e-1111-4222-8333-944445555666")
MEETING_ID = UUID("0b5f6a7c-9999-4888-8777-666655554444")


def test_the_worklist_puts_what_is_overdue_first_and_says_so_in_words(
    browser: Browser, services: Services
) -> None:
    # Given the teacher holds the baton on one case and owes an evaluation that is overdue
    yesterday = date.today() - timedelta(days=1)
    services.reply(
        "GET",
        "http://projection.test/worklist",
        json_body=[
            {"case_id": str(CASE_ID), "kind": "measure_evaluation", "due": yesterday.isoformat()},
            {"case_id": str(CASE_ID), "kind": "baton_holder", "level": 1},
        ],
    )
    # When the teacher signs in
    page = browser.sign_in(TEACHER)
    # Then the worklist shows both, the overdue one marked in words, not colour alone
    assert page.status_code == 200
    assert "<title>Arbeidsliste – Stafett</title>" in page.text
    assert "Evaluere tiltak" in page.text
    assert "Stafettholder" in page.text
    assert "Over fristen" in page.text
    assert "1 ting har passert fristen." in page.text


def test_the_worklist_marks_a_deadline_overdue_as_the_projection_flags_it(
    browser: Browser, services: Services
) -> None:
    # Given the teacher's case is inactive past its deadline today (the projection flags it
    # overdue), and the level-0 decision of another is due next week
    today, next_week = date.today(), date.today() + timedelta(days=7)
    services.reply(
        "GET",
        "http://projection.test/worklist",
        json_body=[
            {
                "case_id": str(CASE_ID),
                "kind": "inactivity_due",
                "level": 1,
                "due": today.isoformat(),
                "overdue": True,
            },
            {
                "case_id": str(uuid4()),
                "kind": "decision_due",
                "level": 0,
                "due": next_week.isoformat(),
                "overdue": False,
            },
        ],
    )
    # When the teacher signs in
    page = browser.sign_in(TEACHER)
    # Then the inactivity is named in words and marked overdue (though due today), the decision
    # is not
    assert page.status_code == 200
    assert "Ingenting skjedd i saken" in page.text
    assert "Beslutning på nivå 0" in page.text
    assert page.text.count('<span class="tag refused">Over fristen</span>') == 1
    assert "1 ting har passert fristen." in page.text


def test_a_concern_refused_for_a_field_shows_the_message_next_to_it_and_keeps_the_text(
    browser: Browser, services: Services
) -> None:
    # Given the case service does not know the child (422 naming the field)
    services.reply(
        "POST",
        "http://case.test/cases",
        422,
        {
            "status_code": 422,
            "detail": "the population register knows no such child",
            "extra": [{"key": "national_id", "message": "no child with this national id"}],
        },
    )
    browser.sign_in(TEACHER, "/concerns/new")
    # When the teacher raises a concern
    concern = "Trekker seg unna i lek <over> flere uker."
    answer = browser.send("/concerns/new", {"national_id": "17051800000", "concern": concern})
    # Then the form comes back with the message next to the national id, linked from the top,
    # and everything typed is still there
    assert answer.status_code == 422
    field = re.search(r'<div class="field has-error">.*?</div>', answer.text, re.S)
    assert field is not None
    assert 'for="f-national_id"' in field.group(0)
    assert "no child with this national id" in field.group(0)
    assert 'href="#f-national_id"' in answer.text
    assert 'aria-invalid="true"' in answer.text
    assert 'value="17051800000"' in answer.text
    assert "Trekker seg unna i lek &lt;over&gt; flere uker." in answer.text
    # And the case service got exactly what was typed, nothing else
    (sent,) = services.bodies("POST", "http://case.test/cases")
    assert sent == {"national_id": "17051800000", "concern": concern}


def test_a_missing_field_is_named_in_the_reader_s_words(
    browser: Browser, services: Services
) -> None:
    # Given the case service's own answer for a concern without text (msgspec's words)
    services.reply(
        "POST",
        "http://case.test/cases",
        422,
        {
            "status_code": 422,
            "detail": "Validation failed for POST /cases",
            "extra": [{"key": "data", "message": "Object missing required field `concern`"}],
        },
    )
    browser.sign_in(TEACHER, "/concerns/new")
    # When the teacher sends the form without it
    answer = browser.send("/concerns/new", {"national_id": "17051800000", "concern": ""})
    # Then the concern field says what to do
    assert answer.status_code == 422
    assert re.search(r'<p class="error" id="f-concern-error">.*Fyll ut dette feltet\.', answer.text)


def test_a_concern_raised_opens_the_new_case_at_its_own_version(
    browser: Browser, services: Services
) -> None:
    # Given the case service raises the concern
    new = uuid4()
    services.reply("POST", "http://case.test/cases", 201, {"id": str(new), "version": 1})
    browser.sign_in(TEACHER, "/concerns/new")
    # When the teacher raises it
    answer = browser.send("/concerns/new", {"national_id": "17051800000", "concern": "Uro."})
    # Then the new case's page follows, asking the projection for at least that version
    assert answer.status_code in (302, 303)
    assert answer.headers["location"] == f"/cases/{new}?seen=1"


def test_a_rule_s_refusal_of_a_command_is_shown_above_the_form(
    browser: Browser, services: Services
) -> None:
    # Given the case service refuses to move the case to level 1 without consent
    services.reply(
        "POST",
        f"http://case.test/cases/{CASE_ID}/escalate",
        409,
        {
            "status_code": 409,
            "detail": "level 1 needs a consent in force",
            "extra": {"rule": "consent-for-level-1"},
        },
    )
    browser.sign_in(LEADER, f"/cases/{CASE_ID}/act/escalate")
    # When the leader escalates
    answer = browser.send(
        f"/cases/{CASE_ID}/act/escalate",
        {"to_level": "1", "reason": "Tiltak i barnehagen.", "participants": "mor-1\nstyrer-1"},
    )
    # Then the rule's message is above the form, and the choices stay
    assert answer.status_code == 409
    problems = re.search(r'<div class="problems".*?</div>', answer.text, re.S)
    assert problems is not None
    assert "level 1 needs a consent in force" in problems.group(0)
    assert '<option value="1" selected>' in answer.text
    # And the body was the command's: a number, the reason, the participants as a list
    (sent,) = services.bodies("POST", f"http://case.test/cases/{CASE_ID}/escalate")
    assert sent == {
        "to_level": 1,
        "reason": "Tiltak i barnehagen.",
        "participants": ["mor-1", "styrer-1"],
    }


def test_a_measure_is_planned_under_an_id_the_form_chose_so_a_retry_plans_it_once(
    browser: Browser, services: Services
) -> None:
    services.reply(
        "POST",
        f"http://case.test/cases/{CASE_ID}/plan-measure",
        201,
        {"id": str(CASE_ID), "version": 4},
    )
    form = browser.sign_in(TEACHER, f"/cases/{CASE_ID}/act/plan-measure")
    measure_id = re.search(r'name="measure_id" value="([0-9a-f-]{36})"', form.text)
    assert measure_id is not None
    fields = {
        "measure_id": measure_id.group(1),
        "description": "Språkgruppe to ganger i uken.",
        "responsible": "ped-1",
        "service": KINDERGARTEN,
        "evaluation_date": "2027-02-01",
    }
    answer = browser.send(f"/cases/{CASE_ID}/act/plan-measure", fields)
    assert answer.headers["location"] == f"/cases/{CASE_ID}?seen=4"
    (sent,) = services.bodies("POST", f"http://case.test/cases/{CASE_ID}/plan-measure")
    assert sent == fields


def test_a_meeting_is_scheduled_in_local_time_and_its_decision_recorded(
    browser: Browser, services: Services
) -> None:
    # Given the meeting service schedules and records
    services.reply(
        "POST", "http://meeting.test/meetings", 201, {"id": str(MEETING_ID), "version": 1}
    )
    services.reply(
        "POST",
        f"http://meeting.test/meetings/{MEETING_ID}/record-decision",
        201,
        {"id": str(MEETING_ID), "version": 5},
    )
    browser.sign_in(LEADER, f"/cases/{CASE_ID}/meetings/new")
    # When the leader calls a meeting for 11 January at 09:00, Norwegian time
    scheduled = browser.send(
        f"/cases/{CASE_ID}/meetings/new",
        {
            "meeting_type": "cooperation",
            "starts_at": "2027-01-11T09:00",
            "ends_at": "2027-01-11T10:00",
            "place": "",
            "video_link": "https://video.example/rom/1",
            "agenda": "Hvordan går det?\nTrengs mer hjelp?",
        },
    )
    # Then the meeting service gets the moments with Oslo's offset, and the meeting's page follows
    assert scheduled.headers["location"] == f"/cases/{CASE_ID}/meetings/{MEETING_ID}"
    (sent,) = services.bodies("POST", "http://meeting.test/meetings")
    assert sent == {
        "case_id": str(CASE_ID),
        "meeting_type": "cooperation",
        "starts_at": "2027-01-11T09:00:00+01:00",
        "ends_at": "2027-01-11T10:00:00+01:00",
        "video_link": "https://video.example/rom/1",
        "agenda": ["Hvordan går det?", "Trengs mer hjelp?"],
    }
    # When they record the meeting's decision to move the case to level 2
    form = browser.client.get(f"/cases/{CASE_ID}/meetings/{MEETING_ID}/act/record-decision")
    decision_id = re.search(r'name="decision_id" value="([0-9a-f-]{36})"', form.text)
    assert decision_id is not None
    browser.send(
        f"/cases/{CASE_ID}/meetings/{MEETING_ID}/act/record-decision",
        {
            "decision_id": decision_id.group(1),
            "kind": "move_to_level",
            "to_level": "2",
            "reason": "PPT utreder språket.",
            "participants": "",
        },
    )
    # Then the decision goes under the id the form chose
    (decided,) = services.bodies(
        "POST", f"http://meeting.test/meetings/{MEETING_ID}/record-decision"
    )
    assert decided == {
        "decision_id": decision_id.group(1),
        "kind": "move_to_level",
        "to_level": 2,
        "reason": "PPT utreder språket.",
    }


def test_every_command_of_the_case_service_has_its_form(browser: Browser) -> None:
    browser.sign_in(TEACHER, f"/cases/{CASE_ID}/act/share-concern")
    from stafett_web.forms import CASE_FORMS

    for name in CASE_FORMS:
        page = browser.client.get(f"/cases/{CASE_ID}/act/{name}")
        assert page.status_code == 200, name
        assert "<form" in page.text
        assert "_csrf_token" in page.text, name


def test_an_unknown_command_is_a_404_page(browser: Browser) -> None:
    page = browser.sign_in(TEACHER, f"/cases/{CASE_ID}/act/delete-everything")
    assert page.status_code == 404
    assert "Fant ikke siden" in page.text


def test_the_unit_overview_and_the_figures_are_tables_and_charts_without_small_counts(
    browser: Browser, services: Services
) -> None:
    # Given the projection's overview of the unit and its figures (a count under 5 withheld)
    services.reply(
        "GET",
        f"http://projection.test/units/{KINDERGARTEN}/overview",
        json_body={
            "unit": KINDERGARTEN,
            "open_cases_per_level": {"0": 6, "1": 9, "2": 0, "3": 5},
            "follow_up_breaks": [
                {
                    "case_id": str(CASE_ID),
                    "detected_at": datetime.now(UTC).isoformat(),
                    "stage": "baton_holder",
                    "cause": "inactivity",
                }
            ],
            "evaluations_due": [],
        },
    )
    services.reply(
        "GET",
        "http://projection.test/figures",
        json_body={
            "min_group": 5,
            "concerns_per_unit_and_month": {KINDERGARTEN: {"2026-11": 7, "2026-12": None}},
            "closed_cases": 12,
            "share_resolved_at_levels_0_1": 0.75,
            "days_from_concern_to_first_measure": 9.5,
            "days_at_each_level": {"0": 12.0, "1": 40.5},
            "escalations": 8,
            "de_escalations": None,
            "follow_up_breaks": {"inactivity": 5},
            "consent_withdrawals": None,
            "system_measures": 0,
            "child_welfare_reports": None,
            "feedback": {"count": 6, "mean_rating": 4.2, "mean_heard": 4.5},
        },
    )
    # When the leader opens the overview
    overview = browser.sign_in(LEADER, f"/units/{KINDERGARTEN}/overview")
    # Then the open cases per level are a chart and a table, each number in text
    assert overview.status_code == 200
    assert '<svg class="chart"' in overview.text
    assert 'role="img"' in overview.text
    assert ">9</text>" in overview.text
    assert "<td>9</td>" in overview.text
    assert "ingen aktivitet" in overview.text
    # When they open the figures
    figures = browser.client.get("/figures")
    # Then withheld counts say so in words, and shares and means are given
    assert figures.status_code == 200
    assert "under 5" in figures.text
    assert "75.0 %" in figures.text
    assert "Solsikken barnehage" in figures.text
    assert figures.text.count('<svg class="chart"') == 3
