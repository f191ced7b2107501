"""The query API over HTTP against a real nats-server: who sees what, and every read recorded.

Events are published to the streams as the case, consent, meeting and notify services would
(the case service notes each consent on the case's own record, as its consent policy does); the
projection follows them as it does in production. Who the child's guardians are comes from a
register file of the test's own, the units from the test municipality's directory. Each test
names the access rule it checks (`stafett_contracts.access`).
"""

from __future__ import annotations

import asyncio
import csv
import io
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import httpx
import msgspec
import nats
import pytest
from litestar.testing import TestClient

from bench.history import ensure_streams, publish
from stafett_contracts import access as rule
from stafett_contracts import case as c
from stafett_contracts import consent as k
from stafett_contracts import meeting as m
from stafett_contracts import notify as n
from stafett_contracts.envelope import Event
from stafett_contracts.identity import Actor, Role
from stafett_contracts.people import RegisteredChild
from stafett_contracts.personal import PersonalData, SealedPersonalData, SealedText
from stafett_projection.api import create_app, min_group
from stafett_projection.projection import Projection
from stafett_projection.store import Database
from stafett_runtime.auth import DevelopmentKey
from stafett_runtime.keystore import ChildKeys
from stafett_runtime.reads import ENDPOINT_FOR_ROLES
from stafett_runtime.register import FileRegister
from stafett_runtime.testing import NatsTestServer, a_child, kernel_for_tests

UNIT = "barnehage-solsikke"  # led by styrer-1 in the test municipality
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service=UNIT)
LEADER = Actor(person="styrer-1", role=Role.UNIT_LEADER, service=UNIT)
PPT = Actor(person="ppt-1", role=Role.EMPLOYEE, service="ppt")
BUP = Actor(person="bup-1", role=Role.EMPLOYEE, service="bup")
CHILD_WELFARE = Actor(person="bv-1", role=Role.EMPLOYEE, service="barnevern")
MOTHER = Actor(person="mor-1", role=Role.GUARDIAN)
OTHER_PARENT = Actor(person="forelder-x", role=Role.GUARDIAN)  # a guardian of another child
AUDITOR = Actor(person="tilsyn-1", role=Role.AUDITOR)
CONSENT_POLICY = Actor(person="consent-policy", role=Role.SYSTEM, service="case")
SCHOOL_LEADER = Actor(person="rektor-1", role=Role.UNIT_LEADER, service="skole-lia")
REPORT_BASIS = "barnevernsloven § 13-2"
NOW = datetime.now(UTC)
OSLO = ZoneInfo("Europe/Oslo")  # the municipality's time zone: the figures' months
DASH = "\N{EN DASH}"  # between a level's number and its name


class Api:
    def __init__(
        self, client: TestClient[Any], key: DevelopmentKey, url: str, register: FileRegister
    ) -> None:
        self.client, self.key, self.url, self.register = client, key, url, register

    def get(
        self, path: str, actor: Actor, accept: str | None = None, **params: Any
    ) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.key.mint(actor)}"}
        if accept is not None:
            headers["Accept"] = accept
        return self.client.get(path, headers=headers, params=params)

    def publish(self, *events: Event) -> None:
        async def send() -> dict[str, int]:
            nc = await nats.connect(self.url)
            try:
                # One at a time, as they happen: each takes its place after the one before.
                await publish(nc, list(events), in_flight=1)
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

    def seal(self, data: PersonalData, child: RegisteredChild) -> SealedPersonalData:
        """The child's personal data sealed under their key, as the case service seals it."""

        async def sealing() -> SealedPersonalData:
            nc = await nats.connect(self.url)
            try:
                keys = await ChildKeys.bind(nc, environ={})
                return await keys.seal(data, str(child.child_id))
            finally:
                await nc.close()

        return asyncio.run(sealing())

    def seal_text(self, text: str, child: RegisteredChild) -> SealedText:
        """Free text about the child sealed under their key, as the services seal it."""

        async def sealing() -> SealedText:
            nc = await nats.connect(self.url)
            try:
                keys = await ChildKeys.bind(nc, environ={})
                return await keys.seal_text(text, str(child.child_id))
            finally:
                await nc.close()

        return asyncio.run(sealing())

    def erase(self, child: RegisteredChild) -> None:
        """The child's key deleted, as an administrator's erasure deletes it."""

        async def erasing() -> None:
            nc = await nats.connect(self.url)
            try:
                keys = await ChildKeys.bind(nc, environ={})
                await keys.erase(str(child.child_id), "erasure requested")
            finally:
                await nc.close()

        asyncio.run(erasing())

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
    register = FileRegister(tmp_path / "register.json")

    async def streams() -> None:
        nc = await nats.connect(nats_server.url)
        await ensure_streams(nc)
        await nc.close()

    asyncio.run(streams())
    kernel = kernel_for_tests(
        "projection", nats_server.url, key=key, register=register, child_keys="open"
    )
    with TestClient(create_app(Projection(database), kernel)) as client:
        yield Api(client, key, nats_server.url, register)


