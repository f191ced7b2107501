"""Whatever a person (or anyone) sends, and whatever the services answer, the web app answers
with a page, never a 500: a form with any fields, any values in the address, any answer of a
service (a refusal of any shape, something that is not JSON, no answer at all)."""

from __future__ import annotations

from typing import Any

import httpx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stafett_contracts.identity import Actor, Role
from stafett_web.testing import Browser, Services

PEOPLE = [
    Actor(person="styrer-1", role=Role.UNIT_LEADER, service="barnehage-solsikke"),
    Actor(person="forelder-1", role=Role.GUARDIAN),
    Actor(person="tilsyn-1", role=Role.AUDITOR),
]
CASE = "3f2a8c6e-1111-4222-8333-944445555666"
MEETING = "0b5f6a7c-9999-4888-8777-666655554444"
CONSENT = "7d1e2f30-aaaa-4bbb-8ccc-ddddeeeeffff"
PAGES = [
    "/",
    "/worklist",
    "/concerns/new",
    f"/cases/{CASE}",
    f"/cases/{CASE}/access-log",
    f"/cases/{CASE}/act/escalate",
    f"/cases/{CASE}/act/plan-measure",
    f"/cases/{CASE}/consents/new",
    f"/cases/{CASE}/consents/{CONSENT}/withdraw",
    f"/cases/{CASE}/consents/{CONSENT}/scope",
    f"/cases/{CASE}/meetings/new",
    f"/cases/{CASE}/meetings/{MEETING}",
    f"/cases/{CASE}/meetings/{MEETING}/calendar.ics",
    f"/cases/{CASE}/meetings/{MEETING}/act/record-decision",
    f"/cases/{CASE}/export.jsonl",
    "/units/barnehage-solsikke/overview",
    "/figures",
    "/audit",
    "/audit/overrides",
    "/language",
    "/logout",
    "/audit/find",
    f"/cases/{CASE}/purpose",
    "/cases/not-a-uuid",
    "/login",
]
FORMS = [p for p in PAGES if not p.endswith((".ics", ".jsonl", "/access-log", "/figures"))]

text = st.text(max_size=40)
answers = st.one_of(
    st.builds(
        lambda status, body: httpx.Response(status, json=body),
        st.sampled_from([200, 201, 400, 401, 403, 404, 409, 413, 422, 500, 503]),
        st.recursive(
            st.none() | st.booleans() | st.integers() | text,
            lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
            max_leaves=8,
        )
        | st.fixed_dictionaries(
            {
                "detail": text,
                "extra": st.one_of(st.none(), text, st.lists(st.dictionaries(text, text))),
            }
        ),
    ),
    st.builds(lambda body: httpx.Response(200, content=body), st.binary(max_size=30)),
    st.just("unreachable"),
)


def _answer_with(answer: Any) -> Any:
    def reply(request: httpx.Request) -> httpx.Response:
        if answer == "unreachable":
            raise httpx.ConnectError("refused", request=request)
        assert isinstance(answer, httpx.Response)
        return httpx.Response(answer.status_code, content=answer.content, headers=answer.headers)

    return reply


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    page=st.sampled_from(FORMS),
    fields=st.dictionaries(
        st.sampled_from(
            [
                "concern",
                "national_id",
                "to_level",
                "starts_at",
                "services",
                "purpose",
                "whole",
                "step",
                "lang",
                "next",
                "evidence.form",
                "rating",
                "kind",
                "x",
                "_guide",  # the action guide's form it was sent from
            ]
        ),
        st.one_of(text, st.lists(text, max_size=3), st.just("kindergarten/1/measures-log")),
        max_size=6,
    ),
    answer=answers,
    person=st.sampled_from(PEOPLE),
)
def test_any_form_sent_with_any_answer_is_a_page(
    browser: Browser,
    services: Services,
    page: str,
    fields: dict[str, Any],
    answer: Any,
    person: Actor,
) -> None:
    _sign_in_afresh(browser, services, person)
    reply = _answer_with(answer)
    for method in ("GET", "POST"):
        for host in ("case", "consent", "meeting", "projection"):
            for path in _service_paths():
                services.on(method, f"http://{host}.test{path}", reply)
    sent = browser.send(page, fields)
    assert sent.status_code != 500, (page, fields, answer, sent.text[-500:])


@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    page=st.sampled_from(PAGES),
    query=st.dictionaries(text, text, max_size=3),
    answer=answers,
    person=st.sampled_from(PEOPLE),
)
def test_any_address_with_any_answer_is_a_page(
    browser: Browser,
    services: Services,
    page: str,
    query: dict[str, str],
    answer: Any,
    person: Actor,
) -> None:
    _sign_in_afresh(browser, services, person)
    reply = _answer_with(answer)
    for host in ("case", "consent", "meeting", "projection"):
        for path in _service_paths():
            services.on("GET", f"http://{host}.test{path}", reply)
    shown = browser.client.get(page, params=query)
    assert shown.status_code != 500, (page, query, answer, shown.text[-500:])


def _sign_in_afresh(browser: Browser, services: Services, person: Actor) -> None:
    browser.client.cookies.clear()
    services.answers.clear()
    browser.sign_in(person, "/audit")


def _service_paths() -> list[str]:
    return [
        "/worklist",
        "/figures",
        "/overrides",
        "/cases",
        "/consents",
        "/meetings",
        "/units/barnehage-solsikke/overview",
        f"/cases/{CASE}/relay-log",
        f"/cases/{CASE}/consent-status",
        f"/cases/{CASE}/access-log",
        f"/cases/{CASE}/export.jsonl",
        f"/cases/{CASE}/meetings",
        f"/cases/{CASE}/escalate",
        f"/cases/{CASE}/plan-measure",
        "/guides/kindergarten/1",
        f"/consents/{CONSENT}",
        f"/consents/{CONSENT}/withdraw",
        f"/consents/{CONSENT}/scope",
        f"/meetings/{MEETING}",
        f"/meetings/{MEETING}/record-decision",
    ]
