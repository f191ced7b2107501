"""Every read endpoint of every service, against a small reference model of DOMAIN.md.

Hypothesis makes municipalities' cases: children with one or two guardians (young, or old enough
to read and consent alone), concerns raised in a school or a kindergarten, entries, consents
given (by a guardian, by the child, or recorded by the unit on a guardian's behalf) for some
services and purposes, their scopes changed, withdrawn wholly or for one service, left to expire,
legal bases recorded by child welfare, reports of concern filed, meetings held with minutes. The
real services do it all over HTTP, each as its own process under its own NATS user. Then every
viewer (the guardians, a guardian of another child, the child, staff of the unit, of each helper
service, of a unit the directory does not know, an auditor with and without a purpose, an
administrator) reads every endpoint, and each answer is compared with `access_model`: who may
read, which entries and meetings they are shown, and whether the child is named. Differences: 0.

STAFETT_PROPERTY_EXAMPLES sets how many municipalities are tried (default 8).
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import httpx
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from stafett_contracts.identity import Actor, Role
from stafett_runtime.testing import TEST_DIRECTORY, a_child
from tests.access_model import Expected, ModelCase, ModelConsent, Scope, Viewer, expect
from tests.platform import Platform

EXAMPLES = int(os.environ.get("STAFETT_PROPERTY_EXAMPLES", "8"))
UNITS = ("skole-lia", "barnehage-solsikke")
HELPERS = ("ppt", "bup", "barnevern", "helsestasjon")
PURPOSES = ("cooperation", "tvist", "referral", "handover")
LEGAL_BASIS = "barnevernsloven § 2-1"
EXPIRES_SOON = timedelta(seconds=2.5)
SETTLES_WITHIN = 30.0
TODAY = datetime.now(UTC).date()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    running = Platform(
        tmp_path_factory.mktemp("access-property"),
        env={"STAFETT_CONSENT_EXPIRY_INTERVAL": "1"},
    )
    running.start()
    try:
        yield running
    finally:
        running.stop()


# What a scenario is made of.


@dataclass(frozen=True)
class Give:
    party: str  # "guardian0", "guardian1", "child"
    recorded_by_unit: bool
    services: tuple[str, ...]
    purposes: tuple[str, ...]
    expires_soon: bool


@dataclass(frozen=True)
class ChangeScope:
    consent: int
    services: tuple[str, ...]
    purposes: tuple[str, ...]


@dataclass(frozen=True)
class Withdraw:
    consent: int
    services: tuple[str, ...]  # () wholly


@dataclass(frozen=True)
class Entry:
    pass


@dataclass(frozen=True)
class LegalBasis:
    pass


@dataclass(frozen=True)
class Report:
    pass


@dataclass(frozen=True)
class Meeting:
    pass


@dataclass(frozen=True)
class Minutes:
    pass


Step = Give | ChangeScope | Withdraw | Entry | LegalBasis | Report | Meeting | Minutes


@dataclass(frozen=True)
class CasePlan:
    unit: str
    guardians: int
    teen: bool
    steps: tuple[Step, ...]


def _subset(options: tuple[str, ...]) -> st.SearchStrategy[tuple[str, ...]]:
    return st.lists(st.sampled_from(options), min_size=1, max_size=len(options), unique=True).map(
        tuple
    )


@st.composite
def case_plans(draw: st.DrawFn) -> CasePlan:
    unit = draw(st.sampled_from(UNITS))
    guardians = draw(st.integers(1, 2))
    teen = draw(st.booleans())
    parties = [f"guardian{i}" for i in range(guardians)] + (["child"] if teen else [])
    live: dict[str, tuple[int, tuple[str, ...]]] = {}  # party -> (consent index, services)
    expiring: set[str] = set()  # parties whose consent expires soon: one live consent each
    given_count = 0
    meetings = 0
    legal_basis = False  # the same legal basis twice is noted once: recorded at most once here
    steps: list[Step] = []
    for _ in range(draw(st.integers(1, 7))):
        kinds = ["entry", "report", "meeting"] + ([] if legal_basis else ["legal"])
        free = [p for p in parties if p not in live and p not in expiring]
        kinds += ["give"] if free else []
        kinds += ["scope", "withdraw"] if live else []
        kinds += ["minutes"] if meetings else []
        kind = draw(st.sampled_from(kinds))
        if kind == "give":
            party = draw(st.sampled_from(free))
            services = draw(_subset((*HELPERS, unit)))
            soon = draw(st.booleans())
            steps.append(Give(party, draw(st.booleans()), services, draw(_subset(PURPOSES)), soon))
            if soon:  # left alone: it may end at any moment
                expiring.add(party)
            else:
                live[party] = (given_count, services)
            given_count += 1
        elif kind == "scope":
            party = draw(st.sampled_from(sorted(live)))
            index, _ = live[party]
            services = draw(_subset((*HELPERS, unit)))
            steps.append(ChangeScope(index, services, draw(_subset(PURPOSES))))
            live[party] = (index, services)
        elif kind == "withdraw":
            party = draw(st.sampled_from(sorted(live)))
            index, services = live[party]
            some = draw(
                st.lists(st.sampled_from(services), max_size=len(services) - 1, unique=True)
            )
            steps.append(Withdraw(index, tuple(some)))
            if some:
                live[party] = (index, tuple(s for s in services if s not in some))
            else:
                del live[party]
        elif kind == "meeting":
            steps.append(Meeting())
            meetings += 1
        elif kind == "legal":
            steps.append(LegalBasis())
            legal_basis = True
        else:
            made: dict[str, Step] = {"entry": Entry(), "report": Report(), "minutes": Minutes()}
            steps.append(made[kind])
    return CasePlan(unit, guardians, teen, tuple(steps))


# Carrying a plan out, over HTTP, and keeping the model.


@dataclass
class Run:
    plan: CasePlan
    model: ModelCase
    case_id: str
    guardians: list[str]
    child_person: str
    consent_ids: list[str] = field(default_factory=list)
    meetings: list[str] = field(default_factory=list)
    versions: dict[str, int] = field(default_factory=dict)  # consent id -> its version
    soon_until: datetime | None = None
    expected_consent_events: int = 0

    def saved(self, answer: dict[str, Any]) -> None:
        """A consent's new version: each version is one event the case will act on."""
        consent_id, version = answer["id"], answer["version"]
        self.expected_consent_events += version - self.versions.get(consent_id, 0)
        self.versions[consent_id] = version