class Story:
    """A case about a registered child (the mother's), told in events at moments before now."""

    def __init__(self, api: Api, child: RegisteredChild | None = None) -> None:
        self.child = child or a_child(MOTHER.person)
        api.register.add(self.child)
        self.case_id, self.consent_id = uuid4(), uuid4()
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
            child_id=self.child.child_id,
            unit=unit,
            **{"concern": "Trekker seg unna i lek.", **extra},
        )

    def note(self, days_ago: float, text: str) -> Event:
        return c.BrightSpotNoted(**self.env(self.case_id, TEACHER, days_ago), note=text)

    def consent(
        self,
        days_ago: float,
        services: tuple[str, ...],
        purposes: tuple[k.Purpose, ...] = (k.Purpose.COOPERATION,),
    ) -> tuple[Event, Event]:
        """The mother's consent, and the case service noting it on the case a second later."""
        start = NOW - timedelta(days=days_ago)
        given = k.ConsentGiven(
            **self.env(self.consent_id, MOTHER, days_ago),
            case_id=self.case_id,
            child_id=self.child.child_id,
            given_by=k.Party(kind="guardian", person=MOTHER.person),
            services=services,
            purposes=purposes,
            valid_from=start,
            valid_until=start + timedelta(days=365),
            evidence=k.Evidence(form="oral", recorded_by=TEACHER.person),
        )
        noted = c.ConsentNoted(
            **self.env(self.case_id, CONSENT_POLICY, days_ago - 1 / 86400),
            consent_id=self.consent_id,
            services=services,
            purposes=tuple(str(p) for p in purposes),
            valid_from=start,
            valid_until=start + timedelta(days=365),
        )
        return given, noted

    def withdrawn(self, days_ago: float, services: tuple[str, ...]) -> tuple[Event, Event]:
        withdrawn = k.ConsentWithdrawn(
            **self.env(self.consent_id, MOTHER, days_ago), services=services
        )
        lapsed = c.ConsentLapsed(
            **self.env(self.case_id, CONSENT_POLICY, days_ago),
            consent_id=self.consent_id,
            services=services,
            reason="withdrawn",
        )
        return withdrawn, lapsed

    def legal_basis(self, days_ago: float, service: str, provision: str) -> tuple[Event, Event]:
        """A legal basis recorded with the consent service, and noted on the case."""
        recorded = k.LegalBasisRecorded(
            **self.env(uuid4(), TEACHER, days_ago),
            case_id=self.case_id,
            child_id=self.child.child_id,
            service=service,
            legal_basis=provision,
            justification="Opplysningsplikt.",
            shared_by=TEACHER.person,
        )
        noted = c.LegalBasisNoted(
            **self.env(self.case_id, CONSENT_POLICY, days_ago - 1 / 86400),
            service=service,
            legal_basis=provision,
        )
        return recorded, noted

    def report(self, days_ago: float, to: str = "barnevern") -> Event:
        return c.ChildWelfareReportFiled(
            **self.env(self.case_id, TEACHER, days_ago),
            reported_to=to,
            legal_basis=REPORT_BASIS,
            grounds="Blåmerker og utsagn om vold hjemme.",
        )

    def escalated(self, days_ago: float, to_level: int) -> Event:
        return c.Escalated(
            **self.env(self.case_id, TEACHER, days_ago),
            from_level=to_level - 1,
            to_level=to_level,
            reason="Mer hjelp trengs.",
        )

    def measure(self, days_ago: float, description: str = "Fast voksen i overganger") -> Event:
        return c.MeasurePlanned(
            **self.env(self.case_id, TEACHER, days_ago),
            measure_id=uuid4(),
            description=description,
            responsible=TEACHER.person,
            service=UNIT,
            evaluation_date=date.today() + timedelta(days=3),
        )

    def measure_ended(self, days_ago: float, planned: Event) -> Event:
        assert isinstance(planned, c.MeasurePlanned)
        return c.MeasureEnded(
            **self.env(self.case_id, TEACHER, days_ago),
            measure_id=planned.measure_id,
            reason="Ikke lenger nødvendig.",
        )

    def closed(self, days_ago: float, at_level: int = 1) -> Event:
        return c.CaseClosed(
            **self.env(self.case_id, TEACHER, days_ago), at_level=at_level, reason="Løst."
        )

    def handed_over(self, days_ago: float, to: Actor) -> Event:
        """The baton passes from the teacher to `to`, who accepted it."""
        assert to.service is not None
        return c.BatonHandedOver(
            **self.env(self.case_id, to, days_ago),
            from_person=TEACHER.person,
            from_service=UNIT,
            to_person=to.person,
            to_service=to.service,
        )


def types(answer: httpx.Response) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [e["type"] for e in answer.json()["entries"]]


def refused_by(answer: httpx.Response) -> str:
    assert answer.status_code == 403, answer.text
    named: str = answer.json()["extra"]["rule"]
    return named


# guardian-of-the-child


def test_a_guardian_of_the_child_reads_the_whole_relay_log_at_level_0_without_any_consent(
    api: Api,
) -> None:
    # Given a concern at level 0 about the mother's child, with no consent given
    story = Story(api)
    api.publish(story.raised(30), story.note(20, "Lo i dag."))
    # When the mother reads the relay log
    log = api.get(f"/cases/{story.case_id}/relay-log", MOTHER)
    # Then she sees every entry, the case's level, and on what ground she reads
    assert types(log) == ["ConcernRaised", "BrightSpotNoted"]
    assert log.json()["basis"] == "guardian"
    assert log.json()["state"]["level"] == 0


def test_a_guardian_of_another_child_is_refused_and_the_refusal_is_in_the_access_log(
    api: Api,
) -> None:
    # Given the mother's child's case, and a parent the register names for another child only
    story = Story(api)
    api.register.add(a_child(OTHER_PARENT.person))
    api.publish(story.raised(30))
    # When that parent asks for the relay log
    refused = api.get(f"/cases/{story.case_id}/relay-log", OTHER_PARENT)
    # Then they are refused by the guardian rule, and the mother sees the attempt in the log
    assert refused_by(refused) == rule.GUARDIAN_OF_THE_CHILD
    (attempt,) = api.access_log(story.case_id)
    assert (attempt["person"], attempt["outcome"], attempt["rule"], attempt["served_by"]) == (
        OTHER_PARENT.person,
        "refused",
        rule.GUARDIAN_OF_THE_CHILD,
        "projection",
    )


# covered-now: consents


def test_a_consented_service_sees_only_entries_from_the_period_its_consent_covered(
    api: Api,
) -> None:
    story = Story(api)
    api.publish(
        story.raised(30),
        story.note(20, "Før samtykke."),
        *story.consent(10, (UNIT, "ppt")),
        story.note(5, "Etter samtykke."),
    )
    log = api.get(f"/cases/{story.case_id}/relay-log", PPT)
    assert types(log) == ["ConsentGiven", "ConsentNoted", "BrightSpotNoted"]
    assert log.json()["entries"][2]["event"]["note"] == "Etter samtykke."
    assert log.json()["basis"] == f"consent {story.consent_id}"
    # The unit where the worry arose sees its whole record (own-unit).
    assert len(types(api.get(f"/cases/{story.case_id}/relay-log", TEACHER))) == 5


