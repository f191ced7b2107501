# ruff: noqa: RUF001 (page titles are written with an en dash, as the pages show them)
"""A guardian's pages: their children's cases, the relay log in plain words, the meetings, the
access log, and consent given and withdrawn in two steps (DOMAIN.md rules 2, 3 and 7).

Given what the services answer (the stand-ins of `stafett_web.testing`), when the guardian uses
the pages, then the page says it in plain words and the services get exactly the command.
"""

from __future__ import annotations

import hashlib
import html
import re
from datetime import UTC, datetime, timedelta
from uuid import UUID, uuid4

import httpx

from stafett_contracts import case, consent, meeting, notify
from stafett_contracts.consent import Evidence, Party
from stafett_contracts.identity import Actor, Role
from stafett_web.testing import Browser, Services, entry, envelope

KINDERGARTEN = "barnehage-solsikke"
GUARDIAN = Actor(person="forelder-1", role=Role.GUARDIAN)
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service=KINDERGARTEN)
SYSTEM = Actor(person="case", role=Role.SYSTEM, service="case")
CASE_ID = UUID("3f2a8c6e-1111-4222-8333-944445555666")
CONSENT_ID = UUID("7d1e2f30-aaaa-4bbb-8ccc-ddddeeeeffff")
MEETING_ID = UUID("0b5f6a7c-9999-4888-8777-666655554444")
PROJECTION = "http://projection.test"
NOW = datetime.now(UTC)


def a_case_with_history(services: Services) -> None:
    """The projection's answers about one case: a concern, a consent, a measure, a meeting, and
    the services' own bookkeeping around them."""
    at = NOW - timedelta(days=10)
    events = [
        case.ConcernRaised(
            **envelope(TEACHER, CASE_ID, 1, at),
            child_id=uuid4(),
            unit=KINDERGARTEN,
            concern="Trekker seg unna i lek over flere uker.",
        ),
        consent.ConsentGiven(
            **envelope(GUARDIAN, CONSENT_ID, 1, at + timedelta(days=1)),
            case_id=CASE_ID,
            child_id=uuid4(),
            given_by=Party(kind="guardian", person=GUARDIAN.person),
            services=(KINDERGARTEN, "ppt"),
            purposes=(consent.Purpose.COOPERATION,),
            valid_from=at + timedelta(days=1),
            valid_until=at + timedelta(days=365),
            evidence=Evidence(form="written", document_ref="arkiv/1", document_sha256="a" * 64),
        ),
        case.ConsentNoted(
            **envelope(SYSTEM, CASE_ID, 2, at + timedelta(days=1, seconds=1)),
            consent_id=CONSENT_ID,
            services=(KINDERGARTEN, "ppt"),
            purposes=("cooperation",),
            valid_from=at + timedelta(days=1),
            valid_until=at + timedelta(days=365),
        ),
        case.Escalated(
            **envelope(TEACHER, CASE_ID, 3, at + timedelta(days=2)),
            from_level=0,
            to_level=1,
            reason="Tiltak i barnehagen, med foreldrene.",
        ),
        meeting.CaseRosterNoted(
            **envelope(SYSTEM, CASE_ID, 4, at + timedelta(days=2, seconds=1)),
            case_id=CASE_ID,
            unit=KINDERGARTEN,
            level=1,
        ),
        meeting.MeetingScheduled(
            **envelope(TEACHER, MEETING_ID, 1, at + timedelta(days=3)),
            case_id=CASE_ID,
            meeting_type=meeting.MeetingType.COOPERATION,
            starts_at=NOW + timedelta(days=2),
            ends_at=NOW + timedelta(days=2, hours=1),
            video_link="https://video.example/rom/42",
            leader=TEACHER.person,
            leader_service=KINDERGARTEN,
        ),
        notify.DeliveryAttempted(
            **envelope(SYSTEM, uuid4(), 2, at + timedelta(days=3, seconds=1)),
            channel=notify.Channel.EMAIL,
            attempt=1,
            started_at=at + timedelta(days=3),
        ),
    ]
    services.reply(
        "GET",
        f"{PROJECTION}/cases/{CASE_ID}/relay-log",
        json_body={
            "case_id": str(CASE_ID),
            "basis": "guardian of the child",
            "state": {
                "status": "open",
                "level": 1,
                "unit": KINDERGARTEN,
                "holder": TEACHER.person,
                "holder_service": KINDERGARTEN,
                "services": [KINDERGARTEN, "ppt"],
            },
            "child": {"name": "Kari Nordmann", "birth_date": "2018-05-17"},
            "entries": [entry(e, n) for n, e in enumerate(events, 1)],
        },
    )
    services.reply(
        "GET",
        f"{PROJECTION}/cases/{CASE_ID}/consent-status",
        json_body={
            "consents": [
                {
                    "consent_id": str(CONSENT_ID),
                    "given_by": {"kind": "guardian", "person": GUARDIAN.person},
                    "purposes": ["cooperation"],
                    "valid_from": (at + timedelta(days=1)).isoformat(),
                    "valid_until": (at + timedelta(days=365)).isoformat(),
                    "services": [
                        {"service": s, "from": at.isoformat(), "until": None, "covered_now": True}
                        for s in (KINDERGARTEN, "ppt")
                    ],
                }
            ],
            "legal_bases": [],
            "services_covered_now": [KINDERGARTEN, "ppt"],
        },
    )
    services.reply(
        "GET",
        f"http://meeting.test/cases/{CASE_ID}/meetings",
        json_body=[
            {
                "id": str(MEETING_ID),
                "case_id": str(CASE_ID),
                "version": 2,
                "meeting_type": "cooperation",
                "starts_at": (NOW + timedelta(days=2)).isoformat(),
                "ends_at": (NOW + timedelta(days=2, hours=1)).isoformat(),
                "place": None,
                "video_link": "https://video.example/rom/42",
                "leader": TEACHER.person,
                "leader_service": KINDERGARTEN,
                "invited": [{"kind": "guardian", "person": GUARDIAN.person}],
            }
        ],
    )


