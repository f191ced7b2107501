# ruff: noqa: RUF001 (page titles are written with an en dash, as the pages show them)
"""An administrator erases a child: the form, what it means in plain words, then confirmed.

The case service decides (`POST /children/{child_id}/erase`); the page sends the fixed reason
and the reference as the command's body, with the signed-in person's token, and shows what the
service said: a refusal (403) above the form, a child no case names (404) next to its id.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import httpx

from stafett_contracts.identity import Actor, Role
from stafett_web.testing import Browser, Services

ADMINISTRATOR = Actor(person="admin-1", role=Role.ADMINISTRATOR)
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service="barnehage-solsikke")
CHILD_ID = UUID("7d1e2f30-4a5b-4c6d-8e9f-a0b1c2d3e4f5")
ERASE = f"http://case.test/children/{CHILD_ID}/erase"
FORM = {"child_id": str(CHILD_ID), "reason": "erasure_requested", "reference": "2026/1234"}


def confirmed(browser: Browser, **fields: Any) -> httpx.Response:
    return browser.send("/children/erase", {**FORM, **fields, "step": "confirm"})


def test_an_administrator_reviews_in_plain_words_then_erases_with_their_own_token(
    browser: Browser, services: Services
) -> None:
    services.reply(
        "POST", ERASE, json_body={"child_id": str(CHILD_ID), "version": 1, "already_erased": False}
    )
    # Given an administrator on the erasure page, which their menu links to
    page = browser.sign_in(ADMINISTRATOR, "/children/erase")
    assert page.status_code == 200
    assert "<title>Slett et barns personopplysninger – Stafett</title>" in page.text
    assert 'href="/children/erase"' in page.text
    assert "Krav om sletting er innvilget (GDPR art. 17)" in page.text  # the fixed reasons
    # When they fill it in, then they are told what it means, and nothing is sent yet
    review = browser.send("/children/erase", {**FORM, "step": "review"})
    assert review.status_code == 200
    assert f"Barnet med id {CHILD_ID} slettes i alle saker som nevner det." in review.text
    assert "Journalnummer: 2026/1234." in review.text
    assert "Slettingen kan ikke angres." in review.text
    assert services.bodies("POST", ERASE) == []
    # When they confirm
    done = confirmed(browser)
    # Then the case service gets the fixed reason and the reference, as the administrator
    assert done.status_code in (302, 303), done.text
    assert services.bodies("POST", ERASE) == [
        {"reason": "erasure_requested", "reference": "2026/1234"}
    ]
    (sent,) = [r for r in services.sent if r.method == "POST"]
    assert sent.headers["Authorization"].startswith("Bearer ")
    # and the page says it is done
    after = browser.client.get(done.headers["location"])
    assert "Barnet er slettet." in after.text


def test_erasing_a_child_erased_already_says_nothing_new_was_recorded(
    browser: Browser, services: Services
) -> None:
    services.reply(
        "POST", ERASE, json_body={"child_id": str(CHILD_ID), "version": 1, "already_erased": True}
    )
    browser.sign_in(ADMINISTRATOR, "/children/erase")
    done = confirmed(browser)
    after = browser.client.get(done.headers["location"])
    assert "Barnet var slettet fra før. Ingenting nytt ble registrert." in after.text


def test_anyone_but_an_administrator_is_refused_by_the_case_service_with_its_rule(
    browser: Browser, services: Services
) -> None:
    # Rule administrator-erases (the case service's): refused before anything is looked up
    services.reply(
        "POST",
        ERASE,
        status=403,
        json_body={
            "status_code": 403,
            "detail": "only an administrator erases a child",
            "extra": {"rule": "administrator-erases"},
        },
    )
    browser.sign_in(TEACHER, "/children/erase")
    refused = confirmed(browser)
    assert refused.status_code == 403
    assert "only an administrator erases a child" in refused.text
    assert 'value="2026/1234"' in refused.text  # what was typed is kept


def test_a_child_no_case_names_is_said_next_to_the_child_s_id(
    browser: Browser, services: Services
) -> None:
    services.reply(
        "POST",
        ERASE,
        status=404,
        json_body={"status_code": 404, "detail": f"child {CHILD_ID}: no case names this child"},
    )
    browser.sign_in(ADMINISTRATOR, "/children/erase")
    missing = confirmed(browser)
    assert missing.status_code == 404
    assert 'href="#f-child_id"' in missing.text
    assert "no case names this child" in missing.text


def test_a_reference_that_is_not_a_journal_number_is_said_next_to_it_and_nothing_erased(
    browser: Browser, services: Services
) -> None:
    services.reply(
        "POST",
        ERASE,
        status=400,
        json_body={
            "status_code": 400,
            "detail": "Validation failed for POST /children/x/erase",
            "extra": [{"key": "reference", "message": "Expected `str` matching regex"}],
        },
    )
    browser.sign_in(ADMINISTRATOR, "/children/erase")
    refused = confirmed(browser, reference="Kari sin sak")
    assert refused.status_code == 400
    assert 'href="#f-reference"' in refused.text
    assert 'value="Kari sin sak"' in refused.text


def test_a_child_id_that_is_no_id_is_refused_by_the_page_before_anything_is_sent(
    browser: Browser, services: Services
) -> None:
    browser.sign_in(ADMINISTRATOR, "/children/erase")
    answer = browser.send(
        "/children/erase", {**FORM, "child_id": "Kari Nordmann", "step": "review"}
    )
    assert answer.status_code == 422
    assert "Skriv barnets id slik Stafett viser den (36 tegn)." in answer.text
    assert [r for r in services.sent if r.method == "POST"] == []