def test_a_covered_service_s_state_lists_no_measure_from_before_its_consent_and_no_ended_one(
    api: Api,
) -> None:
    # Given a measure planned before PPT's consent, and two after it, one of which has ended
    story = Story(api)
    before = story.measure(20, "Samtale med helsesykepleier")
    ended = story.measure(6, "Ekstra tid i garderoben")
    api.publish(
        story.raised(30),
        before,
        *story.consent(10, (UNIT, "ppt")),
        story.measure(8, "Fast voksen i overganger"),
        ended,
        story.measure_ended(4, ended),
    )
    # When PPT reads the relay log
    state = api.get(f"/cases/{story.case_id}/relay-log", PPT).json()["state"]
    # Then the state lists only the open measure it may see, and no level it did not see set
    assert [m["description"] for m in state["open_measures"]] == ["Fast voksen i overganger"]
    assert state["level"] is None
    # while the unit's own state lists both open measures
    own = api.get(f"/cases/{story.case_id}/relay-log", TEACHER).json()["state"]
    assert [m["description"] for m in own["open_measures"]] == [
        "Samtale med helsesykepleier",
        "Fast voksen i overganger",
    ]


def test_consent_withdrawn_makes_the_next_query_by_that_service_403_and_the_refusal_is_logged(
    api: Api,
) -> None:
    story = Story(api)
    api.publish(story.raised(30), *story.consent(10, (UNIT, "ppt")))
    assert api.get(f"/cases/{story.case_id}/relay-log", PPT).status_code == 200

    api.publish(*story.withdrawn(0, ("ppt",)))

    assert refused_by(api.get(f"/cases/{story.case_id}/relay-log", PPT)) == rule.COVERED_NOW
    log = api.access_log(story.case_id)
    ppt_reads = [(e["outcome"], e["refusal"]) for e in log if e["person"] == PPT.person]
    assert ppt_reads == [
        ("granted", None),
        ("refused", "no consent, legal basis or report covers ppt now"),
    ]


def test_a_service_without_consent_is_refused_and_the_attempt_is_logged(api: Api) -> None:
    story = Story(api)
    api.publish(story.raised(30), *story.consent(10, (UNIT,)))
    assert refused_by(api.get(f"/cases/{story.case_id}/handover-packet", BUP)) == rule.COVERED_NOW
    assert [e["outcome"] for e in api.access_log(story.case_id)] == ["refused"]


def test_a_service_naming_a_consent_purpose_is_covered_only_by_consents_given_for_it(
    api: Api,
) -> None:
    story = Story(api)
    api.publish(story.raised(30), *story.consent(10, (UNIT, "ppt")))  # for cooperation only
    path = f"/cases/{story.case_id}/relay-log"
    assert api.get(path, PPT, purpose="cooperation").status_code == 200
    refused = api.get(path, PPT, purpose="tvist")
    assert refused_by(refused) == rule.COVERED_NOW
    assert "ppt for tvist" in refused.json()["detail"]
    log = [(e["purpose"], e["outcome"]) for e in api.access_log(story.case_id)]
    assert log == [("cooperation", "granted"), ("tvist", "refused")]


def test_a_service_covered_only_for_tvist_is_shown_no_child_identity(api: Api) -> None:
    # Given a case naming the child (sealed), and a consent for PPT to discuss it in TVIST
    story = Story(api)
    sealed = api.seal(PersonalData(name="Kari Nordmann"), story.child)
    api.publish(
        story.raised(30, personal_data=sealed),
        *story.consent(10, (UNIT, "ppt"), purposes=(k.Purpose.TVIST,)),
    )
    # When PPT reads the relay log and the handover packet for the TVIST discussion
    log = api.get(f"/cases/{story.case_id}/relay-log", PPT, purpose="tvist")
    packet = api.get(f"/cases/{story.case_id}/handover-packet", PPT, purpose="tvist")
    # Then it sees the entries of its period, but not who the child is
    assert types(log) == ["ConsentGiven", "ConsentNoted"]
    assert (log.json()["child"], packet.json()["child"]) == (None, None)
    assert "Kari" not in log.text + packet.text
    # while the unit where the worry arose is shown the child's name
    own = api.get(f"/cases/{story.case_id}/relay-log", TEACHER).json()
    assert own["child"]["name"] == "Kari Nordmann"


# covered-now: legal bases and reports to child welfare


def test_child_welfare_reads_the_case_after_a_report_including_what_came_before_it(
    api: Api,
) -> None:
    # Given a case child welfare has no part in
    story = Story(api)
    api.publish(story.raised(30), story.note(20, "Før meldingen."))
    path = f"/cases/{story.case_id}/relay-log"
    assert refused_by(api.get(path, CHILD_WELFARE)) == rule.COVERED_NOW
    # When the unit files a report of concern to child welfare
    api.publish(story.report(2), story.note(1, "Etter meldingen."))
    # Then child welfare reads the whole case, what came before the report too
    log = api.get(path, CHILD_WELFARE)
    assert types(log) == [
        "ConcernRaised",
        "BrightSpotNoted",
        "ChildWelfareReportFiled",
        "BrightSpotNoted",
    ]
    assert log.json()["basis"] == f"report to child welfare: {REPORT_BASIS}"
    assert log.json()["state"]["level"] == 0


def test_a_legal_basis_lets_child_welfare_in_without_consent(api: Api) -> None:
    story = Story(api)
    api.publish(
        story.raised(30),
        *story.legal_basis(2, "barnevern", "barnevernsloven § 2-1"),
        story.note(1, "Etter vedtak."),
    )
    log = api.get(f"/cases/{story.case_id}/relay-log", CHILD_WELFARE)
    assert types(log) == [
        "ConcernRaised",
        "LegalBasisRecorded",
        "LegalBasisNoted",
        "BrightSpotNoted",
    ]
    assert log.json()["basis"] == "legal basis: barnevernsloven § 2-1"


# auditor-states-purpose


