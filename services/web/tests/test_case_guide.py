"""The case page shows where the case is in its action guide (the step, who does it, what comes
next) and the child's view beside a decision, as the projection answers them; and the step's
form, drawn from the guide's template, sends the command that records the step."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import msgspec
import pytest
from structlog.testing import capture_logs

from stafett_contracts import case
from stafett_contracts.casefile import fold
from stafett_contracts.guides import DEFAULT_GUIDES, Guide, progress
from stafett_contracts.identity import Actor, Role
from stafett_contracts.people import ServiceKind
from stafett_web import guideforms
from stafett_web.testing import Browser, Services, entry, envelope

KINDERGARTEN = "barnehage-solsikke"
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service=KINDERGARTEN)
CASE_ID = UUID("3f2a8c6e-1111-4222-8333-944445555666")
PROJECTION = "http://projection.test"
AT = datetime.now(UTC) - timedelta(days=3)
CHILD_VIEW = "Jeg vil leke mer med de andre."


def a_case_at_level_1(services: Services) -> None:
    events = [
        case.ConcernRaised(
            **envelope(TEACHER, CASE_ID, 1, AT),
            child_id=uuid4(),
            unit=KINDERGARTEN,
            concern="Leker alene.",
            guides={ServiceKind.KINDERGARTEN: 1},
        ),
        case.Escalated(
            **envelope(TEACHER, CASE_ID, 2, AT + timedelta(days=1)),
            from_level=0,
            to_level=1,
            reason="Reell bekymring.",
            child_view=CHILD_VIEW,
        ),
    ]
    state = fold(events)
    assert state is not None
    guide = progress(DEFAULT_GUIDES[ServiceKind.KINDERGARTEN], 1, state)
    reply: dict[str, Any] = {
        "case_id": str(CASE_ID),
        "basis": "the case's own unit",
        "state": {"status": "open", "level": 1, "unit": KINDERGARTEN},
        "entries": [entry(e, n) for n, e in enumerate(events, 1)],
        "guide": msgspec.to_builtins(guide),
    }
    services.reply("GET", f"{PROJECTION}/cases/{CASE_ID}/relay-log", json_body=reply)
    services.reply(
        "GET",
        f"{PROJECTION}/cases/{CASE_ID}/consent-status",
        json_body={"consents": [], "legal_bases": [], "services_covered_now": [KINDERGARTEN]},
    )
    services.reply("GET", f"http://meeting.test/cases/{CASE_ID}/meetings", json_body=[])


def test_the_case_page_shows_the_next_step_of_the_guide_who_does_it_and_what_follows(
    browser: Browser, services: Services
) -> None:
    # Given a kindergarten case that has just moved to level 1
    a_case_at_level_1(services)
    # When the teacher opens it
    page = browser.sign_in(TEACHER, f"/cases/{CASE_ID}")
    # Then the page says the step it is at, who does it, and what comes next, in bokmål
    assert page.status_code == 200, page.text
    assert "Handlingsveilederen" in page.text
    assert "Neste steg: Saken drøftes i ped.team" in page.text
    assert "Hvem: teamet, sammen med foresatte" in page.text
    assert "Planlegg tiltak sammen med foresatte" in page.text
    assert "versjon 1" in page.text
    # And the child's view stands beside the decision in the relay log
    assert f"Barnets syn: {CHILD_VIEW}" in page.text


def test_the_case_page_names_a_step_s_tools_by_the_titles_of_the_guide_s_forms(
    browser: Browser, services: Services
) -> None:
    # Given a kindergarten case at level 1, and the case service's version 1 of its guide
    a_case_at_level_1(services)
    shipped = DEFAULT_GUIDES[ServiceKind.KINDERGARTEN]
    services.reply(
        "GET", "http://case.test/guides/kindergarten/1", json_body=msgspec.to_builtins(shipped)
    )
    # When the teacher opens it
    page = browser.sign_in(TEACHER, f"/cases/{CASE_ID}")
    # Then the step's tools are named by their forms' titles, not their ids
    assert page.status_code == 200, page.text
    tools = re.search(r"<p>Verktøy: ([^<]*)</p>", page.text)
    assert tools is not None
    assert tools.group(1) == (
        "Mal med hjelpespørsmål for konkretisering av problemstilling, Mal for møter"
    )


# The step's form, drawn from the guide's template (docs/guides.md, stafett_web.guideforms)

CASE = "http://case.test"
OPENAPI = Path(__file__).parents[3] / "docs" / "openapi" / "case.json"


def a_case_at_the_wondering_conversation(
    services: Services, guide: Guide | None = None, version: int = 1
) -> None:
    """A kindergarten case at level 0 whose worry has been shared: the next step is the
    wondering conversation, and the case service serves the guide it follows (`version`)."""
    events = [
        case.ConcernRaised(
            **envelope(TEACHER, CASE_ID, 1, AT),
            child_id=uuid4(),
            unit=KINDERGARTEN,
            concern="Leker alene.",
            guides={ServiceKind.KINDERGARTEN: version},
        ),
        case.ConcernShared(
            **envelope(TEACHER, CASE_ID, 2, AT + timedelta(hours=1)), shared_with="styrer-1"
        ),
    ]
    state = fold(events)
    assert state is not None
    guide = guide or DEFAULT_GUIDES[ServiceKind.KINDERGARTEN]
    shown = progress(guide, version, state)
    assert shown is not None
    assert shown.current is not None
    assert shown.current.records == "WonderingConversationHeld"
    services.reply(
        "GET",
        f"{PROJECTION}/cases/{CASE_ID}/relay-log",
        json_body={
            "case_id": str(CASE_ID),
            "state": {"status": "open", "level": 0, "unit": KINDERGARTEN},
            "entries": [entry(e, n) for n, e in enumerate(events, 1)],
            "guide": msgspec.to_builtins(shown),
        },
    )
    services.reply(
        "GET",
        f"{PROJECTION}/cases/{CASE_ID}/consent-status",
        json_body={"consents": [], "legal_bases": [], "services_covered_now": [KINDERGARTEN]},
    )
    services.reply("GET", f"http://meeting.test/cases/{CASE_ID}/meetings", json_body=[])
    served = msgspec.to_builtins(guide)
    services.reply("GET", f"{CASE}/guides/kindergarten/{version}", json_body=served)


def _form_posting_to(page: str, action: str) -> str:
    found = re.search(rf'<form method="post" action="{re.escape(action)}".*?</form>', page, re.S)
    assert found, f"no form posting to {action}"
    return found.group(0)


def _labels(form: str) -> dict[str, str]:
    """Each field's label, by the name of the input the label is tied to (`for` = its id)."""
    ids = dict(re.findall(r'id="([^"]+)" name="([^"]+)"', form))
    labels = re.findall(r'<label for="([^"]+)">([^<]*)', form)
    return {ids[for_id]: text.strip() for for_id, text in labels}


