"""The query API over HTTP against a real nats-server: who sees what, and every read recorded.

Events are published to the streams as the case, consent, meeting and notify services would;
the projection follows them as it does in production.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import nats
import pytest
from litestar.testing import TestClient

from stafett_contracts import case as c
from stafett_contracts import consent as k
from stafett_contracts import meeting as m
from stafett_contracts.envelope import Event
from stafett_contracts.identity import Actor, Role
from stafett_contracts.personal import PersonalData
from stafett_projection.api import Runtime, create_app, min_group
from stafett_projection.generate import ensure_streams, publish
from stafett_projection.projection import Projection
from stafett_projection.store import Database
from stafett_runtime.auth import DevelopmentKey, TokenVerifier
from stafett_runtime.keystore import ChildKeys
from stafett_runtime.settings import Settings
from stafett_runtime.testing import NatsTestServer

UNIT = "barnehage-solsikke"
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service=UNIT)
LEADER = Actor(person="styrer-1", role=Role.UNIT_LEADER, service=UNIT)
PPT = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")
BUP = Actor(person="bup-1", role=Role.EMPLOYEE, service="bup")
CHILD_WELFARE = Actor(person="bv-1", role=Role.EMPLOYEE, service="barnevern")
MOTHER = Actor(person="mor-1", role=Role.GUARDIAN)
STRANGER = Actor(person="forelder-x", role=Role.GUARDIAN)
AUDITOR = Actor(person="tilsyn-1", role=Role.AUDITOR)
NOW = datetime.now(UTC)


class Api:
    def __init__(self, client: TestClient[Any], key: DevelopmentKey, url: str) -> None:
        self.client, self.key, self.url = client, key, url

    def get(self, path: str, actor: Actor, **params: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key.mint(actor)}"}
        return self.client.get(path, headers=headers, params=params)

    def publish(self, *events: Event) -> None:
        async def send() -> dict[str, int]:
            nc = await nats.connect(self.url)
            try:
                await publish(nc, list(events))
                js = nc.jetstream()
                return {
                    s: (await js.stream_info(s)).state.last_seq
                    for s in ("CASE", "CONSENT", "MEETING", "NOTIFY")
                }
            finally:
                await nc.close()

        last = asyncio.run(send())
        deadline = time.monotonic() + 20
        while True:  # until the projection has applied everything published
            lag = self.get("/lag", AUDITOR).json()
            if all(lag[s]["position"] >= seq for s, seq in last.items()):
                return
            assert time.monotonic() < deadline, f"the projection did not catch up: {lag}"
            time.sleep(0.02)

    def access_log(self, case_id: UUID) -> list[dict[str, Any]]:
        """The case's access log as the guardian reads it, without the guardian's own readings."""
        deadline = time.monotonic() + 20
        while True:  # the log is itself a read model: wait until it shows this very read
            answer = self.get(f"/cases/{case_id}/access-log", MOTHER)
            assert answer.status_code == 200, answer.text
            log: list[dict[str, Any]] = answer.json()
            if (log and log[-1]["what"] == "access-log") or time.monotonic() > deadline:
                return [e for e in log if e["what"] != "access-log"]
            time.sleep(0.05)


@pytest.fixture
def api(nats_server: NatsTestServer, tmp_path: Path, database: Database) -> Iterator[Api]:
    """The API over SQLite, and again over PostgreSQL (the `database` fixture's two kinds)."""
    key = DevelopmentKey.load_or_create(tmp_path / "key.pem")

    async def streams() -> None:
        nc = await nats.connect(nats_server.url)
        await ensure_streams(nc)
        await nc.close()

    asyncio.run(streams())
    settings = Settings(service="projection", nats_url=nats_server.url)
    app = create_app(
        Projection(database), TokenVerifier(key.public_key), Runtime(settings, environ={})
    )
    with TestClient(app) as client:
        yield Api(client, key, nats_server.url)


class Story:
    """A case told in events, each at a moment relative to now."""

    def __init__(self) -> None:
        self.case_id, self.child_id, self.consent_id = uuid4(), uuid4(), uuid4()
        self.versions: dict[UUID, int] = {}

    def env(self, aggregate: UUID, actor: Actor, days_ago: float) -> dict[str, Any]:
        self.versions[aggregate] = self.versions.get(aggregate, 0) + 1
        return {
            "event_id": uuid4(),
            "aggregate_id": aggregate,
            "aggregate_version": self.versions[aggregate],
            "occurred_at": NOW - timedelta(days=days_ago),
            "actor": actor,
            "correlation_id": "test",
        }

    def raised(self, days_ago: float, unit: str = UNIT, **extra: Any) -> Event:
        return c.ConcernRaised(
            **self.env(self.case_id, TEACHER, days_ago),
            child_id=self.child_id,
            unit=unit,
            concern="Trekker seg unna i lek.",
            **extra,
        )

    def note(self, days_ago: float, text: str) -> Event:
        return c.BrightSpotNoted(**self.env(self.case_id, TEACHER, days_ago), note=text)

    def consent(self, days_ago: float, services: tuple[str, ...]) -> Event:
        start = NOW - timedelta(days=days_ago)
        return k.ConsentGiven(
            **self.env(self.consent_id, MOTHER, days_ago),
            case_id=self.case_id,
            child_id=self.child_id,
            given_by=k.Party(kind="guardian", person=MOTHER.person),
            services=services,
            purposes=(k.Purpose.COOPERATION,),
            valid_from=start,
            valid_until=start + timedelta(days=365),
            evidence=k.Evidence(form="oral", recorded_by=TEACHER.person),
        )

    def withdrawn(self, days_ago: float, services: tuple[str, ...]) -> Event:
        return k.ConsentWithdrawn(**self.env(self.consent_id, MOTHER, days_ago), services=services)

    def escalated(self, days_ago: float, to_level: int) -> Event:
        return c.Escalated(
            **self.env(self.case_id, TEACHER, days_ago),
            from_level=to_level - 1,
            to_level=to_level,
            reason="Mer hjelp trengs.",
        )

    def measure(self, days_ago: float) -> Event:
        return c.MeasurePlanned(
            **self.env(self.case_id, TEACHER, days_ago),
            measure_id=uuid4(),
            description="Fast voksen i overganger",
            responsible=TEACHER.person,
            service=UNIT,
            evaluation_date=date.today() + timedelta(days=3),
        )

    def closed(self, days_ago: float) -> Event:
        return c.CaseClosed(**self.env(self.case_id, TEACHER, days_ago), at_level=1, reason="Løst.")


def types(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [e["type"] for e in answer.json()["entries"]]


def test_a_guardian_who_consented_sees_the_whole_case_and_another_guardian_sees_nothing(
    api: Api,
) -> None:
    story = Story()
    api.publish(story.raised(30), story.note(20, "Lo i dag."), story.consent(10, (UNIT, "ppt")))
    log = api.get(f"/cases/{story.case_id}/relay-log", MOTHER)
    assert types(log) == ["ConcernRaised", "BrightSpotNoted", "ConsentGiven"]
    assert log.json()["basis"] == "guardian"
    assert api.get(f"/cases/{story.case_id}/relay-log", STRANGER).status_code == 403


def test_a_consented_service_sees_only_entries_from_the_period_its_consent_covered(
    api: Api,
) -> None:
    story = Story()
    api.publish(
        story.raised(30),
        story.note(20, "Før samtykke."),
        story.consent(10, (UNIT, "ppt")),
        story.note(5, "Etter samtykke."),
    )
    log = api.get(f"/cases/{story.case_id}/relay-log", PPT)
    assert types(log) == ["ConsentGiven", "BrightSpotNoted"]
    assert log.json()["entries"][1]["event"]["note"] == "Etter samtykke."
    assert log.json()["basis"] == f"consent {story.consent_id}"
    # The unit where the worry arose sees its whole record.
    assert len(types(api.get(f"/cases/{story.case_id}/relay-log", TEACHER))) == 4


def test_consent_withdrawn_makes_the_next_query_by_that_service_403_and_the_refusal_is_logged(
    api: Api,
) -> None:
    story = Story()
    api.publish(story.raised(30), story.consent(10, (UNIT, "ppt")))
    assert api.get(f"/cases/{story.case_id}/relay-log", PPT).status_code == 200

    api.publish(story.withdrawn(0, ("ppt",)))

    refused = api.get(f"/cases/{story.case_id}/relay-log", PPT)
    assert refused.status_code == 403, refused.text
    log = api.access_log(story.case_id)
    ppt_reads = [(e["outcome"], e["refusal"]) for e in log if e["person"] == PPT.person]
    assert ppt_reads == [
        ("granted", None),
        ("refused", "no consent or legal basis covers the service ppt now"),
    ]


def test_a_service_without_consent_is_refused_and_the_attempt_is_logged(api: Api) -> None:
    story = Story()
    api.publish(story.raised(30), story.consent(10, (UNIT,)))
    assert api.get(f"/cases/{story.case_id}/handover-packet", BUP).status_code == 403
    assert [e["outcome"] for e in api.access_log(story.case_id)] == ["refused"]


def test_a_legal_basis_lets_child_welfare_in_without_consent(api: Api) -> None:
    story = Story()
    basis = k.LegalBasisRecorded(
        **story.env(uuid4(), TEACHER, 2),
        case_id=story.case_id,
        child_id=story.child_id,
        service="barnevern",
        legal_basis="barnevernsloven § 13-2",
        justification="Opplysningsplikt.",
        shared_by=TEACHER.person,
    )
    api.publish(story.raised(30), basis, story.note(1, "Etter melding."))
    log = api.get(f"/cases/{story.case_id}/relay-log", CHILD_WELFARE)
    assert types(log) == ["LegalBasisRecorded", "BrightSpotNoted"]
    assert log.json()["basis"] == "legal basis: barnevernsloven § 13-2"


def test_an_auditor_must_state_a_purpose_which_is_recorded(api: Api) -> None:
    story = Story()
    api.publish(story.raised(30), story.consent(10, (UNIT,)))
    without = api.get(f"/cases/{story.case_id}/relay-log", AUDITOR)
    assert without.status_code == 422
    assert without.json()["extra"][0]["key"] == "purpose"
    granted = api.get(f"/cases/{story.case_id}/relay-log", AUDITOR, purpose="Tilsyn 2026-4")
    assert types(granted) == ["ConcernRaised", "ConsentGiven"]
    log = [(e["outcome"], e["purpose"]) for e in api.access_log(story.case_id)]
    assert log == [("refused", None), ("granted", "Tilsyn 2026-4")]


def test_time_travel_shows_the_case_as_it_stood_at_a_moment(api: Api) -> None:
    story = Story()
    api.publish(story.raised(30), story.escalated(20, 1), story.escalated(10, 2))
    path = f"/cases/{story.case_id}/relay-log"
    then = api.get(path, TEACHER, as_of=(NOW - timedelta(days=15)).isoformat())
    assert types(then) == ["ConcernRaised", "Escalated"]
    assert then.json()["state"]["level"] == 1
    assert api.get(path, TEACHER).json()["state"]["level"] == 2


def test_the_child_s_personal_data_is_opened_for_those_who_may_read_the_case(
    api: Api, nats_server: NatsTestServer
) -> None:
    story = Story()

    async def seal() -> Any:
        nc = await nats.connect(nats_server.url)
        keys = await ChildKeys.bind(nc, environ={})
        sealed = await keys.seal(PersonalData(name="Kari Nordmann"), str(story.child_id))
        await nc.close()
        return sealed

    api.publish(story.raised(3, personal_data=asyncio.run(seal())))
    log = api.get(f"/cases/{story.case_id}/relay-log", TEACHER).json()
    assert log["child"]["name"] == "Kari Nordmann"
    assert "Kari" not in str(log["entries"])  # the stored event holds it only sealed


def test_export_is_for_auditors_and_the_archive_only_once_the_case_is_closed(api: Api) -> None:
    story = Story()
    api.publish(story.raised(30), story.consent(10, (UNIT,)))
    path = f"/cases/{story.case_id}"
    assert api.get(f"{path}/export.jsonl", MOTHER).status_code == 403
    export = api.get(f"{path}/export.jsonl", AUDITOR, purpose="Klagesak")
    lines = export.text.splitlines()
    assert [line.split('"type":"')[1].split('"')[0] for line in lines] == [
        "ConcernRaised",
        "ConsentGiven",
    ]
    assert api.get(f"{path}/archive", MOTHER).status_code == 409
    api.publish(story.closed(1))
    archive = api.get(f"{path}/archive", MOTHER)
    assert archive.status_code == 200
    assert "| ConcernRaised |" in archive.text
    assert "Status: closed" in archive.text


def test_consent_status_handover_packet_worklist_overview_and_figures(api: Api) -> None:
    story = Story()
    meeting_id = uuid4()
    api.publish(
        story.raised(30),
        story.consent(10, (UNIT, "ppt")),
        c.BatonHolderAppointed(
            **story.env(story.case_id, LEADER, 9), holder=TEACHER.person, service=UNIT
        ),
        story.escalated(8, 1),
        story.measure(7),
        m.ActionItemAssigned(
            **story.env(meeting_id, TEACHER, 6),
            case_id=story.case_id,
            item_id=uuid4(),
            description="Sende referat",
            owner=PPT.person,
            owner_service="ppt",
            due_on=date.today(),
        ),
        story.withdrawn(1, ("ppt",)),
    )
    path = f"/cases/{story.case_id}"
    status = api.get(f"{path}/consent-status", MOTHER).json()
    assert status["services_covered_now"] == [UNIT]
    (ppt,) = [s for s in status["consents"][0]["services"] if s["service"] == "ppt"]
    assert ppt["covered_now"] is False

    packet = api.get(f"{path}/handover-packet", TEACHER).json()
    assert [m["description"] for m in packet["measures_tried"]] == ["Fast voksen i overganger"]
    assert packet["next_steps"]["open_action_items"][0]["description"] == "Sende referat"

    kinds = {w["kind"] for w in api.get("/worklist", TEACHER).json()}
    assert kinds == {"baton_holder", "measure_evaluation"}

    overview = api.get(f"/units/{UNIT}/overview", LEADER).json()
    assert overview["open_cases_per_level"]["1"] >= 1
    assert any(d["case_id"] == str(story.case_id) for d in overview["evaluations_due"])
    assert api.get(f"/units/{UNIT}/overview", TEACHER).status_code == 403
    assert api.get(f"/units/{UNIT}/overview", AUDITOR).status_code == 422

    figures = api.get("/figures", LEADER).json()
    assert figures["min_group"] == 5
    assert figures["escalations"] is None  # one escalation: too few to show
    assert figures["consent_withdrawals"] is None
    assert figures["system_measures"] == 0  # none is no one
    assert "Kari" not in str(figures)
    assert TEACHER.person not in str(figures)
    assert api.get("/figures", TEACHER).status_code == 403


def test_figures_of_groups_smaller_than_five_are_not_given(api: Api) -> None:
    # Given five concerns in one kindergarten this month, and one in a small school
    stories = [Story() for _ in range(6)]
    api.publish(
        *(story.raised(0) for story in stories[:5]),
        stories[5].raised(0, unit="skole-lille"),
    )
    # When a unit leader looks at the management figures
    figures = api.get("/figures", LEADER).json()
    # Then the kindergarten's month is counted, the school's single concern is not shown
    month = NOW.strftime("%Y-%m")
    assert figures["concerns_per_unit_and_month"][UNIT][month] == 5
    assert figures["concerns_per_unit_and_month"]["skole-lille"][month] is None
    assert figures["closed_cases"] == 0


@pytest.mark.parametrize("setting", ["0", "-3", "fem", ""])
def test_a_minimum_group_size_that_is_not_a_whole_number_above_zero_is_refused(
    setting: str,
) -> None:
    with pytest.raises(ValueError, match="STAFETT_PROJECTION_FIGURES_MIN_GROUP"):
        min_group({"STAFETT_PROJECTION_FIGURES_MIN_GROUP": setting})


def test_a_service_naming_a_consent_purpose_is_covered_only_by_consents_given_for_it(
    api: Api,
) -> None:
    story = Story()
    api.publish(story.raised(30), story.consent(10, (UNIT, "ppt")))  # for cooperation only
    path = f"/cases/{story.case_id}/relay-log"
    assert api.get(path, PPT, purpose="cooperation").status_code == 200
    refused = api.get(path, PPT, purpose="tvist")
    assert refused.status_code == 403
    assert "for the purpose tvist" in refused.json()["detail"]
    log = [(e["purpose"], e["outcome"]) for e in api.access_log(story.case_id)]
    assert log == [("cooperation", "granted"), ("tvist", "refused")]