def test_an_auditor_must_state_a_purpose_which_is_recorded(api: Api) -> None:
    story = Story(api)
    api.publish(story.raised(30), *story.consent(10, (UNIT,)))
    without = api.get(f"/cases/{story.case_id}/relay-log", AUDITOR)
    assert without.status_code == 422
    assert without.json()["extra"][0]["key"] == "purpose"
    granted = api.get(f"/cases/{story.case_id}/relay-log", AUDITOR, purpose="Tilsyn 2026-4")
    assert types(granted) == ["ConcernRaised", "ConsentGiven", "ConsentNoted"]
    log = [(e["outcome"], e["purpose"], e["rule"]) for e in api.access_log(story.case_id)]
    assert log == [
        ("refused", None, rule.AUDITOR_STATES_PURPOSE),
        ("granted", "Tilsyn 2026-4", rule.AUDITOR_STATES_PURPOSE),
    ]


def test_an_auditor_s_overrides_list_holds_a_report_and_each_case_listed_is_a_recorded_read(
    api: Api,
) -> None:
    # Given a case with a report to child welfare, and another with a legal basis for PPT
    reported, decided = Story(api), Story(api)
    api.publish(
        reported.raised(30),
        reported.report(5),
        decided.raised(20),
        *decided.legal_basis(3, "ppt", "opplæringslova § 5-4"),
    )
    # When an auditor lists the overrides, stating why
    answer = api.get("/overrides", AUDITOR, purpose="Tilsyn med opplysningsplikten")
    # Then both are listed, newest first, the report with who filed it
    assert answer.status_code == 200, answer.text
    listed = [(o["case_id"], o["service"], o["basis"], o["provision"]) for o in answer.json()]
    assert listed == [
        (str(decided.case_id), "ppt", "legal_basis", "opplæringslova § 5-4"),
        (str(reported.case_id), "barnevern", "report", REPORT_BASIS),
    ]
    assert answer.json()[1]["recorded_by"]["person"] == TEACHER.person
    # and the guardian sees in the access log that the auditor read her child's case
    (read,) = api.access_log(reported.case_id)
    assert (read["person"], read["what"], read["outcome"]) == (
        AUDITOR.person,
        "overrides",
        "granted",
    )


def test_overrides_are_for_auditors_who_state_a_purpose(api: Api) -> None:
    refused = api.get("/overrides", LEADER)
    assert refused_by(refused) == ENDPOINT_FOR_ROLES
    without = api.get("/overrides", AUDITOR)
    assert without.status_code == 422
    assert without.json()["extra"][0]["key"] == "purpose"


# what is shown, and when


def test_time_travel_shows_the_case_as_it_stood_at_a_moment(api: Api) -> None:
    story = Story(api)
    api.publish(story.raised(30), story.escalated(20, 1), story.escalated(10, 2))
    path = f"/cases/{story.case_id}/relay-log"
    then = api.get(path, TEACHER, as_of=(NOW - timedelta(days=15)).isoformat())
    assert types(then) == ["ConcernRaised", "Escalated"]
    assert then.json()["state"]["level"] == 1
    assert api.get(path, TEACHER).json()["state"]["level"] == 2


@pytest.mark.parametrize(
    ("as_of", "why"),
    [
        ("2026-11-02T09:00:00", "needs a time zone"),
        ("0001-01-01T00:00:00+01:00", "outside the calendar"),
        ("yesterday", "RFC3339"),
    ],
)
def test_time_travel_needs_a_real_moment_with_its_time_zone_or_is_422_naming_as_of(
    api: Api, as_of: str, why: str
) -> None:
    # Given a case the teacher's unit reads
    story = Story(api)
    api.publish(story.raised(30))
    # When the relay log is asked for as of a moment with no time zone, or none in UTC
    answer = api.get(f"/cases/{story.case_id}/relay-log", TEACHER, as_of=as_of)
    # Then it is refused as invalid input naming the parameter and why, never a 500
    assert answer.status_code == 422, answer.text
    (named,) = answer.json()["extra"]
    assert named["key"] == "as_of"
    assert why in named["message"]


def test_a_unit_or_purpose_beyond_its_limits_is_422_naming_it(api: Api) -> None:
    hidden = api.get("/units/skole\u200b-lia/overview", LEADER)
    assert hidden.status_code == 422
    assert hidden.json()["extra"][0]["key"] == "unit"
    story = Story(api)
    api.publish(story.raised(30))
    control = api.get(f"/cases/{story.case_id}/relay-log", AUDITOR, purpose="tilsyn\x00")
    assert control.status_code == 422
    assert control.json()["extra"][0]["key"] == "purpose"


def test_the_child_s_personal_data_is_opened_for_those_who_may_read_the_case(api: Api) -> None:
    story = Story(api)
    sealed = api.seal(PersonalData(name="Kari Nordmann"), story.child)
    api.publish(story.raised(3, personal_data=sealed))
    log = api.get(f"/cases/{story.case_id}/relay-log", TEACHER).json()
    assert log["child"]["name"] == "Kari Nordmann"
    assert "Kari" not in str(log["entries"])  # the stored event holds it only sealed


def test_export_is_for_auditors(api: Api) -> None:
    story = Story(api)
    api.publish(story.raised(30), *story.consent(10, (UNIT,)))
    path = f"/cases/{story.case_id}/export.jsonl"
    assert refused_by(api.get(path, MOTHER)) == ENDPOINT_FOR_ROLES
    export = api.get(path, AUDITOR, purpose="Klagesak")
    lines = export.text.splitlines()
    assert [line.split('"type":"')[1].split('"')[0] for line in lines] == [
        "ConcernRaised",
        "ConsentGiven",
        "ConsentNoted",
    ]


def test_free_text_sealed_the_export_opens_it_for_the_auditor_and_says_erased_after_erasure(
    api: Api,
) -> None:
    # Given a concern whose text is sealed under the child's key, as the case service stores it
    story = Story(api)
    concern = api.seal_text("Blåmerker på armene.", story.child)
    api.publish(story.raised(30, concern=concern))
    path = f"/cases/{story.case_id}/export.jsonl"
    # When an auditor exports the case, then the line has the text opened, for them
    (line,) = api.get(path, AUDITOR, purpose="Klagesak").text.splitlines()
    assert msgspec.json.decode(line)["event"]["concern"] == "Blåmerker på armene."
    # And once the child is erased, the same line says erased: never the text, never an error
    api.erase(story.child)
    (line,) = api.get(path, AUDITOR, purpose="Klagesak").text.splitlines()
    assert msgspec.json.decode(line)["event"]["concern"]["erased"] is True