def test_a_guardian_finds_their_child_s_cases_on_signing_in(
    browser: Browser, services: Services
) -> None:
    # Given the projection lists one case of the guardian's child
    services.reply(
        "GET",
        f"{PROJECTION}/worklist",
        json_body=[{"case_id": str(CASE_ID), "kind": "guardian", "level": 1, "status": "open"}],
    )
    # When the guardian signs in
    page = browser.sign_in(GUARDIAN, "/")
    # Then they land on their cases, each a link to the case's page, in their language
    assert page.status_code == 200
    assert "<title>Mine saker – Stafett</title>" in page.text
    assert f'href="/cases/{CASE_ID}"' in page.text
    assert "Nivå 1 – tiltak i egen tjeneste" in page.text
    # And the projection was asked with the guardian's own token
    asked = services.sent[-1]
    assert asked.headers["authorization"].startswith("Bearer ")


def test_the_relay_log_tells_what_happened_in_plain_words_without_bookkeeping(
    browser: Browser, services: Services
) -> None:
    # Given a case with a concern, a consent, an escalation, a meeting and bookkeeping events
    a_case_with_history(services)
    # When the guardian opens the case's page (where every notification's link lands)
    page = browser.sign_in(GUARDIAN, f"/cases/{CASE_ID}")
    # Then the page tells each thing that happened, who did it, and why, in plain words
    assert page.status_code == 200
    text = page.text
    assert "ped-1 (Solsikken barnehage) meldte en bekymring ved Solsikken barnehage." in text
    assert "Trekker seg unna i lek over flere uker." in text
    assert "forelder-1 ga skriftlig samtykke til Solsikken barnehage, PPT" in text
    assert "flyttet saken opp til Nivå 1 – tiltak i egen tjeneste" in text
    assert "Tiltak i barnehagen, med foreldrene." in text
    # And the current level, the baton holder, the child and the upcoming meeting
    assert "ped-1 (Solsikken barnehage)" in text
    assert "Barn: Kari Nordmann" in text
    assert "Samarbeidsmøte" in text
    assert f"/cases/{CASE_ID}/meetings/{MEETING_ID}/calendar.ics" in text
    # And no system events, no type names, no raw JSON
    for bookkeeping in ("CaseRosterNoted", "DeliveryAttempted", "ConsentNoted", "ConcernRaised"):
        assert bookkeeping not in text
    assert '{"' not in text
    assert "schema_version" not in text
    # And the page's title says nothing about the child
    assert re.search(r"<title>Sak – Stafett</title>", text)


