# ruff: noqa: RUF001 (page titles are written with an en dash, as the pages show them)
"""An auditor's pages: a purpose is stated before anything of a case is read, and goes with every
read of it; the case as of a moment; the overrides; the export and the archive (DOMAIN.md,
the auditor's role; docs/access.md)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

from stafett_contracts import case
from stafett_contracts.identity import Actor, Role
from stafett_web.testing import Browser, Services, entry, envelope

AUDITOR = Actor(person="tilsyn-1", role=Role.AUDITOR)
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service="barnehage-solsikke")
CASE_ID = UUID("3f2a8c6e-1111-4222-8333-944445555666")
PROJECTION = "http://projection.test"
PURPOSE = "Tilsyn med kommunens oppfølging, sak 2026/14"


def a_relay_log(services: Services) -> None:
    raised = datetime(2026, 10, 1, 8, 0, tzinfo=UTC)
    concern = case.ConcernRaised(
        **envelope(TEACHER, CASE_ID, 1, raised),
        child_id=uuid4(),
        unit="barnehage-solsikke",
        concern="Uro.",
    )
    services.reply(
        "GET",
        f"{PROJECTION}/cases/{CASE_ID}/relay-log",
        json_body={
            "case_id": str(CASE_ID),
            "as_of": None,
            "basis": "audit",
            "state": {"status": "open", "level": 0, "unit": "barnehage-solsikke"},
            "entries": [entry(concern, 1)],
        },
    )
    services.reply("GET", f"{PROJECTION}/cases/{CASE_ID}/consent-status", json_body={})
    services.reply("GET", f"http://meeting.test/cases/{CASE_ID}/meetings", json_body=[])


def test_an_auditor_states_a_purpose_before_anything_of_the_case_is_read(
    browser: Browser, services: Services
) -> None:
    a_relay_log(services)
    # When the auditor opens a case without having said why
    page = browser.sign_in(AUDITOR, f"/cases/{CASE_ID}")
    # Then they are asked for the purpose, and no service was asked anything about the case
    assert page.status_code == 200
    assert "<title>Formål med innsynet – Stafett</title>" in page.text
    assert not [r for r in services.sent if str(CASE_ID) in r.url.path]
    # When they state it
    stated = browser.send(f"/cases/{CASE_ID}/purpose", {"purpose": PURPOSE})
    assert stated.headers["location"] == f"/cases/{CASE_ID}"
    shown = browser.client.get(f"/cases/{CASE_ID}")
    # Then the case is read with the purpose, which the page repeats
    assert shown.status_code == 200
    (read,) = [r for r in services.sent if r.url.path.endswith("/relay-log")]
    assert read.url.params["purpose"] == PURPOSE
    assert PURPOSE in shown.text
    # And the purpose is not in any address
    assert all(PURPOSE not in str(r.url) or r.url.host.endswith(".test") for r in services.sent)
    assert "purpose=" not in shown.text.split("<main")[1].split("</main>")[0].replace(
        'name="purpose"', ""
    )


def test_an_empty_purpose_is_refused_by_the_projection_s_own_rule(
    browser: Browser, services: Services
) -> None:
    # Given the projection refuses an auditor's read without a purpose (422 naming it)
    services.reply(
        "GET",
        f"{PROJECTION}/cases/{CASE_ID}/relay-log",
        422,
        {
            "status_code": 422,
            "detail": "an auditor must state a purpose",
            "extra": [{"key": "purpose", "message": "required of auditors", "source": "query"}],
        },
    )
    browser.sign_in(AUDITOR, f"/cases/{CASE_ID}")
    browser.send(f"/cases/{CASE_ID}/purpose", {"purpose": "  "})
    # When the auditor opens the case
    page = browser.client.get(f"/cases/{CASE_ID}")
    # Then they are asked again, with the projection's message
    assert page.status_code == 422
    assert "an auditor must state a purpose" in page.text


def test_time_travel_reads_the_case_as_of_a_local_moment(
    browser: Browser, services: Services
) -> None:
    a_relay_log(services)
    browser.sign_in(AUDITOR, f"/cases/{CASE_ID}")
    browser.send(f"/cases/{CASE_ID}/purpose", {"purpose": PURPOSE})
    # When the auditor asks for the case as it was at 1 October 2026, 12:00 in Oslo
    page = browser.client.get(f"/cases/{CASE_ID}", params={"as_of": "2026-10-01T12:00"})
    # Then the projection is asked for that moment, with Oslo's offset then (summer time)
    assert page.status_code == 200
    read = [r for r in services.sent if r.url.path.endswith("/relay-log")][-1]
    assert read.url.params["as_of"] == "2026-10-01T12:00:00+02:00"
    assert "Slik saken var" in page.text
    # And consents and meetings, which are as they are now, are not mixed in
    assert not [r for r in services.sent if r.url.path.endswith(("/consent-status", "/meetings"))]


def test_a_moment_that_is_no_moment_is_a_400_page_naming_it(
    browser: Browser, services: Services
) -> None:
    browser.sign_in(AUDITOR, f"/cases/{CASE_ID}")
    browser.send(f"/cases/{CASE_ID}/purpose", {"purpose": PURPOSE})
    page = browser.client.get(f"/cases/{CASE_ID}", params={"as_of": "yesterday"})
    assert page.status_code == 400
    assert "as_of" in page.text


def test_the_export_and_the_archive_download_with_the_purpose(
    browser: Browser, services: Services
) -> None:
    services.on(
        "GET",
        f"{PROJECTION}/cases/{CASE_ID}/export.jsonl",
        lambda request: __import__("httpx").Response(200, content=b'{"stream":"CASE"}\n'),
    )
    browser.sign_in(AUDITOR, f"/cases/{CASE_ID}")
    browser.send(f"/cases/{CASE_ID}/purpose", {"purpose": PURPOSE})
    export = browser.client.get(f"/cases/{CASE_ID}/export.jsonl")
    assert export.status_code == 200
    assert export.content == b'{"stream":"CASE"}\n'
    assert export.headers["content-disposition"] == f'attachment; filename="case-{CASE_ID}.jsonl"'
    (read,) = [r for r in services.sent if r.url.path.endswith("/export.jsonl")]
    assert read.url.params["purpose"] == PURPOSE


def test_the_overrides_are_listed_once_a_purpose_is_stated(
    browser: Browser, services: Services
) -> None:
    services.reply(
        "GET",
        f"{PROJECTION}/overrides",
        json_body=[
            {
                "case_id": str(CASE_ID),
                "service": "barnevern",
                "basis": "report",
                "provision": "barnevernsloven § 13-2",
                "since": (datetime.now(UTC) - timedelta(days=2)).isoformat(),
                "recorded_by": {
                    "person": "ped-1",
                    "role": "employee",
                    "service": "barnehage-solsikke",
                },
            }
        ],
    )
    page = browser.sign_in(AUDITOR, "/audit/overrides")
    assert page.status_code == 200
    assert "barnevernsloven" not in page.text
    browser.send("/audit/overrides", {"purpose": PURPOSE})
    listed = browser.client.get("/audit/overrides")
    assert listed.status_code == 200
    assert "barnevernsloven § 13-2" in listed.text
    assert "Barneverntjenesten" in listed.text
    assert "bekymringsmelding til barnevernet" in listed.text
    (read,) = [r for r in services.sent if r.url.path == "/overrides"]
    assert read.url.params["purpose"] == PURPOSE


def test_finding_a_case_by_a_reference_that_is_none_says_so_next_to_the_field(
    browser: Browser, services: Services
) -> None:
    browser.sign_in(AUDITOR, "/audit")
    answer = browser.send("/audit/find", {"case_id": "abc", "purpose": PURPOSE})
    assert answer.status_code == 422
    assert "Skriv saksreferansen" in answer.text
    assert 'value="abc"' in answer.text
    assert not services.sent