def test_the_archive_refuses_before_it_says_whether_the_case_is_closed(api: Api) -> None:
    # Given an open case BUP has no part in
    story = Story(api)
    api.publish(story.raised(30))
    path = f"/cases/{story.case_id}/archive"
    # When BUP asks for the archive, then it is refused, not told the case is still open
    assert refused_by(api.get(path, BUP)) == rule.COVERED_NOW
    # The mother may read it: she is told it is not closed yet, and once it is, gets the document
    assert api.get(path, MOTHER).status_code == 409
    api.publish(story.closed(1))
    archive = api.get(path, MOTHER)
    assert archive.status_code == 200
    assert "Avsluttet" in archive.text


def test_the_archive_document_tells_levels_decisions_and_measures_in_words_in_nb_and_en(
    api: Api,
) -> None:
    # Given a case that moved up to level 1, tried a measure that worked, and closed
    story = Story(api)
    sealed = api.seal(PersonalData(name="Kari Nordmann"), story.child)
    planned = story.measure(20, "Fast voksen i overganger")
    assert isinstance(planned, c.MeasurePlanned)
    api.publish(
        story.raised(30, personal_data=sealed),
        c.Escalated(
            **story.env(story.case_id, LEADER, 25),
            from_level=0,
            to_level=1,
            reason="Foreldrene ønsker tiltak i barnehagen.",
            participants=(MOTHER.person,),
        ),
        planned,
        c.MeasureEvaluated(
            **story.env(story.case_id, TEACHER, 10),
            measure_id=planned.measure_id,
            outcome=c.MeasureOutcome.WORKED,
            notes="Roligere i overgangene.",
        ),
        story.closed(1),
    )
    path = f"/cases/{story.case_id}/archive"
    # When the mother reads the archive document, in bokmål (the default) and in English
    nb = api.get(path, MOTHER)
    en = api.get(path, MOTHER, lang="en")
    # Then each names the levels, who decided what with whom and why, the measure and how it went
    assert nb.headers["content-type"].startswith("text/markdown")
    for words in (
        "Barnet:** Kari Nordmann",
        f"Flyttet saken opp fra nivå 0 {DASH} undring og identifisering til nivå 1 {DASH} tiltak",
        "Besluttet av styrer-1 (leder, Solsikken barnehage). Sammen med mor-1.",
        "Begrunnelse: «Foreldrene ønsker tiltak i barnehagen.»",
        "### Fast voksen i overganger",
        "Tiltaket virket. «Roligere i overgangene.»",
    ):
        assert words in nb.text, words
    assert f"Moved the case up from level 0 {DASH} wondering and identifying to level 1" in en.text
    assert "The measure worked." in en.text
    # and neither shows an event's type name or raw data
    for document in (nb.text, en.text):
        assert "Escalated" not in document
        assert "MeasurePlanned" not in document
        assert "{" not in document


def test_the_archive_document_is_also_typed_json_under_the_same_rule(api: Api) -> None:
    # Given a closed case
    story = Story(api)
    api.publish(story.raised(30), story.escalated(20, 1), story.closed(1))
    path = f"/cases/{story.case_id}/archive"
    # When it is asked for as JSON
    by_path = api.get(f"{path}.json", MOTHER, lang="en")
    # Then it is the document as data, its decisions with their levels named
    assert by_path.status_code == 200
    assert by_path.headers["content-type"].startswith("application/json")
    assert by_path.json()["status"] == "Closed"
    decisions = by_path.json()["decisions"]
    assert [(d["level"], d["level_name"]) for d in decisions] == [
        (1, f"level 1 {DASH} measures within the unit"),
        (1, f"level 1 {DASH} measures within the unit"),
    ]
    assert decisions[0]["why"] == "Mer hjelp trengs."
    # and a stranger is refused first, as for the document (the read recorded either way)
    assert refused_by(api.get(f"{path}.json", BUP)) == rule.COVERED_NOW
    # and a language it is not written in is 422 naming `lang`
    wrong = api.get(path, MOTHER, lang="fr")
    assert wrong.status_code == 422
    assert wrong.json()["extra"][0]["key"] == "lang"


# the relay log: in the order things were appended


def test_the_relay_log_lists_entries_in_stream_order_not_by_the_moment_they_carry(
    api: Api,
) -> None:
    # Given a concern shared 5 days ago, and then a consent noted that carries its own moment,
    # 10 days ago (the consent's valid_from)
    story = Story(api)
    shared = c.ConcernShared(**story.env(story.case_id, TEACHER, 5), shared_with=LEADER.person)
    api.publish(story.raised(30), shared)
    api.publish(*story.consent(10, (UNIT,)))
    # When the mother reads the relay log
    log = api.get(f"/cases/{story.case_id}/relay-log", MOTHER)
    # Then the entries are in the order they were appended, the consent after the sharing
    assert types(log) == ["ConcernRaised", "ConcernShared", "ConsentGiven", "ConsentNoted"]
    # and time travel still shows what had happened by a moment, in that order
    seven_days_ago = (NOW - timedelta(days=7)).isoformat()
    then = api.get(f"/cases/{story.case_id}/relay-log", MOTHER, as_of=seven_days_ago)
    assert types(then) == ["ConcernRaised", "ConsentGiven", "ConsentNoted"]


# the unit that owns a case


def test_a_handover_to_a_unit_of_the_same_kind_of_service_moves_the_case_to_it(
    api: Api,
) -> None:
    # Given a kindergarten's case whose baton passes to a school (both basic services), and
    # another whose baton passes to PPT (a helper service)
    to_school, to_ppt = Story(api), Story(api)
    teacher_at_school = Actor(person="laerer-1", role=Role.EMPLOYEE, service="skole-lia")
    api.publish(
        to_school.raised(30),
        *to_school.consent(20, (UNIT, "skole-lia")),
        to_school.handed_over(10, teacher_at_school),
        to_ppt.raised(30),
        *to_ppt.consent(20, (UNIT, "ppt")),
        to_ppt.handed_over(10, PPT),
    )
    # When the leaders look at their units
    school = api.get("/units/skole-lia/overview", SCHOOL_LEADER).json()
    kindergarten = api.get(f"/units/{UNIT}/overview", LEADER).json()
    # Then the school owns the first case, and the kindergarten still owns the one PPT holds
    assert school["open_cases_per_level"]["0"] == 1
    assert kindergarten["open_cases_per_level"]["0"] == 1

    # and the new baton holders have them on their worklists (with the level-0 decision due)
    def held(actor: Actor) -> list[str]:
        work = api.get("/worklist", actor).json()
        return [w["case_id"] for w in work if w["kind"] == "baton_holder"]

    assert held(teacher_at_school) == [str(to_school.case_id)]
    assert held(PPT) == [str(to_ppt.case_id)]


