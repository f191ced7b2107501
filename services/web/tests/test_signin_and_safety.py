"""Signing in and out, sessions, and what protects every page: OpenID Connect's code flow with
PKCE, server-side sessions with safe cookies, CSRF tokens on every form, a Content-Security-
Policy without inline code, and no personal data in addresses or logs."""

from __future__ import annotations

from uuid import UUID

import httpx
import pytest
import structlog
from litestar import Litestar
from litestar.testing import TestClient

from stafett_contracts.identity import Actor, Role
from stafett_runtime.auth import DevelopmentKey, TokenVerifier
from stafett_runtime.directory import FixedDirectory
from stafett_runtime.testing import TEST_DIRECTORY
from stafett_web.app import CSRF_COOKIE, create_app
from stafett_web.sessions import COOKIE as SESSION_COOKIE
from stafett_web.settings import WebSettings
from stafett_web.testing import ISSUER, WEB, Browser, Provider, Services, local

GUARDIAN = Actor(person="forelder-1", role=Role.GUARDIAN)
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service="barnehage-solsikke")
CASE_ID = UUID("3f2a8c6e-1111-4222-8333-944445555666")
WORKLIST = "http://projection.test/worklist"


def test_a_page_asked_for_before_signing_in_is_shown_after_it(
    browser: Browser, services: Services
) -> None:
    services.reply("GET", WORKLIST, json_body=[])
    # When someone not signed in opens their worklist
    first = browser.client.get("/worklist")
    # Then they are sent to sign in, with the page to come back to
    assert first.status_code == 303
    assert first.headers["location"] == "/login?next=/worklist"
    # And once signed in at the provider (the code flow with PKCE, checked by the provider)
    page = browser.sign_in(GUARDIAN, "/worklist")
    # Then they are on that page, and the provider redeemed exactly one code
    assert page.status_code == 200
    assert "Mine saker" in page.text
    assert browser.provider.token_requests == 1


def test_signing_in_gives_the_session_a_new_id(browser: Browser, services: Services) -> None:
    services.reply("GET", WORKLIST, json_body=[])
    started = browser.client.get("/login", params={"next": "/worklist"})
    before = browser.client.cookies[SESSION_COOKIE]  # the session holding the sign-in's state
    callback = browser.provider.authorize(started.headers["location"], GUARDIAN)
    browser.client.get(local(callback))
    assert browser.client.cookies[SESSION_COOKIE] != before


def test_the_cookies_are_http_only_same_site_and_secure_on_https(
    browser: Browser, services: Services
) -> None:
    started = browser.client.get("/login")
    cookies = {c.split("=")[0]: c.lower() for c in started.headers.get_list("set-cookie")}
    for name in (SESSION_COOKIE, CSRF_COOKIE):
        for attribute in ("httponly", "samesite=lax", "secure", "path=/"):
            assert attribute in cookies[name], (name, attribute)


def test_an_ended_sign_in_returns_to_the_provider_and_then_to_the_page_asked_for(
    settings: WebSettings, key: DevelopmentKey, services: Services
) -> None:
    # Given a provider whose tokens last no longer than the app's safety margin
    provider = Provider(key, lifetime=30)
    services.reply("GET", WORKLIST, json_body=[])
    with _client(settings, key, provider, services) as client:
        browser = Browser(client, provider)
        browser.sign_in(GUARDIAN, "/worklist")
        # When the person opens a page after their sign-in has ended
        again = client.get(f"/cases/{CASE_ID}")
        # Then they sign in again, and come back to the page they asked for
        assert again.status_code == 303
        assert again.headers["location"] == f"/login?next=/cases/{CASE_ID}"


def test_a_token_a_service_no_longer_takes_sends_the_person_to_sign_in_again(
    browser: Browser, services: Services
) -> None:
    services.reply("GET", WORKLIST, json_body=[])
    browser.sign_in(GUARDIAN, "/worklist")
    services.reply("GET", WORKLIST, 401, {"status_code": 401, "detail": "token expired"})
    again = browser.client.get("/worklist")
    assert again.status_code == 303
    assert again.headers["location"] == "/login?next=/worklist"


def test_a_callback_the_app_did_not_start_is_refused(browser: Browser, services: Services) -> None:
    answer = browser.client.get("/auth/callback", params={"code": "made-up", "state": "made-up"})
    assert answer.status_code == 400
    assert "Innloggingen mislyktes" in answer.text
    assert browser.provider.token_requests == 0
    assert browser.client.get("/worklist").status_code == 303  # still not signed in


def test_an_id_token_for_another_sign_in_is_refused(browser: Browser, services: Services) -> None:
    # Given the provider answers with an ID token whose nonce is not this sign-in's
    browser.provider.nonce_override = "someone-else-s-nonce"
    started = browser.client.get("/login", params={"next": "/worklist"})
    answer = browser.client.get(
        local(browser.provider.authorize(started.headers["location"], GUARDIAN))
    )
    assert answer.status_code == 400
    assert browser.client.get("/worklist").status_code == 303