def test_the_access_log_shows_who_read_the_case_when_and_why(
    browser: Browser, services: Services
) -> None:
    # Given the projection's access log of the case: a read granted and one refused
    services.reply(
        "GET",
        f"{PROJECTION}/cases/{CASE_ID}/access-log",
        json_body=[
            {
                "seq": 1,
                "at": NOW.isoformat(),
                "person": "ppt-1",
                "role": "employee",
                "service": "ppt",
                "what": "relay-log",
                "purpose": None,
                "outcome": "granted",
                "basis": "consent " + str(CONSENT_ID),
                "served_by": "projection",
            },
            {
                "seq": 2,
                "at": NOW.isoformat(),
                "person": "bup-1",
                "role": "employee",
                "service": "bup",
                "what": "relay-log",
                "outcome": "refused",
                "refusal": "no consent covers bup",
                "rule": "covered-by-consent",
            },
        ],
    )
    # When the guardian opens it
    page = browser.sign_in(GUARDIAN, f"/cases/{CASE_ID}/access-log")
    # Then each read is a row: who, what, why, and the outcome in words (not by colour alone)
    assert page.status_code == 200
    assert "ppt-1 (PPT)" in page.text
    assert "samtykke" in page.text
    assert "stafettloggen" in page.text
    assert "Fikk lese" in page.text
    assert "Nektet" in page.text
    assert "no consent covers bup" in page.text


def test_withdrawing_consent_for_one_service_is_confirmed_before_it_is_sent(
    browser: Browser, services: Services
) -> None:
    # Given the guardian's consent covers the kindergarten and PPT
    services.reply(
        "GET",
        f"http://consent.test/consents/{CONSENT_ID}",
        json_body={
            "id": str(CONSENT_ID),
            "case_id": str(CASE_ID),
            "given_by": {"kind": "guardian", "person": GUARDIAN.person},
            "scopes": [
                {
                    "services": [KINDERGARTEN, "ppt"],
                    "purposes": ["cooperation"],
                    "valid_until": (NOW + timedelta(days=300)).isoformat(),
                }
            ],
        },
    )
    services.reply(
        "POST",
        f"http://consent.test/consents/{CONSENT_ID}/withdraw",
        201,
        {"id": str(CONSENT_ID), "version": 2},
    )
    form = browser.sign_in(GUARDIAN, f"/cases/{CASE_ID}/consents/{CONSENT_ID}/withdraw")
    assert form.status_code == 200
    assert "PPT" in form.text
    path = f"/cases/{CASE_ID}/consents/{CONSENT_ID}/withdraw"
    # When the guardian chooses PPT only
    review = browser.send(path, {"step": "review", "whole": "some", "services": "ppt"})
    # Then they first read what it means, and nothing is sent yet
    assert review.status_code == 200
    assert "Du trekker samtykket tilbake for: PPT." in review.text
    assert not services.bodies("POST", f"http://consent.test/consents/{CONSENT_ID}/withdraw")
    # When they confirm
    done = browser.send(path, {"step": "confirm", "whole": "some", "services": "ppt"})
    # Then the consent service is asked to withdraw it for PPT only, and the case page follows
    assert done.status_code in (302, 303)
    assert done.headers["location"] == f"/cases/{CASE_ID}"
    (sent,) = services.bodies("POST", f"http://consent.test/consents/{CONSENT_ID}/withdraw")
    assert sent == {"services": ["ppt"]}