def _command_body(command: str) -> set[str]:
    document = json.loads(OPENAPI.read_text())
    schema = document["paths"][f"/cases/{{case_id}}/{command}"]["post"]["requestBody"]
    ref = schema["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    return set(document["components"]["schemas"][ref]["properties"])


def test_the_step_s_form_is_drawn_from_the_guide_s_template_and_sends_what_the_api_takes(
    browser: Browser, services: Services
) -> None:
    # Rule: a form's fields fill the event the step records (issue 18, docs/guides.md)
    # Given a kindergarten case at the wondering-conversation step
    a_case_at_the_wondering_conversation(services)
    action = f"/cases/{CASE_ID}/act/record-wondering-conversation"
    # When a worker opens it
    page = browser.sign_in(TEACHER, f"/cases/{CASE_ID}")
    assert page.status_code == 200, page.text
    # Then the step's form is the guide's conversation template, its fields labelled in bokmål
    assert "Samtalemal: undringssamtale med foresatte" in page.text
    form = _form_posting_to(page.text, action)
    assert _labels(form) == {
        "held_on": "Dato",
        "with_guardians": "Med foresatte",
        "with_child": "Med barnet",
        "summary": "Hva kom fram?",
    }
    # ... each input of the template's type, the required ones marked, the optional ones said
    assert re.search(r'<input type="date" id="[^"]+" name="held_on" aria-required="true"', form)
    assert re.search(r'<input type="checkbox" id="[^"]+" name="with_child"', form)
    assert re.search(r'<textarea id="[^"]+" name="summary" aria-required="true"', form)
    # When the worker fills it in and sends it
    command = f"{CASE}/cases/{CASE_ID}/record-wondering-conversation"
    services.reply("POST", command, json_body={"id": str(CASE_ID), "version": 3})
    guide_key = re.search(r'name="_guide" value="([^"]+)"', form)
    assert guide_key is not None
    sent = browser.send(
        action,
        {
            "_guide": guide_key.group(1),
            "held_on": "2026-03-02",
            "with_guardians": "yes",
            "summary": "Mor forteller om en flytting.",
        },
    )
    # Then the case service gets the fields its command takes, and the page returns to the case
    assert sent.status_code in (302, 303), sent.text
    (body,) = services.bodies("POST", command)
    assert body == {
        "held_on": "2026-03-02",
        "with_guardians": True,
        "with_child": False,
        "summary": "Mor forteller om en flytting.",
    }
    assert set(body) <= _command_body("record-wondering-conversation")


def test_a_refused_step_form_comes_back_as_the_guide_drew_it_with_what_was_typed(
    browser: Browser, services: Services
) -> None:
    # Rule: bad input is a clear 4xx naming the field, and what was typed is kept
    # Given a kindergarten case at the wondering-conversation step, opened by a worker
    a_case_at_the_wondering_conversation(services)
    browser.sign_in(TEACHER, f"/cases/{CASE_ID}")
    command = f"{CASE}/cases/{CASE_ID}/record-wondering-conversation"
    services.reply(
        "POST",
        command,
        422,
        {
            "status_code": 422,
            "detail": "Validation failed",
            "extra": [{"key": "data", "message": "Object missing required field `summary`"}],
        },
    )
    # When the worker sends the guide's form without saying what came up
    sent = browser.send(
        f"/cases/{CASE_ID}/act/record-wondering-conversation",
        {"_guide": "kindergarten/1/conversation-guardians", "held_on": "2026-03-02"},
    )
    # Then the same form comes back, in the guide's words, the date kept, the field named
    assert sent.status_code == 422, sent.text
    assert "Samtalemal: undringssamtale med foresatte" in sent.text
    assert '<a href="#f-summary">Hva kom fram?: Fyll ut dette feltet.</a>' in sent.text
    assert re.search(r'name="held_on" aria-required="true" value="2026-03-02"', sent.text)
    assert re.search(
        r'name="summary" aria-describedby="f-summary-error" aria-invalid="true"', sent.text
    )


def test_a_template_the_command_cannot_take_falls_back_to_the_command_s_own_form_once_logged(
    browser: Browser, services: Services
) -> None:
    # Rule: a template the command cannot take is not drawn; no input gives a 500
    # Given a published guide whose conversation template leaves out the date the command needs
    shipped = DEFAULT_GUIDES[ServiceKind.KINDERGARTEN]
    short = tuple(
        msgspec.structs.replace(f, fields=tuple(x for x in f.fields if x.key != "held_on"))
        if f.id == "conversation-guardians"
        else f
        for f in shipped.forms
    )
    published = msgspec.structs.replace(shipped, forms=short)
    a_case_at_the_wondering_conversation(services, published, version=2)
    # When a worker opens a case at that step, twice
    with capture_logs() as logged:
        first = browser.sign_in(TEACHER, f"/cases/{CASE_ID}")
        again = browser.client.get(f"/cases/{CASE_ID}")
    # Then the page offers the command's own form instead, and the log says why, once
    for page in (first, again):
        assert page.status_code == 200, page.text
        assert 'name="_guide"' not in page.text
        assert f'<a href="/cases/{CASE_ID}/act/record-wondering-conversation">' in page.text
    told = [e for e in logged if e["event"] == "guide_form_not_drawn"]
    assert [(e["template"], "held_on" in e["reason"]) for e in told] == [
        ("kindergarten/2/conversation-guardians", True)
    ]


@pytest.mark.parametrize("service", sorted(DEFAULT_GUIDES))
def test_every_form_of_a_shipped_guide_that_fills_a_step_s_event_is_drawn(
    service: ServiceKind,
) -> None:
    # Rule: the shipped guides' templates fill the commands that record their steps' events
    guide = DEFAULT_GUIDES[service]
    for level in guide.levels:
        for step in level.steps:
            if step.records not in guideforms.RECORDED_BY:
                continue
            fills = [guide.form(t) for t in step.tools]
            templates = [f for f in fills if f is not None and f.fills == step.records]
            for template in templates:
                drawn = guideforms.draw(template, f"{service}/1/{template.id}")
                assert [f.name for f in drawn.fields] == [f.key for f in template.fields]