def test_a_provider_signing_with_rs256_is_accepted(
    settings: WebSettings, key: DevelopmentKey, services: Services
) -> None:
    provider = Provider(key, algorithm="RS256")
    services.reply("GET", WORKLIST, json_body=[])
    with _client(settings, key, provider, services) as client:
        page = Browser(client, provider).sign_in(GUARDIAN, "/worklist")
        assert page.status_code == 200


@pytest.mark.parametrize("elsewhere", ["https://evil.example/", "//evil.example/x", "/\\evil"])
def test_after_signing_in_the_app_never_sends_anyone_to_another_site(
    browser: Browser, services: Services, elsewhere: str
) -> None:
    services.reply("GET", WORKLIST, json_body=[])
    started = browser.client.get("/login", params={"next": elsewhere})
    landed = browser.client.get(
        local(browser.provider.authorize(started.headers["location"], GUARDIAN))
    )
    assert landed.headers["location"] == "/"


def test_signing_out_ends_the_session_here_and_at_the_provider(
    browser: Browser, services: Services
) -> None:
    services.reply("GET", WORKLIST, json_body=[])
    browser.sign_in(GUARDIAN, "/worklist")
    out = browser.send("/logout", {})
    assert out.status_code in (302, 303)
    at_provider = out.headers["location"]
    assert at_provider.startswith(f"{ISSUER}/logout?")
    assert "id_token_hint=" in at_provider
    assert "post_logout_redirect_uri=https%3A%2F%2Fstafett.example%2F" in at_provider
    assert browser.client.get("/worklist").status_code == 303


def test_a_form_without_its_csrf_token_is_refused_and_nothing_is_sent(
    browser: Browser, services: Services
) -> None:
    browser.sign_in(TEACHER, "/concerns/new")
    answer = browser.client.post("/concerns/new", data={"concern": "Uro.", "national_id": "1"})
    assert answer.status_code == 403
    assert not [r for r in services.sent if r.method == "POST"]


def test_every_answer_has_a_content_security_policy_without_inline_code(
    browser: Browser, services: Services
) -> None:
    services.reply("GET", WORKLIST, json_body=[])
    pages = [browser.client.get("/"), browser.client.get("/no-such-page")]
    pages.append(browser.sign_in(GUARDIAN, "/worklist"))
    for page in pages:
        policy = page.headers["content-security-policy"]
        assert "default-src 'none'" in policy
        assert "unsafe-inline" not in policy
        assert "unsafe-eval" not in policy
        assert f"form-action 'self' {ISSUER}" in policy
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["cache-control"] == "no-store"
        assert "<script" not in page.text
        assert "style=" not in page.text


def test_the_language_follows_the_browser_and_a_choice_is_remembered(
    browser: Browser, services: Services
) -> None:
    english = browser.client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9,nb;q=0.5"})
    assert '<html lang="en">' in english.text
    assert "Sign in with eID" in english.text
    nynorsk = browser.client.get("/", headers={"Accept-Language": "nn-NO"})
    assert '<html lang="nb">' in nynorsk.text
    chosen = browser.send("/language", {"lang": "en", "next": "/"})
    assert chosen.headers["location"] == "/"
    assert "max-age=31536000" in chosen.headers["set-cookie"].lower()
    again = browser.client.get("/", headers={"Accept-Language": "nb"})
    assert '<html lang="en">' in again.text


def test_no_personal_data_reaches_the_logs_or_the_address(
    browser: Browser, services: Services
) -> None:
    # Given the case service refuses a concern (the national id and the concern are personal)
    services.reply(
        "POST",
        "http://case.test/cases",
        422,
        {
            "status_code": 422,
            "detail": "no such child",
            "extra": [{"key": "national_id", "message": "unknown"}],
        },
    )
    browser.sign_in(TEACHER, "/concerns/new")
    with structlog.testing.capture_logs() as logged:
        answer = browser.send(
            "/concerns/new", {"national_id": "17051812345", "concern": "Kari har blåmerker."}
        )
    # Then the form came back by POST, never with what was typed in its address
    assert answer.status_code == 422
    assert "17051812345" not in str(answer.url)
    # And nothing logged holds what was typed
    assert logged
    text = repr(logged)
    assert "17051812345" not in text
    assert "blåmerker" not in text


def _client(
    settings: WebSettings, key: DevelopmentKey, provider: Provider, services: Services
) -> TestClient[Litestar]:
    app = create_app(
        settings,
        verifier=TokenVerifier(key.public_key),
        directory=FixedDirectory(TEST_DIRECTORY),
        services_client=httpx.AsyncClient(transport=services.transport),
        provider_client={"transport": provider.transport},
    )
    client: TestClient[Litestar] = TestClient(app, base_url=WEB)
    client.follow_redirects = False
    return client
