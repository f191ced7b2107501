"""Each attack that once worked, tried again against the real services under their own NATS users.

Given one child's case at Lia school (the child, 12, in the population register with her mother),
the mother's consent to PPT, and strangers with ordinary, validly signed tokens: each attack is
refused with the rule that refuses it, writes no event, and, where it reads, is in the case's
access log. The guardian herself, child welfare after a report, and an auditor are let in.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import Any
from uuid import UUID, uuid4

import nats
import pytest

from stafett_contracts.identity import Actor, Role
from stafett_runtime.testing import a_child
from tests.platform import Platform

SCHOOL = "skole-lia"
TEACHER = Actor(person="laerer-1", role=Role.EMPLOYEE, service=SCHOOL)
MOTHER = Actor(person="mor-kari", role=Role.GUARDIAN)
OTHER_MOTHER = Actor(person="mor-til-ola", role=Role.GUARDIAN)
KARI = Actor(person="kari", role=Role.CHILD)
PPT = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")
BUP = Actor(person="bup-1", role=Role.EMPLOYEE, service="bup")  # not on the case
CHILD_WELFARE = Actor(person="bv-1", role=Role.EMPLOYEE, service="barnevern")
NOWHERE = Actor(person="x-1", role=Role.EMPLOYEE, service="skole-ingensteds")
AUDITOR = Actor(person="tilsyn-1", role=Role.AUDITOR)
KARI_IN_THE_REGISTER = a_child(MOTHER.person, born=date(2014, 1, 10), person=KARI.person)
OLA_IN_THE_REGISTER = a_child(OTHER_MOTHER.person)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = Platform(tmp_path_factory.mktemp("attacks"))
    running.register_child(KARI_IN_THE_REGISTER)
    running.register_child(OLA_IN_THE_REGISTER)
    running.start()
    try:
        yield running
    finally:
        running.stop()


def consent_body(case_id: str, party: Actor, **changes: Any) -> dict[str, Any]:
    return {
        "case_id": case_id,
        "given_by": {"kind": str(party.role), "person": party.person},
        "services": [SCHOOL, "ppt"],
        "purposes": ["cooperation"],
        "valid_from": datetime.now(UTC).isoformat(),
        "evidence": {
            "form": "written",
            "document_ref": "arkiv/2026/77",
            "document_sha256": hashlib.sha256(b"signert").hexdigest(),
        },
        **changes,
    }


def a_case(platform: Platform) -> str:
    """Kari's case, raised at her school."""
    body = {"child_id": str(KARI_IN_THE_REGISTER.child_id), "concern": "Trist og stille."}
    raised = platform.post("case", "/cases", TEACHER, body)
    assert raised.status_code == 201, raised.text
    case_id: str = raised.json()["id"]
    return case_id


def with_mothers_consent(platform: Platform) -> tuple[str, str]:
    """Kari's case, and her mother's consent to PPT, once the case has noted it."""
    case_id = a_case(platform)
    given = platform.post("consent", "/consents", MOTHER, consent_body(case_id, MOTHER))
    assert given.status_code == 201, given.text
    wait_until(lambda: "ConsentNoted" in platform.event_types("case", UUID(case_id)))
    return case_id, given.json()["id"]


def refused(answer: Any, status: int, rule: str | None = None) -> None:
    assert answer.status_code == status, answer.text
    if rule is not None:
        assert answer.json()["extra"]["rule"] == rule, answer.text