def test_some_services_means_at_least_one_never_the_whole_consent(
    browser: Browser, services: Services
) -> None:
    # Given the guardian's consent
    services.reply(
        "GET",
        f"http://consent.test/consents/{CONSENT_ID}",
        json_body={
            "id": str(CONSENT_ID),
            "case_id": str(CASE_ID),
            "given_by": {"kind": "guardian", "person": GUARDIAN.person},
            "scopes": [
                {
                    "services": [KINDERGARTEN, "ppt"],
                    "purposes": ["cooperation"],
                    "valid_until": (NOW + timedelta(days=300)).isoformat(),
                }
            ],
        },
    )
    browser.sign_in(GUARDIAN, f"/cases/{CASE_ID}/consents/{CONSENT_ID}/withdraw")
    # When they choose "only some services" and name none (which the API reads as "all")
    path = f"/cases/{CASE_ID}/consents/{CONSENT_ID}/withdraw"
    answer = browser.send(path, {"step": "confirm", "whole": "some"})
    # Then the form says to choose one, next to the field, and nothing is withdrawn
    assert answer.status_code == 422
    assert "Velg minst én tjeneste." in answer.text
    assert not [r for r in services.sent if r.method == "POST"]


def test_a_guardian_gives_consent_in_their_own_name_with_the_confirmed_text_as_evidence(
    browser: Browser, services: Services
) -> None:
    # Given the consent service takes the consent
    services.reply("POST", "http://consent.test/consents", 201, {"id": str(uuid4()), "version": 1})
    browser.sign_in(GUARDIAN, f"/cases/{CASE_ID}/consents/new")
    choice = {"services": ["ppt"], "purposes": ["cooperation"], "valid_until": ""}
    # When the guardian reviews it (and a form tries to name someone else as the party)
    review = browser.send(
        f"/cases/{CASE_ID}/consents/new", {**choice, "step": "review", "given_by.person": "x"}
    )
    assert review.status_code == 200
    shown = re.findall(r'<div class="review">(.*?)</div>', review.text, re.S)[0]
    lines = [html.unescape(line) for line in re.findall(r"<p>(.*?)</p>", shown)]
    assert lines[0] == f"Saken: {CASE_ID}."
    assert lines[1] == "Jeg, forelder-1, samtykker til at tjenestene under kan samarbeide om saken."
    # And confirms it
    done = browser.send(f"/cases/{CASE_ID}/consents/new", {**choice, "step": "confirm"})
    assert done.status_code in (302, 303)
    # Then the consent names the signed-in guardian (never the form's say), begins now, and its
    # evidence is the reference and SHA-256 of the very text they confirmed
    (sent,) = services.bodies("POST", "http://consent.test/consents")
    assert sent["given_by"] == {"kind": "guardian", "person": GUARDIAN.person}
    assert sent["case_id"] == str(CASE_ID)
    assert sent["services"] == ["ppt"]
    assert sent["purposes"] == ["cooperation"]
    assert abs(datetime.fromisoformat(sent["valid_from"]) - datetime.now(UTC)) < timedelta(
        minutes=1
    )
    assert sent["evidence"]["form"] == "written"
    assert sent["evidence"]["document_ref"] == "stafett-web:consent-confirmation:v1:nb"
    assert (
        sent["evidence"]["document_sha256"] == hashlib.sha256("\n".join(lines).encode()).hexdigest()
    )


def test_the_consent_service_s_refusal_is_shown_above_the_form_with_the_choices_kept(
    browser: Browser, services: Services
) -> None:
    # Given the consent service refuses: the register names someone else the child's guardian
    services.reply(
        "POST",
        "http://consent.test/consents",
        403,
        {
            "status_code": 403,
            "detail": "the register does not name you a guardian of the case's child",
            "extra": {"rule": "guardian-of-the-child"},
        },
    )
    browser.sign_in(GUARDIAN, f"/cases/{CASE_ID}/consents/new")
    # When the guardian confirms a consent
    answer = browser.send(
        f"/cases/{CASE_ID}/consents/new",
        {"services": ["ppt"], "purposes": ["tvist"], "step": "confirm"},
    )
    # Then the form comes back with the rule's message, and what they chose still chosen
    assert answer.status_code == 403
    assert "the register does not name you a guardian of the case&#39;s child" in answer.text
    assert re.search(r'value="ppt" checked', answer.text)
    assert re.search(r'value="tvist" checked', answer.text)


