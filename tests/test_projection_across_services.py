"""The projection, running as its own process beside the consent and case services.

Given the three services as in production, when a case is raised and a guardian consents to PPT,
then PPT reads the relay log through the projection; when the guardian withdraws that consent,
PPT's next read is refused, and the guardian sees the refusal in the case's access log.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import httpx

from stafett_contracts.identity import Actor, Role
from stafett_runtime.testing import a_child
from tests.platform import Platform

KINDERGARTEN = "barnehage-solsikke"
EMPLOYEE = Actor(person="ansatt-1", role=Role.EMPLOYEE, service=KINDERGARTEN)
GUARDIAN = Actor(person="forelder-1", role=Role.GUARDIAN)
PPT = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")


def test_the_projection_follows_consent_and_case_and_refuses_a_service_once_consent_is_withdrawn(
    platform: Platform,
) -> None:
    http = httpx.Client(timeout=10)

    def as_(actor: Actor) -> dict[str, str]:
        return {"Authorization": f"Bearer {platform.key.mint(actor)}"}

    def until(read: Callable[[], httpx.Response], done: Callable[[httpx.Response], bool]) -> Any:
        deadline = time.monotonic() + 20
        while not done(answer := read()):
            assert time.monotonic() < deadline, f"not so in 20 s: {answer.text}"
            time.sleep(0.1)
        return answer

    child = a_child(GUARDIAN.person)
    platform.register_child(child)
    platform.start("consent", "case", "projection")
    consent, case, projection = (platform.services[n] for n in ("consent", "case", "projection"))

    raised = http.post(
        f"{case.url}/cases",
        json={
            "child_id": str(child.child_id),
            "concern": "Trekker seg unna i lek over flere uker.",
        },
        headers=as_(EMPLOYEE),
    )
    assert raised.status_code == 201, raised.text
    case_id = raised.json()["id"]
    relay_log = f"{projection.url}/cases/{case_id}/relay-log"
    # The unit's own read waits for the case's first event to be visible.
    own = http.get(relay_log, params={"min_version": 1}, headers=as_(EMPLOYEE))
    assert [e["type"] for e in own.json()["entries"]] == ["ConcernRaised"]

    given = http.post(
        f"{consent.url}/consents",
        json={
            "case_id": case_id,
            "given_by": {"kind": "guardian", "person": GUARDIAN.person},
            "services": [KINDERGARTEN, "ppt"],
            "purposes": ["cooperation"],
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

    # PPT is let in once the case has noted the consent, and sees only what came after it.
    granted = until(lambda: http.get(relay_log, headers=as_(PPT)), lambda a: a.status_code == 200)
    assert "ConsentNoted" in [e["type"] for e in granted.json()["entries"]]
    assert "ConcernRaised" not in [e["type"] for e in granted.json()["entries"]]

    withdrawn = http.post(
        f"{consent.url}/consents/{given.json()['id']}/withdraw",
        json={"services": ["ppt"]},
        headers=as_(GUARDIAN),
    )
    assert withdrawn.status_code == 201, withdrawn.text
    until(lambda: http.get(relay_log, headers=as_(PPT)), lambda a: a.status_code == 403)

    access_log = until(
        lambda: http.get(f"{projection.url}/cases/{case_id}/access-log", headers=as_(GUARDIAN)),
        lambda a: any(e["person"] == PPT.person and e["outcome"] == "refused" for e in a.json()),
    )
    assert any(e["person"] == PPT.person and e["outcome"] == "granted" for e in access_log.json())