def wait_until(holds: Any, within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not holds():
        assert time.monotonic() < deadline, "not within the time"
        time.sleep(0.1)


def test_guardian_of_the_child_a_guardian_of_another_child_neither_consents_nor_reads(
    platform: Platform,
) -> None:
    case_id = a_case(platform)
    before = platform.last_sequence("CONSENT")
    # When the mother of another child consents in her own name on Kari's case
    answer = platform.post(
        "consent", "/consents", OTHER_MOTHER, consent_body(case_id, OTHER_MOTHER)
    )
    # Then she is refused, nothing is written, and she cannot read the case either
    refused(answer, 403, "guardian-of-the-child")
    assert platform.last_sequence("CONSENT") == before
    refused(
        platform.get("projection", f"/cases/{case_id}/relay-log", OTHER_MOTHER, min_version=1), 403
    )
    refused(platform.get("case", f"/cases/{case_id}", OTHER_MOTHER), 403)


def test_child_consents_alone_from_age_threshold_by_the_registers_birth_date(
    platform: Platform,
) -> None:
    case_id = a_case(platform)
    before = platform.last_sequence("CONSENT")
    # When Kari (12 by the register) consents alone, claiming to be 16
    claimed = consent_body(case_id, KARI, child_age=16)
    refused(platform.post("consent", "/consents", KARI, claimed), 422)
    # Or without claiming an age
    refused(
        platform.post("consent", "/consents", KARI, consent_body(case_id, KARI)),
        403,
        "child-consents-alone-from-age-threshold",
    )
    assert platform.last_sequence("CONSENT") == before


def test_service_takes_part_a_unit_not_on_the_case_records_no_consent_for_an_invented_parent(
    platform: Platform,
) -> None:
    case_id = a_case(platform)
    before = platform.last_sequence("CONSENT")
    invented = Actor(person="oppdiktet-forelder", role=Role.GUARDIAN)
    long_ago = consent_body(case_id, invented, valid_from="2000-01-01T00:00:00Z")
    refused(platform.post("consent", "/consents", BUP, long_ago), 403, "service-takes-part")
    # Nor does the school, which is on the case, with an invented parent or back-dated
    refused(platform.post("consent", "/consents", TEACHER, long_ago), 403)
    back_dated = consent_body(case_id, MOTHER, valid_from="2000-01-01T00:00:00Z")
    refused(platform.post("consent", "/consents", TEACHER, back_dated), 409)
    assert platform.last_sequence("CONSENT") == before


def test_law_empowers_the_service_a_unit_that_exists_nowhere_records_no_legal_basis(
    platform: Platform,
) -> None:
    case_id = a_case(platform)
    before = platform.last_sequence("CONSENT")
    basis = {
        "case_id": case_id,
        "service": NOWHERE.service,
        "legal_basis": "barnevernsloven § 2-1",
        "justification": "vi vil lese saken",
    }
    refused(platform.post("consent", "/legal-bases", NOWHERE, basis), 403)
    refused(platform.get("projection", f"/cases/{case_id}/relay-log", NOWHERE, min_version=1), 403)
    # Nor does a real unit record one for another, or name a law that does not empower it
    for_bup = {**basis, "service": "bup"}
    refused(platform.post("consent", "/legal-bases", PPT, for_bup), 403)
    ppt_own = {**basis, "service": "ppt"}
    refused(platform.post("consent", "/legal-bases", PPT, ppt_own), 403, "law-empowers-the-service")
    assert platform.last_sequence("CONSENT") == before


def test_consents_and_legal_bases_for_a_case_that_does_not_exist_are_404(
    platform: Platform,
) -> None:
    nowhere = str(uuid4())
    before = platform.last_sequence("CONSENT")
    refused(platform.post("consent", "/consents", MOTHER, consent_body(nowhere, MOTHER)), 404)
    basis = {
        "case_id": nowhere,
        "service": "barnevern",
        "legal_basis": "barnevernsloven § 2-1",
        "justification": "melding mottatt",
    }
    refused(platform.post("consent", "/legal-bases", CHILD_WELFARE, basis), 404)
    assert platform.last_sequence("CONSENT") == before


def test_withdrawal_by_an_unrelated_employee_is_refused_and_the_consent_stays(
    platform: Platform,
) -> None:
    case_id, consent_id = with_mothers_consent(platform)
    before = platform.last_sequence("CONSENT")
    refused(platform.post("consent", f"/consents/{consent_id}/withdraw", BUP, {}), 403)
    assert platform.last_sequence("CONSENT") == before
    read = platform.get("projection", f"/cases/{case_id}/relay-log", PPT, min_version=2)
    assert read.status_code == 200, read.text


def test_covered_now_a_stranger_reads_nothing_in_any_service_and_every_refusal_is_recorded(
    platform: Platform,
) -> None:
    case_id, consent_id = with_mothers_consent(platform)
    wait_until(
        lambda: platform.get("meeting", f"/cases/{case_id}/roster", TEACHER).status_code == 200
    )
    reads: list[tuple[str, str, dict[str, str | int]]] = [
        ("case", f"/cases/{case_id}", {}),
        ("consent", f"/cases/{case_id}/consents", {}),
        ("consent", f"/consents/{consent_id}", {}),
        ("consent", f"/cases/{case_id}/access", {"service": "bup", "for_purpose": "cooperation"}),
        ("meeting", f"/cases/{case_id}/meetings", {}),
        ("meeting", f"/cases/{case_id}/roster", {}),
        ("notify", "/notifications", {"case_id": case_id}),
        # (the projection, once it holds the case with the consent: version 2)
        ("projection", f"/cases/{case_id}/relay-log", {"min_version": 2}),
        ("projection", f"/cases/{case_id}/consent-status", {}),
        ("projection", f"/cases/{case_id}/handover-packet", {}),
        ("projection", f"/cases/{case_id}/archive", {}),
    ]
    for service, path, params in reads:
        answer = platform.get(service, path, BUP, **params)
        refused(answer, 403, "covered-now")
        assert consent_id not in answer.text
        assert "Trist" not in answer.text

    # Then the mother sees every one of those attempts in the access log, by the service asked
    def refusals() -> set[str]:
        log = platform.get("projection", f"/cases/{case_id}/access-log", MOTHER).json()
        return {
            e["served_by"] for e in log if e["person"] == BUP.person and e["outcome"] == "refused"
        }

    wait_until(lambda: refusals() == {"case", "consent", "meeting", "notify", "projection"})


def test_guardian_of_the_child_reads_at_level_0_without_consent_and_finds_the_case(
    platform: Platform,
) -> None:
    case_id = a_case(platform)
    read = platform.get("projection", f"/cases/{case_id}/relay-log", MOTHER, min_version=1)
    assert read.status_code == 200, read.text
    assert read.json()["child"]["name"] == KARI_IN_THE_REGISTER.name
    worklist = platform.get("projection", "/worklist", MOTHER).json()
    assert case_id in {item["case_id"] for item in worklist}


def test_covered_now_child_welfare_reads_a_case_reported_to_it_with_what_came_before(
    platform: Platform,
) -> None:
    case_id = a_case(platform)
    refused(
        platform.get("projection", f"/cases/{case_id}/relay-log", CHILD_WELFARE, min_version=1), 403
    )
    report = {"legal_basis": "barnevernsloven § 13-2", "grounds": "Bekymring for omsorgen."}
    filed = platform.post("case", f"/cases/{case_id}/file-child-welfare-report", TEACHER, report)
    assert filed.status_code == 201, filed.text
    read = platform.get("projection", f"/cases/{case_id}/relay-log", CHILD_WELFARE, min_version=2)
    assert read.status_code == 200, read.text
    types = [e["type"] for e in read.json()["entries"]]
    assert types[0] == "ConcernRaised"
    assert "ChildWelfareReportFiled" in types
    overrides = platform.get("projection", "/overrides", AUDITOR, purpose="tilsyn 2026/3").json()
    assert any(o["case_id"] == case_id and o["basis"] == "report" for o in overrides)


def test_refuse_first_a_stranger_asking_for_the_archive_is_not_told_whether_it_is_closed(
    platform: Platform,
) -> None:
    case_id = a_case(platform)
    # Given the projection has the case (it follows the case service's stream a moment behind),
    # and the school that raised it is told it is still open
    wait_until(
        lambda: platform.get("projection", f"/cases/{case_id}/archive", TEACHER).status_code == 409
    )
    # When a service not on the case asks for its archive, then it is refused by the access rule
    refused(platform.get("projection", f"/cases/{case_id}/archive", BUP), 403, "covered-now")


def test_a_service_user_cannot_forge_a_consent_into_the_consent_stream(platform: Platform) -> None:
    async def forge() -> None:
        nc = await nats.connect(
            platform.nats.url,
            user="case",
            password=platform.passwords["case"],
            inbox_prefix="_INBOX.case",
            allow_reconnect=False,
        )
        try:
            js = nc.jetstream()
            with pytest.raises(nats.errors.Error):
                await js.publish("consent.events.x.ConsentGiven", b"{}", timeout=2)
        finally:
            await nc.close()

    before = platform.last_sequence("CONSENT")
    asyncio.run(forge())
    assert platform.last_sequence("CONSENT") == before
