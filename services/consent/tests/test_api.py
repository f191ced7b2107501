"""The consent API over HTTP, against a real nats-server: one happy path per endpoint, each way a
command is refused (leaving nothing behind), and every read through the gate and in the access log.

The CASE stream is written here by a stand-in application named "case", with the case
contract's events, so the test needs nothing of the case service but its contract; a kernel of
the case service's makes the child's key, as the case service does when a case is raised (this
service only seals under it). The child and
their guardians are in a register file of the test's own, the units in the test municipality's
directory (`stafett_runtime.testing`).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from litestar import Litestar
from litestar.testing import TestClient

from stafett_consent.api import create_app
from stafett_consent.application import Consents
from stafett_contracts.access import AUDITOR_STATES_PURPOSE, COVERED_NOW, GUARDIAN_OF_THE_CHILD
from stafett_contracts.audit import CaseAccessed
from stafett_contracts.case import (
    AgencyJoined,
    CaseEvent,
    ConcernRaised,
    ConsentNoted,
    LegalBasisNoted,
)
from stafett_contracts.consent import ConsentWithdrawn, LegalBasisRecorded
from stafett_contracts.envelope import topic_of
from stafett_contracts.identity import Actor, Role
from stafett_contracts.personal import SealedText
from stafett_runtime.accesslog import AUDIT
from stafett_runtime.auth import DevelopmentKey
from stafett_runtime.contracts import ContractApplication, decode_event
from stafett_runtime.jetstream.layout import TOPIC
from stafett_runtime.kernel import Kernel
from stafett_runtime.register import FileRegister
from stafett_runtime.settings import Settings
from stafett_runtime.testing import NatsTestServer, a_child, kernel_for_tests

UNIT = "skole-lia"
TEACHER = Actor(person="teacher-1", role=Role.EMPLOYEE, service=UNIT)
PPT_WORKER = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")
BUP_WORKER = Actor(person="bup-1", role=Role.EMPLOYEE, service="bup")  # never on the case
CHILD_WELFARE = Actor(person="bv-1", role=Role.EMPLOYEE, service="barnevern")
NOWHERE = Actor(person="x-1", role=Role.EMPLOYEE, service="skole-nowhere")  # in no directory
MOTHER = Actor(person="guardian-mother", role=Role.GUARDIAN)
FATHER = Actor(person="guardian-father", role=Role.GUARDIAN)
OTHER_MOTHER = Actor(person="guardian-of-another-child", role=Role.GUARDIAN)
THE_CHILD = Actor(person="kid-1", role=Role.CHILD)
AUDITOR = Actor(person="tilsyn-1", role=Role.AUDITOR)

# The register: the case's child (eleven years old in 2026) with both parents, and another child.
CHILD = a_child(MOTHER.person, FATHER.person, born=date(2014, 9, 1), person=THE_CHILD.person)
OTHER_CHILD = a_child(OTHER_MOTHER.person)


class CaseStandIn(ContractApplication):
    name = "case"  # writes the CASE stream, as the case service does


class Api:
    """The client, a token per actor, the application (to look at the CONSENT stream), the
    kernel (to read the AUDIT stream) and the CASE stream's stand-in."""

    def __init__(
        self,
        http: TestClient[Litestar],
        key: DevelopmentKey,
        consents: Consents,
        kernel: Kernel,
        cases: CaseStandIn,
        case_kernel: Kernel,
    ) -> None:
        self.http = http
        self.consents = consents
        self.kernel = kernel
        self.case_kernel = case_kernel
        self._key = key
        self._cases = cases

    def post(self, path: str, body: dict[str, Any], actor: Actor = TEACHER) -> Any:
        return self.http.post(path, json=body, headers=self._auth(actor))

    def get(self, path: str, actor: Actor = TEACHER, **params: str) -> Any:
        return self.http.get(path, params=params, headers=self._auth(actor))

    def events_stored(self) -> int:
        """How many events the CONSENT stream holds."""
        return self.consents.recorder.max_notification_id() or 0

    def a_case(self) -> str:
        """The child's case as the case service writes it: raised at Lia school yesterday, and
        PPT has joined it."""
        case_id = uuid4()
        concern = self.http.blocking_portal.call(
            self.case_kernel.seal_text, "often tired and hungry", str(CHILD.child_id)
        )  # the child's key is made here, by the case service
        raised = ConcernRaised(
            **self._envelope(case_id, 1), child_id=CHILD.child_id, unit=UNIT, concern=concern
        )
        joined = AgencyJoined(**self._envelope(case_id, 2), service="ppt", basis="consent")
        self._cases.save(raised, joined)
        return str(case_id)

    def case_notes(self, case_id: str, event: type[CaseEvent], **fields: Any) -> None:
        """What the case service's consent policy writes on the CASE stream once it has read a
        consent event: the one access rule reads coverage from the case's own record."""
        version = len(list(self._cases.events.get(UUID(case_id)))) + 1
        envelope = {**self._envelope(UUID(case_id), version), "occurred_at": datetime.now(UTC)}
        self._cases.save(event(**envelope, **fields))

    def case_notes_consent(self, case_id: str, consent_id: str) -> None:
        consent = self.consents.consent(UUID(consent_id))
        self.case_notes(
            case_id,
            ConsentNoted,
            consent_id=consent.id,
            services=consent.scope.services,
            purposes=tuple(consent.scope.purposes),
            valid_from=consent.valid_from,
            valid_until=consent.scope.valid_until,
        )

    def access_log(self) -> list[CaseAccessed]:
        """Every CaseAccessed on the AUDIT stream, in order."""
        subject = AUDIT.type_filter(topic_of(CaseAccessed))
        found = self.http.blocking_portal.call(self.kernel.core.read_all, AUDIT.stream, subject)
        records = [decode_event(m.headers[TOPIC], m.data) for m in found]
        return [r for r in records if isinstance(r, CaseAccessed)]

    def _envelope(self, case_id: UUID, version: int) -> dict[str, Any]:
        return {
            "event_id": uuid4(),
            "aggregate_id": case_id,
            "aggregate_version": version,
            "occurred_at": datetime.now(UTC) - timedelta(days=1),
            "actor": TEACHER,
            "correlation_id": "case",
        }

    def _auth(self, actor: Actor) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._key.mint(actor)}"}