def test_a_school_receiving_a_case_under_the_handover_consent_gets_what_was_tried_before(
    api: Api,
) -> None:
    # Given a kindergarten case at level 1: two measures tried (one worked, one ended), a
    # meeting's open action item, a PPT coordinator, a bright spot; then the mother's consent to
    # the transition to Lia skole (purpose handover), and the baton passed to its teacher
    story = Story(api)
    teacher_at_school = Actor(person="laerer-1", role=Role.EMPLOYEE, service="skole-lia")
    worked, ended = story.measure(25, "Fast voksen i overganger"), story.measure(25, "Egen plass")
    assert isinstance(worked, c.MeasurePlanned)
    api.publish(
        story.raised(30),
        story.note(29, "Lo mye i dag."),
        *story.consent(28, (UNIT, "ppt")),
        story.escalated(27, 1),
        worked,
        ended,
        c.MeasureEvaluated(
            **story.env(story.case_id, TEACHER, 20),
            measure_id=worked.measure_id,
            outcome=c.MeasureOutcome.WORKED,
            notes="Roligere i garderoben.",
            next_evaluation_date=date.today() + timedelta(days=30),
        ),
        story.measure_ended(19, ended),
        c.CoordinatorAssigned(
            **story.env(story.case_id, LEADER, 18), coordinator=PPT.person, service="ppt"
        ),
        m.ActionItemAssigned(
            **story.env(uuid4(), TEACHER, 17),
            case_id=story.case_id,
            item_id=uuid4(),
            description="Overføringsmøte med skolen",
            owner=TEACHER.person,
            owner_service=UNIT,
            due_on=date.today() + timedelta(days=5),
        ),
    )
    story.consent_id = uuid4()  # the mother's consent to the transition, given later
    api.publish(
        *story.consent(10, ("skole-lia",), purposes=(k.Purpose.HANDOVER,)),
        story.handed_over(9, teacher_at_school),
    )
    # When the school's teacher reads the handover packet
    answer = api.get(f"/cases/{story.case_id}/handover-packet", teacher_at_school)
    # Then it holds what was tried and how it went, from the whole case
    assert answer.status_code == 200, answer.text
    packet = answer.json()
    assert [(t["description"], t["ended"]) for t in packet["measures_tried"]] == [
        ("Fast voksen i overganger", False),
        ("Egen plass", True),
    ]
    assert packet["measures_tried"][0]["outcomes"] == [
        {"outcome": "worked", "notes": "Roligere i garderoben."}
    ]
    assert packet["what_worked"] == ["Fast voksen i overganger"]
    steps = packet["next_steps"]
    assert [i["description"] for i in steps["open_action_items"]] == ["Overføringsmøte med skolen"]
    assert (steps["last_decision"]["type"], steps["last_decision"]["to_level"]) == ("Escalated", 1)
    # and the case as it stands: its level, unit, coordinator and baton holder
    state = packet["state"]
    assert (state["level"], state["unit"], state["coordinator"], state["holder"]) == (
        1,
        UNIT,
        PPT.person,
        teacher_at_school.person,
    )
    # And of what came before its consent, nothing else: not the concern, the bright spot, or
    # the consent to PPT
    log = api.get(f"/cases/{story.case_id}/relay-log", teacher_at_school)
    before = [e["type"] for e in log.json()["entries"] if e["stream"] == "CASE"]
    assert before == [
        "Escalated",
        "MeasurePlanned",
        "MeasurePlanned",
        "MeasureEvaluated",
        "MeasureEnded",
        "ConsentNoted",  # its own consent, and what came after
        "BatonHandedOver",
    ]


def test_a_coordinator_whose_service_left_the_case_is_off_the_worklist(api: Api) -> None:
    # Given a coordinator from PPT on a case
    story = Story(api)
    api.publish(
        story.raised(30),
        *story.consent(20, (UNIT, "ppt")),
        c.CoordinatorAssigned(
            **story.env(story.case_id, LEADER, 15), coordinator=PPT.person, service="ppt"
        ),
    )
    assert [w["kind"] for w in api.get("/worklist", PPT).json()] == ["coordinator"]
    # When PPT leaves the case
    api.publish(
        c.AgencyLeft(**story.env(story.case_id, CONSENT_POLICY, 1), service="ppt", reason="done")
    )
    # Then the case is no longer on the coordinator's worklist
    assert api.get("/worklist", PPT).json() == []


# the worklist


def test_a_guardian_s_worklist_lists_their_child_s_case(api: Api) -> None:
    # Given a case about the mother's child, and a parent of another child
    story = Story(api)
    api.register.add(a_child(OTHER_PARENT.person))
    api.publish(story.raised(30), story.escalated(10, 1))
    # When each looks at their worklist
    mine = api.get("/worklist", MOTHER).json()
    theirs = api.get("/worklist", OTHER_PARENT).json()
    # Then the mother finds her child's case, the other parent finds nothing
    assert [(w["case_id"], w["kind"], w["level"], w["status"]) for w in mine] == [
        (str(story.case_id), "guardian", 1, "open")
    ]
    assert theirs == []


def test_a_guardian_s_worklist_names_each_child_as_the_register_does_without_reading_a_case(
    api: Api,
) -> None:
    # Given cases about two of the mother's children, named in the register
    older = Story(api, a_child(MOTHER.person, name="Ola Nordmann"))
    younger = Story(api, a_child(MOTHER.person, name="Kari Nordmann"))
    api.publish(older.raised(30), younger.raised(20))
    # When she looks at her worklist
    mine = api.get("/worklist", MOTHER).json()
    # Then each case names its child, as the register names the child to their guardian
    assert [(w["case_id"], w["child_name"]) for w in mine] == [
        (str(older.case_id), "Ola Nordmann"),
        (str(younger.case_id), "Kari Nordmann"),
    ]
    # and that was no read of either case: their access logs hold nothing
    assert api.access_log(older.case_id) == []
    assert api.access_log(younger.case_id) == []