def staff(service: str, role: Role = Role.EMPLOYEE) -> Actor:
    leader = TEST_DIRECTORY.units[service].leader if service in TEST_DIRECTORY.units else None
    person = leader if role == Role.UNIT_LEADER and leader else f"ansatt-{service}"
    return Actor(person=person, role=role, service=service)


def accepted(answer: httpx.Response, doing: str) -> dict[str, Any]:
    assert answer.status_code in (200, 201), f"{doing}: {answer.status_code} {answer.text}"
    body: dict[str, Any] = answer.json()
    return body


def carry_out(platform: Platform, plan: CasePlan) -> Run:
    tag = uuid4().hex[:8]
    guardians = [f"foresatt-{tag}-{i}" for i in range(plan.guardians)]
    born = TODAY.replace(year=TODAY.year - (16 if plan.teen else 8))
    if born.month == 2 and born.day == 29:
        born = born.replace(day=28)
    child = a_child(*guardians, born=born, person=f"barn-{tag}")
    platform.register_child(child)
    employee = staff(plan.unit)
    raised = accepted(
        platform.post(
            "case", "/cases", employee, {"child_id": str(child.child_id), "concern": "Uro."}
        ),
        "raise a concern",
    )
    case_id = raised["id"]
    run = Run(
        plan,
        ModelCase(case_id, plan.unit, frozenset(guardians), child.person or "", born),
        case_id,
        guardians,
        child.person or "",
    )
    for step in plan.steps:
        _step(platform, run, step)
        time.sleep(0.01)  # entries and period boundaries never share a microsecond
    return run