@pytest.fixture
def api(nats_server: NatsTestServer, tmp_path: Path) -> Iterator[Api]:
    env = Settings(service="consent", nats_url=nats_server.url).eventsourcing_env()
    cases = CaseStandIn(env)
    consents = Consents(env)
    register = FileRegister(tmp_path / "register.json")
    register.add(CHILD, OTHER_CHILD)
    key = DevelopmentKey.load_or_create(tmp_path / "signing-key.pem")
    kernel = kernel_for_tests(
        "consent", nats_server.url, key=key, register=register, child_keys="open"
    )
    case_kernel = kernel_for_tests(
        "case", nats_server.url, key=key, register=register, child_keys="seal"
    )
    try:
        with TestClient(create_app(consents, kernel)) as http:
            http.blocking_portal.call(case_kernel.open)
            try:
                yield Api(http, key, consents, kernel, cases, case_kernel)
            finally:
                http.blocking_portal.call(case_kernel.close)
    finally:
        consents.close()
        cases.close()


def mothers_consent(case_id: str, **changes: Any) -> dict[str, Any]:
    """The mother's written consent to PPT and the health clinic, from now for 90 days."""
    now = datetime.now(UTC)
    return {
        "case_id": case_id,
        "given_by": {"kind": "guardian", "person": MOTHER.person},
        "services": ["ppt", "helsestasjon"],
        "purposes": ["cooperation"],
        "valid_from": now.isoformat(),
        "valid_until": (now + timedelta(days=90)).isoformat(),
        "evidence": {"form": "written", "document_ref": "doc-17", "document_sha256": "ab" * 32},
        **changes,
    }


def give(api: Api, case_id: str, actor: Actor = TEACHER) -> str:
    answer = api.post("/consents", mothers_consent(case_id), actor)
    assert answer.status_code == 201, answer.text
    consent_id: str = answer.json()["id"]
    return consent_id