def test_a_meeting_downloads_as_a_calendar_event_that_updates_the_invitation(
    browser: Browser, services: Services
) -> None:
    # Given the meeting service's meeting of the case
    services.reply(
        "GET",
        f"http://meeting.test/meetings/{MEETING_ID}",
        json_body={
            "id": str(MEETING_ID),
            "case_id": str(CASE_ID),
            "version": 3,
            "meeting_type": "cooperation",
            "starts_at": "2027-01-11T09:00:00+00:00",
            "ends_at": "2027-01-11T10:00:00+00:00",
            "place": "Solsikken, møterom 2",
            "video_link": None,
            "leader": TEACHER.person,
            "leader_service": KINDERGARTEN,
        },
    )
    browser.sign_in(GUARDIAN, f"/cases/{CASE_ID}/meetings/{MEETING_ID}")
    # When the guardian downloads it
    ics = browser.client.get(f"/cases/{CASE_ID}/meetings/{MEETING_ID}/calendar.ics")
    # Then it is the meeting as one calendar event, under the UID of the emailed invitation
    assert ics.status_code == 200
    assert ics.headers["content-type"].startswith("text/calendar")
    body = ics.text
    assert f"UID:{MEETING_ID}@stafett\r\n" in body
    assert "SEQUENCE:3\r\n" in body
    assert "DTSTART:20270111T090000Z\r\n" in body
    assert "LOCATION:Solsikken\\, møterom 2\r\n" in body
    assert f"{MEETING_ID}" in body.split("DESCRIPTION:")[1]


def test_feedback_after_a_meeting_is_sent_as_the_guardian_s_own(
    browser: Browser, services: Services
) -> None:
    # Given a meeting the guardian was invited to has been held
    services.reply(
        "POST",
        f"http://meeting.test/meetings/{MEETING_ID}/give-feedback",
        201,
        {"id": str(MEETING_ID), "version": 6},
    )
    form = browser.sign_in(GUARDIAN, f"/cases/{CASE_ID}/meetings/{MEETING_ID}/act/give-feedback")
    assert form.status_code == 200
    assert 'type="radio"' in form.text
    # When they rate it
    done = browser.send(
        f"/cases/{CASE_ID}/meetings/{MEETING_ID}/act/give-feedback",
        {"rating": "4", "heard": "5", "comment": "Vi ble hørt."},
    )
    # Then the meeting service gets the scores as numbers, and the meeting's page follows
    assert done.status_code in (302, 303)
    (sent,) = services.bodies("POST", f"http://meeting.test/meetings/{MEETING_ID}/give-feedback")
    assert sent == {"rating": 4, "heard": 5, "comment": "Vi ble hørt."}


def test_a_case_the_guardian_may_not_see_is_a_403_page_with_the_rule(
    browser: Browser, services: Services
) -> None:
    # Given the projection refuses the read (and records the refusal)
    services.on(
        "GET",
        f"{PROJECTION}/cases/{CASE_ID}/relay-log",
        httpx.Response(
            403,
            json={
                "status_code": 403,
                "detail": "only the guardians the register names see this case",
                "extra": {"rule": "guardian-of-the-child"},
            },
        ),
    )
    # When the guardian opens the case
    page = browser.sign_in(GUARDIAN, f"/cases/{CASE_ID}")
    # Then a 403 page says so, with the rule's message; nothing about the case is shown
    assert page.status_code == 403
    assert "Du har ikke tilgang" in page.text
    assert "only the guardians the register names see this case" in page.text
    assert "guardian-of-the-child" in page.text
    assert not [r for r in services.sent if "consent-status" in r.url.path]
