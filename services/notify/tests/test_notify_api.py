"""The notify API over HTTP, against a real nats-server: a case's notifications and their status,
each seen only by its recipient and by those who oversee."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import pytest
from litestar.testing import TestClient

from stafett_contracts import case as c
from stafett_contracts.identity import Actor, Role
from stafett_notify.api import create_app
from stafett_notify.application import Notifications
from stafett_notify.main import openapi
from stafett_notify.testing import (
    LEADER,
    T0,
    UNIT,
    Clock,
    Envelopes,
    Upstreams,
    make_config,
    notifications,
    run_policies,
)
from stafett_runtime.auth import DevelopmentKey, TokenVerifier
from stafett_runtime.natsserver import free_port

LEADER_ACTOR = Actor(person=LEADER, role=Role.UNIT_LEADER, service=UNIT)
OTHER = Actor(person="laerer-9", role=Role.EMPLOYEE, service=UNIT)
OTHER_LEADER = Actor(person="rektor-9", role=Role.UNIT_LEADER, service="skole-berg")


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
def client(app: Notifications, key: DevelopmentKey) -> Iterator[TestClient[Any]]:
    with TestClient(create_app(app, TokenVerifier(key.public_key))) as test_client:
        yield test_client


def test_a_failed_notification_shows_as_failed_to_its_recipient_and_to_no_one_else(
    env: dict[str, str],
    app: Notifications,
    upstreams: Upstreams,
    envelope: Envelopes,
    client: TestClient[Any],
    key: DevelopmentKey,
) -> None:
    # Given a concern whose unit leader cannot be reached, after every attempt
    case_id = uuid4()
    upstreams.save(
        c.ConcernRaised(**envelope(case_id, T0), child_id=uuid4(), unit=UNIT, concern="Uro")
    )
    run_policies(env, app.config)
    clock = Clock(T0)
    for minutes in (0, 1, 3):
        clock.now = T0.replace(minute=minutes)
        app.deliver(clock.now)

    def get(actor: Actor | None, path: str) -> Any:
        headers = {"Authorization": f"Bearer {key.mint(actor)}"} if actor else {}
        return client.get(path, headers=headers)

    # When the leader asks for the case's notifications, then it sees the failure and why
    answer = get(LEADER_ACTOR, f"/notifications?case_id={case_id}")
    assert answer.status_code == 200, answer.text
    (notification,) = answer.json()
    assert notification["status"] == "failed"
    assert notification["attempts"] == 3
    assert notification["recipient"] == LEADER
    assert notification["reason"] == "concern_raised"
    assert "smtp" in notification["error"]
    one = get(LEADER_ACTOR, f"/notifications/{notification['id']}")
    assert one.json() == notification

    # And someone else in the unit, or the leader of another unit, sees none of it
    assert get(OTHER, f"/notifications?case_id={case_id}").json() == []
    assert get(OTHER_LEADER, f"/notifications?case_id={case_id}").json() == []
    assert get(OTHER, f"/notifications/{notification['id']}").status_code == 403
    assert get(None, f"/notifications/{notification['id']}").status_code == 401
    assert get(LEADER_ACTOR, f"/notifications/{uuid4()}").status_code == 404
    missing = get(LEADER_ACTOR, "/notifications")
    assert missing.status_code == 422
    assert "case_id" in missing.text


def test_the_openapi_document_names_both_routes() -> None:
    import json

    document = json.loads(openapi())
    assert set(document["paths"]) >= {"/notifications", "/notifications/{notification_id}"}
