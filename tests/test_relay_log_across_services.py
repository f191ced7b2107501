"""The consent and case services, each in its own process, agree only through NATS.

Given both services running as they do in production, when a guardian's consent is given in the
consent service, then the case service lets the consented service join; and when the guardian
withdraws it for that service, the service leaves the case at once and is refused from then on.
"""

from __future__ import annotations

import hashlib
import time
from datetime import UTC, datetime
from uuid import UUID

import httpx

from stafett_contracts.identity import Actor, Role
from stafett_runtime.testing import a_child
from tests.platform import Platform

KINDERGARTEN = "barnehage-solsikke"
EMPLOYEE = Actor(person="ansatt-1", role=Role.EMPLOYEE, service=KINDERGARTEN)
LEADER = Actor(person="styrer-1", role=Role.UNIT_LEADER, service=KINDERGARTEN)
GUARDIAN = Actor(person="forelder-1", role=Role.GUARDIAN)
PPT = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")


def wait_for(platform: Platform, event_type: str, case_id: UUID) -> None:
    deadline = time.monotonic() + 20
    while event_type not in platform.event_types("case", case_id):
        assert time.monotonic() < deadline, f"no {event_type} on the case in 20 s"
        time.sleep(0.1)


def test_consent_given_in_one_service_lets_a_service_join_in_another_and_withdrawal_removes_it(
    platform: Platform,
) -> None:
    def as_(actor: Actor) -> dict[str, str]:
        return {"Authorization": f"Bearer {platform.key.mint(actor)}"}

    platform.start("consent", "case")
    consent, case = platform.services["consent"], platform.services["case"]
    http = httpx.Client(timeout=10)
    child = a_child(GUARDIAN.person)
    platform.register_child(child)

    # Given a concern raised in the kindergarten
    raised = http.post(
        f"{case.url}/cases",
        json={
            "child_id": str(child.child_id),
            "concern": "Trekker seg unna i lek over flere uker.",
        },
        headers=as_(EMPLOYEE),
    )
    assert raised.status_code == 201, raised.text
    case_id = UUID(raised.json()["id"])

    # When the guardian consents to cooperation with the kindergarten and PPT
    given = http.post(
        f"{consent.url}/consents",
        json={
            "case_id": str(case_id),
            "given_by": {"kind": "guardian", "person": GUARDIAN.person},
            "services": [KINDERGARTEN, "ppt"],
            "purposes": ["cooperation", "referral"],
            "valid_from": datetime.now(UTC).isoformat(),
            "evidence": {
                "form": "written",
                "document_ref": "arkiv/2026/1234",
                "document_sha256": hashlib.sha256(b"signed consent").hexdigest(),
            },
        },
        headers=as_(GUARDIAN),
    )
    assert given.status_code == 201, given.text
    consent_id = given.json()["id"]
    # Then the case service learns of it from the CONSENT stream
    wait_for(platform, "ConsentNoted", case_id)

    # And the case goes to level 1, and PPT joins on a referral
    def command(actor: Actor, name: str, body: dict[str, object]) -> httpx.Response:
        return http.post(f"{case.url}/cases/{case_id}/{name}", json=body, headers=as_(actor))

    steps: list[tuple[Actor, str, dict[str, object]]] = [
        (LEADER, "appoint-baton-holder", {"holder": EMPLOYEE.person, "service": KINDERGARTEN}),
        (EMPLOYEE, "escalate", {"to_level": 1, "reason": "Tiltak i barnehagen, med foreldrene."}),
        (EMPLOYEE, "send-referral", {"to_service": "ppt", "purpose": "Utredning av språk."}),
        (PPT, "join-agency", {"service": "ppt"}),
    ]
    for actor, name, body in steps:
        answer = command(actor, name, body)
        assert answer.status_code == 201, f"{name}: {answer.text}"

    # When the guardian withdraws the consent for PPT
    withdrawn = http.post(
        f"{consent.url}/consents/{consent_id}/withdraw",
        json={"services": ["ppt"]},
        headers=as_(GUARDIAN),
    )
    assert withdrawn.status_code == 201, withdrawn.text
    # Then PPT leaves the case at once, and is refused from then on
    wait_for(platform, "AgencyLeft", case_id)
    refused = command(PPT, "note-bright-spot", {"note": "Godt samarbeid i dag."})
    assert refused.status_code == 403, refused.text
    assert platform.event_types("case", case_id) == [
        "ConcernRaised",
        "ConsentNoted",
        "BatonHolderAppointed",
        "Escalated",
        "ReferralSent",
        "AgencyJoined",
        "ConsentLapsed",
        "AgencyLeft",
    ]