def _step(platform: Platform, run: Run, step: Step) -> None:
    unit = run.plan.unit
    employee = staff(unit)
    leader = staff(unit, Role.UNIT_LEADER)
    case = f"/cases/{run.case_id}"
    match step:
        case Entry():
            accepted(
                platform.post("case", f"{case}/note-bright-spot", employee, {"note": "Fin dag."}),
                "entry",
            )
        case Give():
            person = (
                run.child_person if step.party == "child" else run.guardians[int(step.party[-1])]
            )
            kind = "child" if step.party == "child" else "guardian"
            actor = employee if step.recorded_by_unit else Actor(person=person, role=Role(kind))
            now = datetime.now(UTC)
            until = now + (EXPIRES_SOON if step.expires_soon else timedelta(days=200))
            body = {
                "case_id": run.case_id,
                "given_by": {"kind": kind, "person": person},
                "services": list(step.services),
                "purposes": list(step.purposes),
                "valid_from": now.isoformat(),
                "valid_until": until.isoformat(),
                "evidence": {
                    "form": "written",
                    "document_ref": f"arkiv/{run.case_id}",
                    "document_sha256": hashlib.sha256(b"signert").hexdigest(),
                },
            }
            saved = accepted(platform.post("consent", "/consents", actor, body), "give")
            consent_id = saved["id"]
            run.saved(saved)
            run.consent_ids.append(consent_id)
            run.model.consents.append(
                ModelConsent(
                    consent_id,
                    now,
                    until,
                    [Scope(now, frozenset(step.services), frozenset(step.purposes))],
                )
            )
            if step.expires_soon:
                run.expected_consent_events += 1  # its ConsentExpired
                run.soon_until = max(until, run.soon_until or until)
        case ChangeScope():
            consent_id = run.consent_ids[step.consent]
            body = {"services": list(step.services), "purposes": list(step.purposes)}
            run.saved(
                accepted(
                    platform.post("consent", f"/consents/{consent_id}/scope", employee, body),
                    "scope",
                )
            )
        case Withdraw():
            consent_id = run.consent_ids[step.consent]
            body = {"services": list(step.services)}
            run.saved(
                accepted(
                    platform.post("consent", f"/consents/{consent_id}/withdraw", employee, body),
                    "withdraw",
                )
            )
        case LegalBasis():
            body = {
                "case_id": run.case_id,
                "service": "barnevern",
                "legal_basis": LEGAL_BASIS,
                "justification": "Undersøkelse etter melding.",
            }
            accepted(
                platform.post("consent", "/legal-bases", staff("barnevern"), body), "legal basis"
            )
            run.expected_consent_events += 1
        case Report():
            body = {"legal_basis": "barnevernsloven § 13-2", "grounds": "Bekymring for omsorgen."}
            accepted(
                platform.post("case", f"{case}/file-child-welfare-report", employee, body), "report"
            )
        case Meeting():
            _wait_for_roster(platform, run)
            start = datetime.now(UTC) + timedelta(days=1)
            body = {
                "case_id": run.case_id,
                "meeting_type": "cooperation",
                "starts_at": start.isoformat(),
                "ends_at": (start + timedelta(hours=1)).isoformat(),
                "place": "Møterom 1",
            }
            meeting_id = accepted(platform.post("meeting", "/meetings", leader, body), "meeting")[
                "id"
            ]
            accepted(
                platform.post(
                    "meeting",
                    f"/meetings/{meeting_id}/record-held",
                    leader,
                    {"attended": [leader.person]},
                ),
                "held",
            )
            accepted(
                platform.post(
                    "meeting",
                    f"/meetings/{meeting_id}/record-minutes",
                    leader,
                    {"minutes": "Referat."},
                ),
                "minutes",
            )
            run.meetings.append(meeting_id)
        case Minutes():
            meeting_id = run.meetings[-1]
            text = f"Referat {uuid4().hex[:6]}."
            accepted(
                platform.post(
                    "meeting", f"/meetings/{meeting_id}/record-minutes", leader, {"minutes": text}
                ),
                "minutes",
            )


def _wait_for_roster(platform: Platform, run: Run) -> None:
    """The meeting service learns the case from the CASE stream, a moment after it is raised."""
    leader = staff(run.plan.unit, Role.UNIT_LEADER)
    deadline = time.monotonic() + SETTLES_WITHIN
    while platform.get("meeting", f"/cases/{run.case_id}/roster", leader).status_code != 200:
        assert time.monotonic() < deadline, "the meeting service never learned the case"
        time.sleep(0.1)


AUDITOR = Actor(person="tilsyn-1", role=Role.AUDITOR)
PURPOSE = {"purpose": "tilsyn 2026/7"}


