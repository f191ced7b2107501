"""The notify API over HTTP, against a real nats-server: a case's notifications and their status,
each read through the one access rule and recorded on the AUDIT stream, read or refused.

The case is on the CASE stream (written by a stand-in named "case"); its child and guardians are
in the test's register file; units and their leaders are the test municipality's.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import pytest
from litestar.testing import TestClient

from stafett_contracts import case as c
from stafett_contracts import notify as n
from stafett_contracts.access import (
    AUDITOR_STATES_PURPOSE,
    COVERED_NOW,
    GUARDIAN_OF_THE_CHILD,
    ROLE_READS_NO_CASES,
)
from stafett_contracts.identity import Actor, Role
from stafett_contracts.people import RegisteredChild
from stafett_notify.api import FOR_ITS_RECIPIENT, SHOWN_WITH_ITS_CASE, create_app
from stafett_notify.application import SYSTEM, Notifications
from stafett_notify.domain.delivery import DeliveryContext, Request
from stafett_notify.main import document as notify_app
from stafett_notify.testing import (
    LEADER,
    T0,
    UNIT,
    Clock,
    Envelopes,
    Upstreams,
    case_accesses,
    make_config,
    notifications,
    run_policies,
)
from stafett_runtime.auth import DevelopmentKey
from stafett_runtime.natsserver import free_port
from stafett_runtime.register import FileRegister
from stafett_runtime.skeleton import openapi
from stafett_runtime.testing import NatsTestServer, a_child, kernel_for_tests

GUARDIAN = "mor-1"
LEADER_ACTOR = Actor(person=LEADER, role=Role.UNIT_LEADER, service=UNIT)
COLLEAGUE = Actor(person="laerer-9", role=Role.EMPLOYEE, service=UNIT)
STRANGER = Actor(person="rektor-9", role=Role.UNIT_LEADER, service="skole-berg")
PPT_WORKER = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")
PPT_COLLEAGUE = Actor(person="ppt-2", role=Role.EMPLOYEE, service="ppt")
MOTHER = Actor(person=GUARDIAN, role=Role.GUARDIAN)
NOT_A_GUARDIAN = Actor(person="nabo-1", role=Role.GUARDIAN)
ADMINISTRATOR = Actor(person="admin-1", role=Role.ADMINISTRATOR)
AUDITOR = Actor(person="tilsyn-1", role=Role.AUDITOR)


@pytest.fixture
def app(env: dict[str, str]) -> Iterator[Notifications]:
    config = make_config(free_port(), (LEADER,))  # nothing listens: every attempt fails
    application = notifications(env, config, Clock(T0))
    yield application
    application.close()


@pytest.fixture
def key(tmp_path: Path) -> DevelopmentKey:
    return DevelopmentKey.load_or_create(tmp_path / "key.pem")


@pytest.fixture
def child(register: FileRegister) -> RegisteredChild:
    registered = a_child(GUARDIAN)
    register.add(registered)
    return registered


@pytest.fixture
def client(
    app: Notifications, key: DevelopmentKey, register: FileRegister, nats_server: NatsTestServer
) -> Iterator[TestClient[Any]]:
    kernel = kernel_for_tests("notify", nats_server.url, key=key, register=register)
    with TestClient(create_app(app, kernel)) as test_client:
        yield test_client


@pytest.fixture
def get(client: TestClient[Any], key: DevelopmentKey) -> Any:
    def as_(actor: Actor | None, path: str) -> Any:
        headers = {"Authorization": f"Bearer {key.mint(actor)}"} if actor else {}
        return client.get(path, headers=headers)

    return as_


def raise_concern(upstreams: Upstreams, envelope: Envelopes, child: RegisteredChild) -> UUID:
    case_id = uuid4()
    upstreams.save(
        c.ConcernRaised(**envelope(case_id, T0), child_id=child.child_id, unit=UNIT, concern="Uro")
    )
    return case_id


def test_a_failed_notification_shows_as_failed_to_those_of_the_cases_own_unit(
    env: dict[str, str],
    app: Notifications,
    upstreams: Upstreams,
    envelope: Envelopes,
    register: FileRegister,
    child: RegisteredChild,
    get: Any,
) -> None:
    # Given a concern whose unit leader cannot be reached, after every attempt
    case_id = raise_concern(upstreams, envelope, child)
    run_policies(env, app.config, register)
    clock = Clock(T0)
    for minutes in (0, 1, 3):
        clock.now = T0.replace(minute=minutes)
        app.deliver(clock.now)

    # When the leader asks for the case's notifications, then it sees the failure and why
    answer = get(LEADER_ACTOR, f"/notifications?case_id={case_id}")
    assert answer.status_code == 200, answer.text
    (notification,) = answer.json()
    assert notification["status"] == "failed"
    assert notification["attempts"] == 3
    assert notification["recipient"] == LEADER
    assert notification["reason"] == "concern_raised"
    assert "smtp" in notification["error"]
    assert get(LEADER_ACTOR, f"/notifications/{notification['id']}").json() == notification
    # And a colleague of the unit sees it too: it is the unit's own record (rule own-unit)
    assert get(COLLEAGUE, f"/notifications?case_id={case_id}").json() == [notification]
    # And the guardian of the child, as the register says, sees every notification of the case
    assert get(MOTHER, f"/notifications/{notification['id']}").json() == notification

    assert get(None, f"/notifications/{notification['id']}").status_code == 401
    assert get(LEADER_ACTOR, f"/notifications/{uuid4()}").status_code == 404
    assert get(LEADER_ACTOR, f"/notifications?case_id={uuid4()}").status_code == 404
    missing = get(LEADER_ACTOR, "/notifications")
    assert missing.status_code == 422
    assert "case_id" in missing.text
    too_long = get(LEADER_ACTOR, f"/notifications?case_id={case_id}&purpose={'x' * 501}")
    assert too_long.status_code == 422
    assert "purpose" in too_long.text


def test_a_stranger_is_refused_by_the_access_rule_and_the_refusal_is_recorded(
    env: dict[str, str],
    app: Notifications,
    upstreams: Upstreams,
    envelope: Envelopes,
    register: FileRegister,
    child: RegisteredChild,
    get: Any,
) -> None:
    # Given a case of skole-lia with a notification to its leader
    case_id = raise_concern(upstreams, envelope, child)
    run_policies(env, app.config, register)
    (notification,) = app.notifications_of(case_id)

    # When the leader of a school no consent covers asks for them, then 403 naming the rule,
    # and nothing about the case is said
    refused = get(STRANGER, f"/notifications?case_id={case_id}")
    assert refused.status_code == 403
    assert refused.json()["extra"] == {"rule": COVERED_NOW}
    assert LEADER not in refused.text
    assert get(STRANGER, f"/notifications/{notification.id}").json()["extra"] == {
        "rule": COVERED_NOW
    }
    # And a refused CaseAccessed, naming who asked, what and the rule, is on the AUDIT stream
    refusals = [a for a in case_accesses(env) if a.outcome == "refused"]
    assert [(a.actor.person, a.what, a.rule, a.served_by) for a in refusals] == [
        ("rektor-9", "notifications", COVERED_NOW, "notify"),
        ("rektor-9", "notification", COVERED_NOW, "notify"),
    ]
    assert {a.case_id for a in refusals} == {case_id}

    # And the same for whoever else the rule refuses: administrators read no case data, a
    # guardian the register does not name reads nothing, an auditor must state a purpose
    assert get(ADMINISTRATOR, f"/notifications?case_id={case_id}").json()["extra"] == {
        "rule": ROLE_READS_NO_CASES
    }
    assert get(NOT_A_GUARDIAN, f"/notifications?case_id={case_id}").json()["extra"] == {
        "rule": GUARDIAN_OF_THE_CHILD
    }
    unstated = get(AUDITOR, f"/notifications?case_id={case_id}")
    assert unstated.status_code == 422
    assert "purpose" in unstated.text
    audited = get(AUDITOR, f"/notifications?case_id={case_id}&purpose=tilsyn 2026-17")
    assert audited.status_code == 200
    assert len(audited.json()) == 1
    last = case_accesses(env)[-1]
    assert (last.outcome, last.rule, last.purpose) == (
        "granted",
        AUDITOR_STATES_PURPOSE,
        "tilsyn 2026-17",
    )
    rules = [a.rule for a in case_accesses(env) if a.outcome == "refused"][2:]
    assert rules == [ROLE_READS_NO_CASES, GUARDIAN_OF_THE_CHILD, AUDITOR_STATES_PURPOSE]


def test_a_unit_covered_by_consent_sees_only_what_is_addressed_to_it_from_when_it_was_covered(
    env: dict[str, str],
    app: Notifications,
    upstreams: Upstreams,
    envelope: Envelopes,
    register: FileRegister,
    child: RegisteredChild,
    get: Any,
) -> None:
    # Given a concern (its leader told), a baton offered to a PPT worker (told), then a consent
    # that covers PPT from an hour later, and the PPT worker assigned coordinator (the
    # coordinator and the guardian told)
    case_id = raise_concern(upstreams, envelope, child)
    offered = c.BatonHandoverOffered(
        **envelope(case_id, T0 + timedelta(minutes=30)), to_person="ppt-1", to_service="ppt"
    )
    consent = c.ConsentNoted(
        **envelope(case_id, T0 + timedelta(hours=1)),
        consent_id=uuid4(),
        services=(UNIT, "ppt"),
        purposes=("cooperation",),
        valid_from=T0 + timedelta(hours=1),
        valid_until=T0 + timedelta(days=3650),
    )
    upstreams.save(
        offered,
        consent,
        c.CoordinatorAssigned(
            **envelope(case_id, T0 + timedelta(hours=2)), coordinator="ppt-1", service="ppt"
        ),
    )
    run_policies(env, app.config, register)
    told = {(v.recipient, v.reason): v for v in app.notifications_of(case_id)}
    assert set(told) == {
        (LEADER, "concern_raised"),
        ("ppt-1", "baton.offered"),
        ("ppt-1", "coordinator_assigned"),
        (GUARDIAN, "coordinator_assigned"),
    }

    # When the PPT worker asks, then they see their own notification from when PPT was
    # covered: not the others', nor their own from before the consent
    seen = get(PPT_WORKER, f"/notifications?case_id={case_id}")
    assert seen.status_code == 200, seen.text
    assert [(s["recipient"], s["reason"]) for s in seen.json()] == [
        ("ppt-1", "coordinator_assigned")
    ]
    before = get(PPT_WORKER, f"/notifications/{told['ppt-1', 'baton.offered'].id}")
    assert before.json()["extra"] == {"rule": SHOWN_WITH_ITS_CASE}
    refused = get(PPT_WORKER, f"/notifications/{told[GUARDIAN, 'coordinator_assigned'].id}")
    assert refused.status_code == 403
    assert refused.json()["extra"] == {"rule": SHOWN_WITH_ITS_CASE}
    # And a colleague at PPT sees none: none is addressed to them or to PPT
    assert get(PPT_COLLEAGUE, f"/notifications?case_id={case_id}").json() == []
    # And each read, granted on the consent, is recorded
    granted = [a for a in case_accesses(env) if a.actor.person.startswith("ppt-")]
    assert [(a.outcome, a.basis) for a in granted] == [
        ("granted", f"consent {consent.consent_id}")
    ] * 4


def test_a_notification_of_no_case_is_for_its_recipient_only(
    env: dict[str, str], app: Notifications, get: Any
) -> None:
    # Given a notification to the leader about no single case
    notification_id = uuid4()
    request = Request(
        notification_id=notification_id,
        case_id=None,
        recipient=LEADER,
        channel=n.Channel.EMAIL,
        reason="concern_raised",
        trigger=uuid4(),
        reference="STF-00000000",
        link="https://stafett.example",
    )
    context = DeliveryContext(
        actor=SYSTEM, now=T0, correlation_id="req-1", rules=app.config.delivery
    )
    app.commands.handle(notification_id, request, context)
    # When its recipient asks, then they see it; anyone else is refused, naming the rule
    assert get(LEADER_ACTOR, f"/notifications/{notification_id}").json()["recipient"] == LEADER
    refused = get(COLLEAGUE, f"/notifications/{notification_id}")
    assert refused.status_code == 403
    assert refused.json()["extra"] == {"rule": FOR_ITS_RECIPIENT}
    # And no case was read, so none is recorded as read
    assert case_accesses(env) == []


def test_the_openapi_document_names_both_routes_and_the_purpose() -> None:
    document = json.loads(openapi(notify_app()))
    assert set(document["paths"]) >= {"/notifications", "/notifications/{notification_id}"}
    parameters = document["paths"]["/notifications"]["get"]["parameters"]
    assert {p["name"] for p in parameters} >= {"case_id", "purpose"}


@pytest.mark.parametrize("purpose", ["x" * 501, "tilsyn%00", "tilsyn%0A2026"])
def test_a_purpose_beyond_its_limits_is_422_naming_it_and_nothing_is_read(
    env: dict[str, str],
    upstreams: Upstreams,
    envelope: Envelopes,
    child: RegisteredChild,
    get: Any,
    purpose: str,
) -> None:
    # Given a case; when an auditor states a purpose too long or holding a control character
    case_id = raise_concern(upstreams, envelope, child)
    answer = get(AUDITOR, f"/notifications?case_id={case_id}&purpose={purpose}")
    # Then it is refused naming the parameter, before the case is read
    assert answer.status_code == 422
    assert answer.json()["extra"][0]["key"] == "purpose"
    assert case_accesses(env) == []


def test_the_openapi_document_shows_the_purpose_s_limits() -> None:
    parameters = json.loads(openapi(notify_app()))["paths"]["/notifications"]["get"]["parameters"]
    (purpose,) = (p for p in parameters if p["name"] == "purpose")
    assert purpose["schema"]["maxLength"] == 500
    assert "pattern" in purpose["schema"]