def test_a_child_finds_their_own_case_from_the_reading_age(api: Api) -> None:
    # Given cases about a 16-year-old and a 10-year-old, each signing in as themselves
    this_year = date.today().year
    older = Story(api, a_child(MOTHER.person, born=date(this_year - 16, 1, 1), person="o"))
    younger = Story(api, a_child(MOTHER.person, born=date(this_year - 10, 1, 1), person="y"))
    api.publish(older.raised(30), younger.raised(30))
    # When each looks at their worklist
    older_list = api.get("/worklist", Actor(person="o", role=Role.CHILD)).json()
    younger_list = api.get("/worklist", Actor(person="y", role=Role.CHILD)).json()
    # Then the one of reading age finds their case, the younger one does not yet
    assert [(w["case_id"], w["kind"]) for w in older_list] == [(str(older.case_id), "child")]
    assert younger_list == []


def test_consent_status_handover_packet_staff_worklist_overview_and_figures(api: Api) -> None:
    story = Story(api)
    meeting_id = uuid4()
    api.publish(
        story.raised(30),
        *story.consent(10, (UNIT, "ppt")),
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
        *story.withdrawn(1, ("ppt",)),
    )
    path = f"/cases/{story.case_id}"
    status = api.get(f"{path}/consent-status", MOTHER).json()
    assert status["services_covered_now"] == [UNIT]
    (consent,) = status["consents"]
    assert consent["given_by"] == {"kind": "guardian", "person": MOTHER.person}
    (ppt,) = [s for s in consent["services"] if s["service"] == "ppt"]
    assert ppt["covered_now"] is False
    assert refused_by(api.get(f"{path}/consent-status", BUP)) == rule.COVERED_NOW

    packet = api.get(f"{path}/handover-packet", TEACHER).json()
    assert [m["description"] for m in packet["measures_tried"]] == ["Fast voksen i overganger"]
    assert packet["next_steps"]["open_action_items"][0]["description"] == "Sende referat"
    assert packet["state"]["level"] == 1

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
    stories = [Story(api) for _ in range(6)]
    api.publish(
        *(story.raised(0) for story in stories[:5]),
        stories[5].raised(0, unit="skole-lille"),
    )
    # When a unit leader looks at the management figures
    figures = api.get("/figures", LEADER).json()
    # Then the kindergarten's month is counted, the school's single concern is not shown
    month = NOW.astimezone(OSLO).strftime("%Y-%m")
    assert figures["concerns_per_unit_and_month"][UNIT][month] == 5
    assert figures["concerns_per_unit_and_month"]["skole-lille"][month] is None
    assert figures["closed_cases"] == 0


@pytest.mark.parametrize("setting", ["0", "-3", "fem", ""])
def test_a_minimum_group_size_that_is_not_a_whole_number_above_zero_is_refused(
    setting: str,
) -> None:
    with pytest.raises(ValueError, match="STAFETT_PROJECTION_FIGURES_MIN_GROUP"):
        min_group({"STAFETT_PROJECTION_FIGURES_MIN_GROUP": setting})


# management figures per unit and month


def test_figures_per_unit_and_month_count_the_staircase_without_personal_data(api: Api) -> None:
    # Given five concerns in the kindergarten this month, each moved up to level 1 after an
    # hour, one of them back down to level 0, and a sixth concern at a school
    stories = [Story(api) for _ in range(6)]
    meeting_id = uuid4()
    scheduled = m.MeetingScheduled(
        **stories[0].env(meeting_id, TEACHER, 0.01),
        case_id=stories[0].case_id,
        meeting_type=m.MeetingType.COOPERATION,
        starts_at=NOW,
        ends_at=NOW + timedelta(hours=1),
        place="Møterom 2",
        leader=TEACHER.person,
        leader_service=UNIT,
    )
    api.publish(
        *(story.raised(1 / 24) for story in stories[:5]),
        *(story.escalated(0.001, 1) for story in stories[:5]),
        c.DeEscalated(
            **stories[0].env(stories[0].case_id, TEACHER, 0.0005),
            from_level=1,
            to_level=0,
            reason="Går bedre.",
        ),
        stories[5].raised(0, unit="skole-lia"),
        # and five guardians' feedback after a cooperation meeting the kindergarten called
        scheduled,
        *(
            m.FeedbackGiven(
                **stories[0].env(meeting_id, MOTHER, 0.0001),
                case_id=stories[0].case_id,
                given_by="guardian",
                person=MOTHER.person,
                rating=4,
                heard=5,
            )
            for _ in range(5)
        ),
    )
    # When a unit leader asks for the figures per unit and month
    answer = api.get("/figures", LEADER, by="unit-month")
    assert answer.status_code == 200, answer.text
    figures = answer.json()
    month = NOW.astimezone(OSLO).strftime("%Y-%m")
    rows = {(row["unit"], row["month"]): row for row in figures["months"]}
    kindergarten, school = rows[(UNIT, month)], rows[("skole-lia", month)]
    # Then the kindergarten's month counts its concerns and the moves by level pair
    assert kindergarten["concerns"] == 5
    assert kindergarten["escalations"]["0-1"] == 5
    assert kindergarten["de_escalations"]["1-0"] is None  # one move down: too few to show
    assert kindergarten["cases_per_level_at_month_end"] == {"0": None, "1": None, "2": 0, "3": 0}
    assert kindergarten["days_from_concern_to_level_0_decision"] == pytest.approx(0.04, abs=0.01)
    assert kindergarten["feedback"] == {"count": 5, "mean_rating": 4.0, "mean_heard": 5.0}
    assert figures["feedback_by_meeting_type"]["cooperation"]["count"] == 5
    # and the school's single concern is not shown
    assert school["concerns"] is None
    assert TEACHER.person not in answer.text
    assert "Kari" not in answer.text