def auditor_log(platform: Platform, run: Run) -> list[dict[str, Any]]:
    answer = platform.get("projection", f"/cases/{run.case_id}/relay-log", AUDITOR, **PURPOSE)
    entries: list[dict[str, Any]] = accepted(answer, "the auditor's relay log")["entries"]
    return entries


def settle(platform: Platform, run: Run) -> None:
    """Wait until the projection holds every consent event of the case, and the case service
    has acted on each (its ConsentNoted / ConsentLapsed / LegalBasisNoted follow them)."""
    deadline = time.monotonic() + SETTLES_WITHIN
    while True:
        entries = auditor_log(platform, run)
        consent_events = [
            e for e in entries if e["stream"] == "CONSENT" and e["type"] != "ConsentExpired"
        ]
        expired = [e for e in entries if e["type"] == "ConsentExpired"]
        acted = [
            e for e in entries if e["type"] in ("ConsentNoted", "ConsentLapsed", "LegalBasisNoted")
        ]
        wanted = run.expected_consent_events
        if len(consent_events) + len(expired) >= wanted and len(acted) >= len(consent_events):
            return
        assert time.monotonic() < deadline, f"case {run.case_id} did not settle: {entries}"
        time.sleep(0.2)


def complete_the_model(run: Run, entries: list[dict[str, Any]]) -> None:
    """Times the services gave: scope changes, withdrawals, legal bases, reports."""
    by_id = {c.consent_id: c for c in run.model.consents}
    for e in entries:
        at = datetime.fromisoformat(e["occurred_at"])
        body = e["event"]
        consent = by_id.get(body.get("aggregate_id", ""))
        match e["type"]:
            case "ConsentScopeChanged" if consent:
                until = body.get("valid_until")
                if until:
                    consent.valid_until = datetime.fromisoformat(until)
                consent.scopes.append(
                    Scope(at, frozenset(body["services"]), frozenset(body["purposes"]))
                )
            case "ConsentWithdrawn" if consent:
                if body["services"]:
                    left = consent.scope.services - set(body["services"])
                    consent.scopes.append(Scope(at, left, consent.scope.purposes))
                else:
                    consent.withdrawn_at = at
            case "LegalBasisRecorded":
                run.model.overrides.append((body["service"], at))
            case "ChildWelfareReportFiled":
                run.model.overrides.append((body["reported_to"], at))


# The viewers, and what each endpoint should answer.


def viewers(run: Run) -> list[tuple[Actor, str | None]]:
    people: list[Actor] = [
        *(Actor(person=g, role=Role.GUARDIAN) for g in run.guardians),
        Actor(person="foresatt-til-et-annet-barn", role=Role.GUARDIAN),
        Actor(person=run.child_person, role=Role.CHILD),
        staff(run.plan.unit),
        *(staff(s) for s in HELPERS),
        Actor(person="ansatt-ukjent", role=Role.EMPLOYEE, service="skole-ukjent"),
        Actor(person="admin-1", role=Role.ADMINISTRATOR),
    ]
    reads: list[tuple[Actor, str | None]] = [(p, None) for p in people]
    reads += [(staff(s), purpose) for s in HELPERS for purpose in ("tvist", "cooperation")]
    reads += [(AUDITOR, PURPOSE["purpose"]), (AUDITOR, None)]
    return reads


def status_of(expected: Expected, viewer: Actor, purpose: str | None) -> int:
    if expected.granted:
        return 200
    return 422 if viewer.role == Role.AUDITOR and not purpose else 403


@dataclass
class Differences:
    found: list[str] = field(default_factory=list)

    def check(self, what: str, got: object, wanted: object) -> None:
        if got != wanted:
            self.found.append(f"{what}: got {got!r}, the model says {wanted!r}")