def refused(answer: Any, status: int, rule: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.json()["extra"] == {"rule": rule}


# The happy paths


def test_a_guardian_gives_consent_and_reads_it_back(api: Api) -> None:
    case_id = api.a_case()
    answer = api.post("/consents", mothers_consent(case_id), MOTHER)
    assert answer.status_code == 201, answer.text
    assert answer.json()["version"] == 1
    read = api.get(f"/consents/{answer.json()['id']}", MOTHER)
    assert read.status_code == 200, read.text
    consent = read.json()
    assert (consent["case_id"], consent["child_id"]) == (case_id, str(CHILD.child_id))
    assert consent["given_by"]["person"] == MOTHER.person
    assert consent["scopes"][0]["services"] == ["ppt", "helsestasjon"]
    (record,) = api.access_log()
    assert (record.what, record.outcome, record.rule) == (
        "consent",
        "granted",
        "guardian-of-the-child",
    )


def test_scope_changes_and_withdrawals_answer_the_new_version(api: Api) -> None:
    consent_id = give(api, api.a_case())
    changed = api.post(
        f"/consents/{consent_id}/scope",
        {"services": ["ppt", "bup"], "purposes": ["cooperation", "tvist"], "expected_version": 1},
    )
    assert (changed.status_code, changed.json()) == (201, {"id": consent_id, "version": 2})
    withdrawn = api.post(f"/consents/{consent_id}/withdraw", {"services": ["bup"]}, MOTHER)
    assert withdrawn.json() == {"id": consent_id, "version": 3}
    again = api.post(f"/consents/{consent_id}/withdraw", {"services": ["bup"]}, MOTHER)
    assert again.json() == {"id": consent_id, "version": 3}  # already in effect: nothing new


def test_a_case_lists_its_consents_and_answers_who_may_see_it(api: Api) -> None:
    case_id = api.a_case()
    consent_id = give(api, case_id)
    give(api, api.a_case())  # another case's
    listed = api.get(f"/cases/{case_id}/consents").json()
    assert [c["id"] for c in listed["consents"]] == [consent_id]
    api.case_notes_consent(case_id, consent_id)
    now = api.get(f"/cases/{case_id}/access", service="ppt", for_purpose="cooperation")
    assert now.json()["allowed"] is True
    assert now.json()["basis"] == f"consent {consent_id}"
    assert now.json()["until"] is not None
    before = api.get(
        f"/cases/{case_id}/access",
        service="ppt",
        for_purpose="cooperation",
        at=(datetime.now(UTC) - timedelta(days=1)).isoformat(),
    )
    assert before.json()["allowed"] is False


def test_a_unit_records_its_legal_basis_and_is_covered_without_consent(api: Api) -> None:
    case_id = api.a_case()
    recorded = api.post(
        "/legal-bases",
        {
            "case_id": case_id,
            "service": "barnevern",
            "legal_basis": "barnevernsloven § 2-1",
            "justification": "a report of concern is being investigated",
        },
        CHILD_WELFARE,
    )
    assert recorded.status_code == 201, recorded.text
    provision = "barnevernsloven § 2-1"
    api.case_notes(case_id, LegalBasisNoted, service="barnevern", legal_basis=provision)
    answer = api.get(f"/cases/{case_id}/access", service="barnevern", for_purpose="referral")
    assert answer.json()["allowed"] is True
    assert answer.json()["basis"] == f"legal basis: {provision}"
    (basis,) = api.get(f"/cases/{case_id}/consents").json()["legal_bases"]
    assert (basis["shared_by"], basis["child_id"]) == (CHILD_WELFARE.person, str(CHILD.child_id))


def test_free_text_sealed_a_withdrawal_reason_and_a_justification_are_sealed_until_erased(
    api: Api,
) -> None:
    # Given a case with the mother's consent, and child welfare taking part under a legal basis
    case_id = api.a_case()
    consent_id = give(api, case_id, MOTHER)
    basis = {
        "case_id": case_id,
        "service": "barnevern",
        "legal_basis": "barnevernsloven § 2-1",
        "justification": "pikeskole-undersokelse-7731",
    }
    assert api.post("/legal-bases", basis, CHILD_WELFARE).status_code == 201
    # When the mother withdraws her consent for PPT, saying why
    reason = {"services": ["ppt"], "reason": "flyttet-til-bergen-7731"}
    assert api.post(f"/consents/{consent_id}/withdraw", reason, MOTHER).status_code == 201
    # Then neither text stands in clear in the CONSENT stream: each is sealed under the child's key
    stored = api.http.blocking_portal.call(api.kernel.core.read_all, "CONSENT", "consent.>")
    assert stored
    assert not any(b"7731" in message.data for message in stored)
    withdrawn, recorded = (decode_event(m.headers[TOPIC], m.data) for m in stored[-1:-3:-1])
    assert isinstance(withdrawn, ConsentWithdrawn)
    assert isinstance(withdrawn.reason, SealedText)
    assert isinstance(recorded, LegalBasisRecorded)
    assert isinstance(recorded.justification, SealedText)
    # And a reader of the case reads the justification opened
    (shown,) = api.get(f"/cases/{case_id}/consents", MOTHER).json()["legal_bases"]
    assert shown["justification"] == "pikeskole-undersokelse-7731"
    # When the child is erased, the justification reads as erased, never an error
    api.http.blocking_portal.call(api.case_kernel.erase, str(CHILD.child_id), "retention ended")
    (shown,) = api.get(f"/cases/{case_id}/consents", MOTHER).json()["legal_bases"]
    assert shown["justification"]["erased"] is True
    # And no new text about the erased child is taken: 409 naming the rule, nothing stored
    events = api.events_stored()
    again = {"reason": "flyttet igjen"}
    refused(
        api.post(f"/consents/{consent_id}/withdraw", again, MOTHER),
        409,
        "erased-child-stays-erased",
    )
    assert api.events_stored() == events


def test_guardian_of_the_child_a_guardian_reads_the_consents_of_their_childs_case(
    api: Api,
) -> None:
    case_id = api.a_case()
    consent_id = give(api, case_id)
    answer = api.get(f"/cases/{case_id}/consents", FATHER)
    assert answer.status_code == 200, answer.text
    assert [c["id"] for c in answer.json()["consents"]] == [consent_id]
    (record,) = api.access_log()
    assert (record.actor, record.outcome, record.rule) == (FATHER, "granted", GUARDIAN_OF_THE_CHILD)


# What worked before, and is refused now, leaving no event


def test_guardian_of_the_child_a_guardian_of_another_child_neither_consents_nor_reads(
    api: Api,
) -> None:
    case_id = api.a_case()
    herself = {"kind": "guardian", "person": OTHER_MOTHER.person}
    answer = api.post("/consents", mothers_consent(case_id, given_by=herself), OTHER_MOTHER)
    refused(answer, 403, GUARDIAN_OF_THE_CHILD)
    assert api.events_stored() == 0
    read = api.get(f"/cases/{case_id}/consents", OTHER_MOTHER)
    refused(read, 403, GUARDIAN_OF_THE_CHILD)
    (record,) = api.access_log()
    assert (record.actor, record.outcome) == (OTHER_MOTHER, "refused")


def test_child_consents_alone_from_age_threshold_by_the_register_not_a_claimed_age(
    api: Api,
) -> None:
    case_id = api.a_case()
    own = mothers_consent(case_id, given_by={"kind": "child", "person": THE_CHILD.person})
    claimed = api.post("/consents", {**own, "child_age": 16}, THE_CHILD)
    assert claimed.status_code == 422
    assert "child_age" in claimed.text
    eleven = api.post("/consents", own, THE_CHILD)
    refused(eleven, 403, "child-consents-alone-from-age-threshold")
    assert api.events_stored() == 0


def test_service_takes_part_an_employee_of_a_unit_not_on_the_case_records_no_consent(
    api: Api,
) -> None:
    case_id = api.a_case()
    invented = {"kind": "guardian", "person": "an-invented-parent"}
    back_dated = datetime(2000, 1, 1, tzinfo=UTC).isoformat()
    answer = api.post(
        "/consents",
        mothers_consent(case_id, given_by=invented, valid_from=back_dated),
        BUP_WORKER,
    )
    refused(answer, 403, "service-takes-part")
    assert api.events_stored() == 0


def test_guardian_in_the_register_and_consent_not_backdated_for_a_unit_on_the_case(
    api: Api,
) -> None:
    case_id = api.a_case()
    invented = {"kind": "guardian", "person": "an-invented-parent"}
    refused(
        api.post("/consents", mothers_consent(case_id, given_by=invented), TEACHER),
        403,
        "guardian-in-the-register",
    )
    back_dated = datetime(2000, 1, 1, tzinfo=UTC).isoformat()
    refused(
        api.post("/consents", mothers_consent(case_id, valid_from=back_dated), TEACHER),
        409,
        "consent-not-backdated",
    )
    assert api.events_stored() == 0


def test_law_empowers_the_service_a_unit_that_exists_nowhere_records_no_legal_basis(
    api: Api,
) -> None:
    case_id = api.a_case()
    own = {
        "case_id": case_id,
        "service": "skole-nowhere",
        "legal_basis": "barnevernsloven § 2-1",
        "justification": "we say so",
    }
    refused(api.post("/legal-bases", own, NOWHERE), 403, "law-empowers-the-service")
    for_another = {**own, "service": "barnevern"}
    refused(api.post("/legal-bases", for_another, TEACHER), 403, "legal-basis-for-own-service")
    assert api.events_stored() == 0


def test_service_takes_part_an_unrelated_employee_withdraws_no_guardians_consent(
    api: Api,
) -> None:
    case_id = api.a_case()
    consent_id = give(api, case_id, MOTHER)
    stored = api.events_stored()
    answer = api.post(f"/consents/{consent_id}/withdraw", {}, BUP_WORKER)
    refused(answer, 403, "service-takes-part")
    assert api.events_stored() == stored
    assert api.get(f"/consents/{consent_id}", MOTHER).json()["withdrawn_at"] is None
    on_her_behalf = api.post(f"/consents/{consent_id}/withdraw", {}, PPT_WORKER)  # taking part
    assert on_her_behalf.json() == {"id": consent_id, "version": 2}


def test_a_case_that_does_not_exist_takes_no_consent_and_no_legal_basis(api: Api) -> None:
    no_case = str(uuid4())
    assert api.post("/consents", mothers_consent(no_case)).status_code == 404
    basis = {
        "case_id": no_case,
        "service": "barnevern",
        "legal_basis": "barnevernsloven § 2-1",
        "justification": "a report of concern is being investigated",
    }
    assert api.post("/legal-bases", basis, CHILD_WELFARE).status_code == 404
    assert api.events_stored() == 0


def test_covered_now_every_read_by_a_stranger_is_refused_and_recorded(api: Api) -> None:
    case_id = api.a_case()
    consent_id = give(api, case_id)
    reads = [
        ("consent", api.get(f"/consents/{consent_id}", BUP_WORKER)),
        ("consents", api.get(f"/cases/{case_id}/consents", BUP_WORKER)),
        (
            "access",
            api.get(
                f"/cases/{case_id}/access", BUP_WORKER, service="bup", for_purpose="cooperation"
            ),
        ),
    ]
    for _, answer in reads:
        refused(answer, 403, COVERED_NOW)
        assert consent_id not in answer.text
    log = api.access_log()
    assert [(r.what, r.outcome, r.rule) for r in log] == [
        (what, "refused", COVERED_NOW) for what, _ in reads
    ]
    assert {r.actor for r in log} == {BUP_WORKER}


def test_auditor_states_purpose_before_reading_and_the_purpose_is_recorded(api: Api) -> None:
    case_id = api.a_case()
    unstated = api.get(f"/cases/{case_id}/consents", AUDITOR)
    assert unstated.status_code == 422
    assert "purpose" in unstated.text
    stated = api.get(f"/cases/{case_id}/consents", AUDITOR, purpose="annual internal control")
    assert stated.status_code == 200, stated.text
    refusal, grant = api.access_log()
    assert (refusal.outcome, refusal.rule) == ("refused", AUDITOR_STATES_PURPOSE)
    assert (grant.outcome, grant.purpose) == ("granted", "annual internal control")


# Other refusals


def test_a_broken_rule_is_409_naming_the_rule_and_leaves_no_event(api: Api) -> None:
    unsigned = {"form": "written", "document_ref": "doc-17"}
    answer = api.post("/consents", mothers_consent(api.a_case(), evidence=unsigned))
    refused(answer, 409, "written-consent-needs-document-and-hash")
    assert api.events_stored() == 0


def test_role_gives_no_consent_an_auditor_is_403_and_leaves_no_event(api: Api) -> None:
    answer = api.post("/consents", mothers_consent(api.a_case()), AUDITOR)
    refused(answer, 403, "role-gives-no-consent")
    assert api.events_stored() == 0


def test_party_acts_for_themselves_a_guardian_gives_no_consent_for_another_party(
    api: Api,
) -> None:
    answer = api.post("/consents", mothers_consent(api.a_case()), FATHER)
    refused(answer, 403, "party-acts-for-themselves")
    assert api.events_stored() == 0


def test_a_stale_expected_version_is_409_and_leaves_no_event(api: Api) -> None:
    consent_id = give(api, api.a_case())
    stored = api.events_stored()
    answer = api.post(f"/consents/{consent_id}/withdraw", {"expected_version": 0})
    assert answer.status_code == 409
    assert "expected version 0" in answer.json()["detail"]
    assert api.events_stored() == stored


def test_invalid_input_is_422_naming_the_field(api: Api) -> None:
    case_id = api.a_case()
    no_case = mothers_consent(case_id)
    del no_case["case_id"]
    basis = {
        "case_id": case_id,
        "service": "barnevern",
        "legal_basis": "barnevernsloven § 2-1",
        "justification": "a report of concern is being investigated",
    }
    answers = [
        (api.post("/consents", no_case), "case_id"),
        (api.post("/consents", mothers_consent(case_id, colour="red")), "colour"),
        (api.post("/consents", mothers_consent(case_id, child_id=str(uuid4()))), "child_id"),
        (api.post("/consents", mothers_consent(case_id, services=[])), "services"),
        (api.post("/legal-bases", {**basis, "child_id": str(uuid4())}, CHILD_WELFARE), "child_id"),
        (
            api.get(
                f"/cases/{case_id}/access",
                service="ppt",
                for_purpose="cooperation",
                at="2026-01-01T00:00",
            ),
            "at",
        ),
        (api.get(f"/cases/{case_id}/consents", AUDITOR, purpose="x" * 501), "purpose"),
    ]
    for answer, field in answers:
        assert answer.status_code == 422, answer.text
        assert field in answer.text
    assert api.events_stored() == 0


@pytest.mark.parametrize(
    ("field", "changes"),
    [
        ("given_by.person", {"given_by": {"kind": "guardian", "person": "guardian-\x00mother"}}),
        ("given_by.person", {"given_by": {"kind": "guardian", "person": "guardian\u200b-mother"}}),
        ("given_by.person", {"given_by": {"kind": "guardian", "person": "\u202eguardian-mother"}}),
        ("evidence.document_ref", {"evidence": {"form": "written", "document_ref": "d" * 501}}),
        ("evidence.document_ref", {"evidence": {"form": "written", "document_ref": "doc\n17"}}),
        (
            "evidence.document_sha256",
            {"evidence": {"form": "written", "document_sha256": "ab" * 32 + "\n"}},
        ),
        ("services[0]", {"services": ["ppt\n"]}),
    ],
)
def test_a_person_id_evidence_or_unit_beyond_its_limits_is_422_naming_the_field(
    api: Api, field: str, changes: dict[str, Any]
) -> None:
    # Given a case; when a consent names its party, its evidence or a unit beyond their limits
    answer = api.post("/consents", mothers_consent(api.a_case(), **changes))
    # Then it is refused as invalid input naming the field, and nothing is stored
    assert answer.status_code == 422, answer.text
    assert answer.json()["extra"][0]["key"] == field
    assert api.events_stored() == 0


@pytest.mark.parametrize(
    ("valid_from", "valid_until", "rule"),
    [
        ("9999-12-31T23:59:59-14:00", None, "consent-begins-within-a-year"),
        ("0001-01-01T00:00:00+14:00", None, "consent-not-backdated"),
        (None, "9999-12-31T23:59:59+00:00", "consent-ends-within-three-validity-periods"),
    ],
)
def test_a_consent_at_the_ends_of_the_calendar_is_409_naming_the_rule_never_a_500(
    api: Api, valid_from: str | None, valid_until: str | None, rule: str
) -> None:
    body = mothers_consent(api.a_case())
    body["valid_from"] = valid_from or body["valid_from"]
    body["valid_until"] = valid_until or body["valid_until"]
    refused(api.post("/consents", body), 409, rule)
    assert api.events_stored() == 0


def test_an_unknown_consent_is_404(api: Api) -> None:
    unknown = uuid4()
    assert api.get(f"/consents/{unknown}").status_code == 404
    assert api.post(f"/consents/{unknown}/withdraw", {}).status_code == 404
    assert api.events_stored() == 0


def test_the_service_is_ready_when_its_stream_and_nats_answer(api: Api) -> None:
    answer = api.http.get("/health/ready")
    assert answer.status_code == 200
    assert answer.json()["status"] == "ready"