def test_figures_per_unit_and_month_are_also_csv_and_for_leaders_only(api: Api) -> None:
    # Given five concerns in the kindergarten this month
    stories = [Story(api) for _ in range(5)]
    api.publish(*(story.raised(0) for story in stories))
    # When a unit leader asks for them as CSV
    answer = api.get("/figures", LEADER, accept="text/csv", by="unit-month")
    # Then there is a header and one row per unit and month, a withheld figure left empty
    assert answer.headers["content-type"].startswith("text/csv")
    header, *rows = list(csv.reader(io.StringIO(answer.text)))
    assert header[:4] == ["unit", "month", "concerns", "escalations_0_1"]
    month = NOW.astimezone(OSLO).strftime("%Y-%m")
    (row,) = [r for r in rows if r[:2] == [UNIT, month]]
    named = dict(zip(header, row, strict=True))
    assert named["concerns"] == "5"
    assert named["cases_at_level_0_at_month_end"] == "5"
    assert named["de_escalations_1_0"] == "0"
    assert named["feedback_mean_rating"] == ""
    # and the figures are for leaders, administrators and auditors, and `by` names one of two
    assert api.get("/figures", TEACHER, by="unit-month").status_code == 403
    wrong = api.get("/figures", LEADER, by="unit-year")
    assert wrong.status_code == 422
    assert wrong.json()["extra"][0]["key"] == "by"


# deadlines (the municipality's, in its directory: `people.Deadlines`)


def test_the_baton_holder_s_worklist_shows_the_deadlines_of_their_cases_due_and_overdue(
    api: Api,
) -> None:
    # Given a case the teacher holds, raised 40 days ago and not decided at level 0 (28 days by
    # default), with a meeting held 10 days ago without minutes (7 days) and one with minutes
    story = Story(api)
    without, with_minutes = uuid4(), uuid4()
    held = [
        m.MeetingHeld(
            **story.env(meeting_id, TEACHER, days),
            case_id=story.case_id,
            held_at=NOW - timedelta(days=days),
            attended=(TEACHER.person,),
        )
        for meeting_id, days in ((without, 10), (with_minutes, 3))
    ]
    api.publish(
        story.raised(40),
        c.BatonHolderAppointed(
            **story.env(story.case_id, LEADER, 39), holder=TEACHER.person, service=UNIT
        ),
        *held,
        m.MinutesRecorded(
            **story.env(with_minutes, TEACHER, 2), case_id=story.case_id, minutes="Referat."
        ),
    )
    # When the teacher looks at their worklist
    work = api.get("/worklist", TEACHER).json()
    deadlines = [(w["kind"], w["about"], w["due"], w["overdue"]) for w in work]
    # Then the level-0 decision and the missing minutes are there, with their dates, overdue
    decide_by = (NOW - timedelta(days=40) + timedelta(days=28)).date().isoformat()
    minutes_by = (NOW - timedelta(days=10) + timedelta(days=7)).date().isoformat()
    assert ("decision_due", None, decide_by, True) in deadlines
    assert ("minutes_due", str(without), minutes_by, True) in deadlines
    assert not any(w["about"] == str(with_minutes) for w in work)
    # And once the case moves on from level 0, its decision is no longer due
    api.publish(story.escalated(1, 1))
    kinds = [w["kind"] for w in api.get("/worklist", TEACHER).json()]
    assert "decision_due" not in kinds


def test_the_worklist_shows_inactivity_once_it_is_near_its_deadline_or_past_it(api: Api) -> None:
    # Given three cases the teacher holds at level 1, the last thing recorded on one 20 days ago
    # (a break after 14 days by default), on one 12 days ago (told 3 days before), on one today
    quiet, nearly, busy = Story(api), Story(api), Story(api)
    last = {quiet: 20, nearly: 12, busy: 0.1}
    for story, days in last.items():
        api.publish(
            story.raised(days + 1),
            c.BatonHolderAppointed(
                **story.env(story.case_id, LEADER, days + 0.5),
                holder=TEACHER.person,
                service=UNIT,
            ),
            story.escalated(days, 1),
        )
    # When the teacher looks at their worklist
    work = api.get("/worklist", TEACHER).json()
    # Then the quiet case's inactivity is there, overdue, the nearly quiet one's due soon, and
    # the busy case has none
    inactive = {
        w["case_id"]: (w["due"], w["overdue"]) for w in work if w["kind"] == "inactivity_due"
    }

    def due(story: Story) -> str:
        return (NOW - timedelta(days=last[story]) + timedelta(days=14)).date().isoformat()

    assert inactive == {
        str(quiet.case_id): (due(quiet), True),
        str(nearly.case_id): (due(nearly), False),
    }


def test_deadlines_missed_are_counted_per_unit_and_month(api: Api) -> None:
    # Given five cases of the kindergarten whose level-0 decision came too late, and one of
    # them escalated to the unit leader
    stories = [Story(api) for _ in range(5)]

    def missed(story: Story, stage: Literal["baton_holder", "unit_leader"]) -> Event:
        return n.FollowUpBreakDetected(
            **story.env(uuid4(), CONSENT_POLICY, 0.001),
            case_id=story.case_id,
            unit=UNIT,
            last_activity_at=NOW - timedelta(days=1),
            stage=stage,
            cause="decision_overdue",
        )

    api.publish(
        *(story.raised(1 / 24) for story in stories),
        *(missed(story, "baton_holder") for story in stories),
        missed(stories[0], "unit_leader"),
    )
    # When a unit leader asks for the figures per unit and month
    figures = api.get("/figures", LEADER, by="unit-month").json()
    month = NOW.astimezone(OSLO).strftime("%Y-%m")
    (row,) = [r for r in figures["months"] if (r["unit"], r["month"]) == (UNIT, month)]
    # Then the five deadlines missed are counted by cause, the single escalation withheld
    assert row["deadlines_missed"]["decision_overdue"] == 5
    assert row["deadlines_missed"]["minutes_overdue"] == 0
    assert row["deadlines_escalated"] is None
    # And the municipality's totals count them the same way
    totals = api.get("/figures", LEADER).json()
    assert totals["deadlines_missed"]["decision_overdue"] == 5
    assert totals["deadlines_missed"]["inactivity"] == 0
    assert totals["deadlines_escalated"] is None
    assert totals["follow_up_breaks"]["decision_overdue"] == 6