def compare_reads(platform: Platform, run: Run, differences: Differences) -> None:
    now = datetime.now(UTC)
    units = set(TEST_DIRECTORY.units)
    for viewer, purpose in viewers(run):
        model_viewer = Viewer(viewer.person, str(viewer.role), viewer.service)
        expected = expect(run.model, model_viewer, now, purpose, units)
        who = f"{viewer.person} ({viewer.role}, {viewer.service}, purpose {purpose})"
        wanted = status_of(expected, viewer, purpose)
        params = {"purpose": purpose} if purpose else {}
        case = f"/cases/{run.case_id}"

        before = auditor_log(platform, run)
        log = platform.get("projection", f"{case}/relay-log", viewer, **params)
        after = auditor_log(platform, run)
        differences.check(f"{who}: relay-log", log.status_code, wanted)
        if log.status_code == 200 and wanted == 200:
            seen = {(e["stream"], e["seq"]) for e in log.json()["entries"]}
            must = {(e["stream"], e["seq"]) for e in before if expected.shows(_at(e), e["type"])}
            may = {(e["stream"], e["seq"]) for e in after if expected.shows(_at(e), e["type"])}
            differences.check(f"{who}: relay-log entries missing", sorted(must - seen), [])
            differences.check(f"{who}: relay-log entries not theirs", sorted(seen - may), [])
            differences.check(
                f"{who}: relay-log names the child",
                log.json()["child"] is not None,
                expected.identity,
            )

        answer = platform.get("case", case, viewer, **params)
        differences.check(f"{who}: case", answer.status_code, wanted)
        if answer.status_code == 200 and wanted == 200:
            shown = answer.json().get("personal_data") is not None
            differences.check(f"{who}: case names the child", shown, expected.identity)

        for service, path in (
            ("consent", f"{case}/consents"),
            ("consent", f"{case}/access?service=ppt&for_purpose=cooperation"),
            ("meeting", f"{case}/roster"),
            ("notify", f"/notifications?case_id={run.case_id}"),
            ("projection", f"{case}/consent-status"),
            ("projection", f"{case}/handover-packet"),
            *(("consent", f"/consents/{c}") for c in run.consent_ids),
        ):
            path_params = dict(params)
            if "?" in path:
                path, query = path.split("?", 1)
                path_params.update(dict(pair.split("=", 1) for pair in query.split("&")))
            got = platform.get(service, path, viewer, **path_params).status_code
            differences.check(f"{who}: {service} {path}", got, wanted)

        for path, only in (
            ("access-log", {Role.GUARDIAN, Role.CHILD, Role.AUDITOR}),
            ("export.jsonl", {Role.AUDITOR}),
        ):
            narrowed = wanted if wanted != 200 or viewer.role in only else 403
            got = platform.get("projection", f"{case}/{path}", viewer, **params).status_code
            differences.check(f"{who}: projection {path}", got, narrowed)

        meetings = platform.get("meeting", f"{case}/meetings", viewer, **params)
        differences.check(f"{who}: meetings", meetings.status_code, wanted)
        if meetings.status_code == 200 and wanted == 200:
            shown_meetings = {m["id"]: len(m["minutes"]) for m in meetings.json()}
            differences.check(
                f"{who}: meetings shown", shown_meetings, _meetings_shown(before, expected)
            )


def _meetings_shown(entries: list[dict[str, Any]], expected: Expected) -> dict[str, int]:
    shown: dict[str, int] = {}
    for e in entries:
        if e["stream"] != "MEETING" or not expected.shows(_at(e), e["type"]):
            continue
        meeting_id = e["event"]["aggregate_id"]
        if e["type"] == "MeetingScheduled":
            shown[meeting_id] = 0
        elif e["type"] == "MinutesRecorded" and meeting_id in shown:
            shown[meeting_id] += 1
    return shown


def _at(entry: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(entry["occurred_at"])


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    # Each example drives five services for seconds: a failing one is reported as found, not
    # shrunk, which would take longer than the whole suite.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(plans=st.lists(case_plans(), min_size=1, max_size=2))
def test_every_read_of_every_service_shows_what_the_reference_model_says(
    platform: Platform, plans: list[CasePlan]
) -> None:
    # Given the cases, as the services recorded them
    runs = [carry_out(platform, plan) for plan in plans]
    for run in runs:
        settle(platform, run)
    soon = [r.soon_until for r in runs if r.soon_until]
    if soon:  # consents left to expire have ended before anyone reads
        time.sleep(max(0.0, (max(soon) - datetime.now(UTC)).total_seconds()) + 0.3)
    differences = Differences()
    for run in runs:
        complete_the_model(run, auditor_log(platform, run))
        # When every viewer reads every endpoint, then each answer is the model's
        compare_reads(platform, run, differences)
    assert differences.found == [], "\n".join(differences.found)
