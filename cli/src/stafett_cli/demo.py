"""`stafett up --demo`: a small municipality, made through the services' own HTTP APIs.

Nothing here writes an event: every step is a request an integrator could send, with a bearer
token for the person who acts, so the services apply every rule as they would to anyone. The
facts no request may assert come from where the services look them up: the children, their
birth dates and guardians from the development register (the demo adds them to
`<data>/register.json`), the units and their leaders from the directory `stafett up` wrote
(`stafett_cli.municipality`).

The municipality: two kindergartens, two schools, a health clinic; the helper services PPT, child
welfare (barnevern) and BUP; people in every role; six cases, from a worry at level 0 to a
responsibility group at level 3, one closed, one reported to child welfare.

The demo is loaded once per data folder: `<data>/demo-loaded` records the cases it made, so
starting again with --demo lists them and continues on the same data instead of adding them twice.

Steps are data (`STEPS`, `meeting_steps()`): who acts, on which service, which path, which
body. In bodies and paths, `{case}` and `{child}` are the step's case and its child's register
id, `{measure:<name>}` (or `{id:<name>}`) a stable id within that case, `{meeting:<name>}` the
meeting a step scheduled, `{time:+<hours>}` a time and `{date:+<days>}` a date from now, `{now}`
the current time, `{sha256}` a document hash.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from uuid import NAMESPACE_URL, UUID, uuid5

import httpx

from stafett_cli.municipality import CHILDREN, DIRECTORY, PEOPLE, registered_children
from stafett_cli.token import development_token
from stafett_runtime.register import FileRegister

if TYPE_CHECKING:
    from stafett_cli.platform import Platform

MARKER = "demo-loaded"
CONSENT_NOTED_WITHIN = 30.0  # seconds for the case service to learn a consent from its stream


@dataclass(frozen=True)
class Step:
    """One request: `actor` sends `body` to `path` on `service`, as part of demo case `case`."""

    case: str
    actor: str
    service: str
    path: str
    body: Mapping[str, Any] = field(default_factory=dict)
    wait_for_consents: int = 0  # then wait until the case service has noted this many consents
    meeting: str | None = None  # the name later steps give the meeting this step schedules


def _consent(case: str, guardian: str, services: list[str], purposes: list[str]) -> Step:
    body = {
        "case_id": "{case}",
        "given_by": {"kind": "guardian", "person": guardian},
        "services": services,
        "purposes": purposes,
        "valid_from": "{now}",
        "evidence": {
            "form": "written",
            "document_ref": f"arkiv/{case}",
            "document_sha256": "{sha256}",
        },
    }
    return Step(case, guardian, "consent", "/consents", body, wait_for_consents=1)


def _raise(case: str, actor: str, concern: str) -> Step:
    return Step(case, actor, "case", "/cases", {"child_id": "{child}", "concern": concern})


def _do(case: str, actor: str, command: str, body: Mapping[str, Any] | None = None) -> Step:
    return Step(case, actor, "case", f"/cases/{{case}}/{command}", body or {})


STEPS: list[Step] = [
    # Emma, Solsikken kindergarten: a worry at level 0, shared and talked over.
    _raise("emma", "ped-solsikke", "Trekker seg unna i lek over flere uker."),
    _do("emma", "ped-solsikke", "share-concern", {"shared_with": "styrer-solsikke"}),
    _do(
        "emma",
        "ped-solsikke",
        "record-wondering-conversation",
        {
            "held_on": "{date:+0}",
            "with_guardians": True,
            "with_child": False,
            "summary": "Foreldrene kjenner seg igjen; vi følger med sammen.",
        },
    ),
    _do("emma", "ped-solsikke", "note-bright-spot", {"note": "Lekte lenge med Ida i dag."}),
    # Noah, Lia school: consent, level 1, a measure planned and evaluated.
    _raise("noah", "laerer-lia", "Mye fravær og uro i timene."),
    _consent("noah", "mor-noah", ["skole-lia", "ppt"], ["cooperation"]),
    _do(
        "noah",
        "rektor-lia",
        "appoint-baton-holder",
        {"holder": "laerer-lia", "service": "skole-lia"},
    ),
    _do(
        "noah",
        "laerer-lia",
        "escalate",
        {"to_level": 1, "reason": "Tiltak i skolen", "participants": ["mor-noah"]},
    ),
    _do(
        "noah",
        "laerer-lia",
        "define-problem",
        {"description": "Uro etter storefri.", "with_guardians": True},
    ),
    _do(
        "noah",
        "laerer-lia",
        "plan-measure",
        {
            "measure_id": "{measure:pause}",
            "description": "Fast pause med kontaktlærer etter storefri.",
            "responsible": "laerer-lia",
            "service": "skole-lia",
            "evaluation_date": "{date:+42}",
        },
    ),
    _do(
        "noah",
        "laerer-lia",
        "evaluate-measure",
        {
            "measure_id": "{measure:pause}",
            "outcome": "partly",
            "notes": "Roligere de fleste dager.",
        },
    ),
    # Sara, Lia kindergarten: referred to PPT, level 2, PPT holds the baton.
    _raise("sara", "ped-lia", "Lite språk for alderen; strever med å bli forstått."),
    _consent(
        "sara",
        "far-sara",
        ["barnehage-lia", "ppt", "helsestasjon-sentrum"],
        ["cooperation", "referral"],
    ),
    _do(
        "sara",
        "styrer-lia",
        "appoint-baton-holder",
        {"holder": "ped-lia", "service": "barnehage-lia"},
    ),
    _do("sara", "ped-lia", "escalate", {"to_level": 1, "reason": "Språktiltak i barnehagen"}),
    _do(
        "sara",
        "ped-lia",
        "plan-measure",
        {
            "measure_id": "{measure:sprak}",
            "description": "Språkgruppe to ganger i uka.",
            "responsible": "ped-lia",
            "service": "barnehage-lia",
            "evaluation_date": "{date:+28}",
        },
    ),
    _do("sara", "ped-lia", "send-referral", {"to_service": "ppt", "purpose": "Utredning av språk"}),
    _do("sara", "ppt-radgiver", "join-agency", {"service": "ppt"}),
    _do(
        "sara",
        "ped-lia",
        "escalate",
        {"to_level": 2, "reason": "Trenger PPT", "participants": ["far-sara"]},
    ),
    _do("sara", "ped-lia", "offer-baton", {"to_person": "ppt-radgiver", "to_service": "ppt"}),
    _do("sara", "ppt-radgiver", "accept-baton"),
    # Jonas, Fjell school: BUP and PPT, a coordinator, level 3 with a responsibility group.
    _raise("jonas", "laerer-fjell", "Langvarig skolevegring og tegn på angst."),
    _consent("jonas", "mor-jonas", ["skole-fjell", "ppt", "bup"], ["cooperation", "referral"]),
    _do(
        "jonas",
        "rektor-fjell",
        "appoint-baton-holder",
        {"holder": "laerer-fjell", "service": "skole-fjell"},
    ),
    _do("jonas", "laerer-fjell", "escalate", {"to_level": 1, "reason": "Tilrettelegging i skolen"}),
    _do(
        "jonas",
        "laerer-fjell",
        "record-child-view",
        {"view": "Vil gå på skolen, men orker ikke morgenen."},
    ),
    _do(
        "jonas",
        "laerer-fjell",
        "send-referral",
        {"to_service": "bup", "purpose": "Vurdering av angst"},
    ),
    _do("jonas", "bup-psykolog", "join-agency", {"service": "bup"}),
    _do(
        "jonas",
        "laerer-fjell",
        "send-referral",
        {"to_service": "ppt", "purpose": "Tilrettelagt opplæring"},
    ),
    _do("jonas", "ppt-radgiver", "join-agency", {"service": "ppt"}),
    _do(
        "jonas",
        "rektor-fjell",
        "assign-coordinator",
        {"coordinator": "koordinator-fjell", "service": "skole-fjell"},
    ),
    _do(
        "jonas",
        "koordinator-fjell",
        "escalate",
        {
            "to_level": 3,
            "reason": "Sammensatt og langvarig behov",
            "participants": ["mor-jonas", "jonas"],
        },
    ),
    _do(
        "jonas",
        "koordinator-fjell",
        "form-responsibility-group",
        {
            "members": [
                {"person": "mor-jonas"},
                {"person": "laerer-fjell", "service": "skole-fjell", "task": "Tilrettelegging"},
                {"person": "bup-psykolog", "service": "bup", "task": "Behandling"},
                {"person": "ppt-radgiver", "service": "ppt"},
            ]
        },
    ),
    _do("jonas", "koordinator-fjell", "request-individual-plan", {"requested_by_guardian": True}),
    # Liam, the health clinic: a report to child welfare, which needs no consent (rule 4).
    _raise("liam", "helsesykepleier", "Blåmerker på armene ved flere kontroller."),
    _do(
        "liam",
        "helsesykepleier",
        "file-child-welfare-report",
        {"legal_basis": "barnevernsloven § 13-2", "grounds": "Gjentatte skader uten forklaring."},
    ),
    # Child welfare examines the report on a legal basis of its own: no consent is asked.
    Step(
        "liam",
        "barnevern-saksbehandler",
        "consent",
        "/legal-bases",
        {
            "case_id": "{case}",
            "service": "barnevern",
            "legal_basis": "barnevernsloven § 2-2",
            "justification": "Undersøker bekymringsmeldingen fra helsestasjonen.",
        },
    ),
    # Ella, Lia school: helped at level 1, the measure worked, the case closed (exit A).
    _raise("ella", "laerer-lia", "Lei seg og isolert etter flytting."),
    _consent("ella", "far-ella", ["skole-lia"], ["cooperation"]),
    _do(
        "ella",
        "rektor-lia",
        "appoint-baton-holder",
        {"holder": "laerer-lia", "service": "skole-lia"},
    ),
    _do("ella", "laerer-lia", "escalate", {"to_level": 1, "reason": "Tiltak i klassen"}),
    _do(
        "ella",
        "laerer-lia",
        "plan-measure",
        {
            "measure_id": "{measure:fadder}",
            "description": "Fadder i klassen og faste lekegrupper.",
            "responsible": "laerer-lia",
            "service": "skole-lia",
            "evaluation_date": "{date:+21}",
        },
    ),
    _do(
        "ella",
        "laerer-lia",
        "evaluate-measure",
        {"measure_id": "{measure:fadder}", "outcome": "worked", "notes": "Har fått venner."},
    ),
    _do(
        "ella", "laerer-lia", "end-measure", {"measure_id": "{measure:fadder}", "reason": "Virket"}
    ),
    _do(
        "ella",
        "rektor-lia",
        "close-case",
        {"reason": "Ingen uro lenger", "participants": ["far-ella"]},
    ),
]


def _meeting(case: str, actor: str, name: str, body: Mapping[str, Any]) -> Step:
    return Step(case, actor, "meeting", "/meetings", {"case_id": "{case}", **body}, meeting=name)


def _in(case: str, actor: str, meeting: str, command: str, body: Mapping[str, Any]) -> Step:
    return Step(case, actor, "meeting", f"/meetings/{{meeting:{meeting}}}/{command}", body)


def meeting_steps() -> list[Step]:
    """Meetings of the demo cases, through the meeting service's API: one held, with minutes,
    a decision, an action item and the guardian's feedback; one still to come."""
    jonas_group = ["koordinator-fjell", "mor-jonas", "jonas", "bup-psykolog", "ppt-radgiver"]
    return [
        # Jonas: the responsibility group meets, decides to go on, and PPT takes a task.
        _meeting(
            "jonas",
            "koordinator-fjell",
            "group",
            {
                "meeting_type": "responsibility_group",
                "starts_at": "{time:+1}",
                "ends_at": "{time:+2}",
                "place": "Fjell skole, møterom 1",
                "agenda": ["Hvordan er morgenene?", "Individuell plan", "Neste steg"],
            },
        ),
        _in(
            "jonas",
            "koordinator-fjell",
            "group",
            "invite",
            {"person": "mor-jonas", "kind": "guardian"},
        ),
        _in("jonas", "koordinator-fjell", "group", "invite", {"person": "jonas", "kind": "child"}),
        _in(
            "jonas",
            "koordinator-fjell",
            "group",
            "invite",
            {"person": "bup-psykolog", "kind": "service", "service": "bup"},
        ),
        _in(
            "jonas",
            "koordinator-fjell",
            "group",
            "invite",
            {"person": "ppt-radgiver", "kind": "service", "service": "ppt"},
        ),
        _in("jonas", "koordinator-fjell", "group", "record-held", {"attended": jonas_group}),
        _in(
            "jonas",
            "koordinator-fjell",
            "group",
            "record-minutes",
            {"minutes": "Morgenene er lettere med fast oppmøtested. Planen skrives ferdig."},
        ),
        _in(
            "jonas",
            "koordinator-fjell",
            "group",
            "record-decision",
            {
                "decision_id": "{id:jonas-continue}",
                "kind": "continue",
                "reason": "Tiltakene virker; vi fortsetter på nivå 3.",
                "participants": jonas_group,
            },
        ),
        _in(
            "jonas",
            "koordinator-fjell",
            "group",
            "assign-action-item",
            {
                "item_id": "{id:jonas-plan}",
                "description": "Utkast til individuell plan",
                "owner": "ppt-radgiver",
                "owner_service": "ppt",
                "due_on": "{date:+14}",
            },
        ),
        _in(
            "jonas",
            "mor-jonas",
            "group",
            "give-feedback",
            {"rating": 4, "heard": 5, "comment": "Godt å bli hørt."},
        ),
        # Sara: PPT, now holding the baton, calls a meeting with the father and the clinic.
        _meeting(
            "sara",
            "ppt-radgiver",
            "cooperation",
            {
                "meeting_type": "interdisciplinary",
                "starts_at": "{time:+120}",
                "ends_at": "{time:+121}",
                "video_link": "https://video.example/stafett/sara",
                "agenda": ["Resultat av språkkartlegging", "Veien videre"],
            },
        ),
        _in(
            "sara",
            "ppt-radgiver",
            "cooperation",
            "invite",
            {"person": "far-sara", "kind": "guardian"},
        ),
        _in(
            "sara",
            "ppt-radgiver",
            "cooperation",
            "invite",
            {"person": "helsesykepleier", "kind": "service", "service": "helsestasjon-sentrum"},
        ),
    ]


class DemoError(RuntimeError):
    pass


@dataclass
class DemoCase:
    key: str
    child: UUID
    id: UUID | None = None
    consents: int = 0
    meetings: dict[str, UUID] = field(default_factory=dict)


class Demo:
    """Sends the steps, remembering each demo case's id (made by the case service)."""

    def __init__(self, urls: Mapping[str, str], environ: Mapping[str, str]) -> None:
        self.urls = urls
        self.environ = environ
        self.http = httpx.Client(timeout=30)
        self.cases: dict[str, DemoCase] = {}
        self._tokens: dict[str, str] = {}

    def close(self) -> None:
        self.http.close()

    def token(self, person: str) -> str:
        if person not in self._tokens:
            p = PEOPLE[person]
            self._tokens[person] = development_token(
                p.id, p.role, p.service, timedelta(hours=1), self.environ
            )
        return self._tokens[person]

    def run(self, step: Step) -> None:
        case = self.cases.setdefault(step.case, DemoCase(step.case, CHILDREN[step.case].child_id))
        path = self._fill(step.path, case)
        body = json.loads(self._fill(json.dumps(step.body, ensure_ascii=False), case))
        url = f"{self.urls[step.service]}{path}"
        headers = {"Authorization": f"Bearer {self.token(step.actor)}"}
        if step.meeting is not None:
            self._wait_for_roster(case, headers)
        answer = self.http.post(url, json=body, headers=headers)
        if answer.status_code not in (200, 201):
            raise DemoError(
                f"{step.case}: POST {path} as {step.actor} answered {answer.status_code}: "
                f"{answer.text[:300]}"
            )
        if step.path == "/cases":
            case.id = UUID(answer.json()["id"])
        if step.meeting is not None:
            case.meetings[step.meeting] = UUID(answer.json()["id"])
        if step.wait_for_consents:
            case.consents += step.wait_for_consents
            self._wait_for_consents(case, step)

    def _wait_for_consents(self, case: DemoCase, step: Step) -> None:
        """The case learns a consent from the CONSENT stream, a moment after it is given; the
        case's unit (the first of the consent's services) leads, as the directory says."""
        unit_leader = DIRECTORY.leader_of(step.body["services"][0])
        assert unit_leader is not None, "every unit of the demo directory has a leader"
        deadline = time.monotonic() + CONSENT_NOTED_WITHIN
        while time.monotonic() < deadline:
            answer = self.http.get(
                f"{self.urls['case']}/cases/{case.id}",
                headers={"Authorization": f"Bearer {self.token(unit_leader)}"},
            )
            if (
                answer.status_code == 200
                and len(answer.json()["case"]["consents"]) >= case.consents
            ):
                return
            time.sleep(0.1)
        raise DemoError(f"{case.key}: the case service did not note the consent within 30 s")

    def _wait_for_roster(self, case: DemoCase, headers: Mapping[str, str]) -> None:
        """The meeting service learns a case from the CASE stream, a moment after its events."""
        deadline = time.monotonic() + CONSENT_NOTED_WITHIN
        while time.monotonic() < deadline:
            url = f"{self.urls['meeting']}/cases/{case.id}/roster"
            if self.http.get(url, headers=headers).status_code == 200:
                return
            time.sleep(0.1)
        raise DemoError(f"{case.key}: the meeting service did not learn the case within 30 s")

    def _fill(self, text: str, case: DemoCase) -> str:
        today = datetime.now(UTC)

        def value(match: re.Match[str]) -> str:
            name, _, argument = match.group(1).partition(":")
            if name == "case":
                if case.id is None:
                    raise DemoError(f"{case.key}: a step before its concern is raised")
                return str(case.id)
            if name == "child":
                return str(case.child)
            if name in ("measure", "id"):
                return str(uuid5(NAMESPACE_URL, f"stafett-demo:{case.child}:{argument}"))
            if name == "meeting":
                if argument not in case.meetings:
                    raise DemoError(
                        f"{case.key}: a step for meeting {argument!r} before it is made"
                    )
                return str(case.meetings[argument])
            if name == "time":  # whole hours from now
                return (today + timedelta(hours=int(argument))).isoformat()
            if name == "date":
                return (today + timedelta(days=int(argument))).date().isoformat()
            if name == "now":
                return today.isoformat()
            if name == "sha256":
                return hashlib.sha256(f"signed consent {case.key}".encode()).hexdigest()
            return match.group(0)

        return re.sub(r"\{([a-z0-9]+(?::[+a-z0-9-]+)?)\}", value, text)


def load_demo(platform: Platform, say: Callable[[str], None]) -> None:
    """Load the demo unless this data folder already has it; say what was made, and as whom."""
    marker = platform.config.data_dir / MARKER
    if marker.exists():
        say(f"demo: already loaded ({marker}); continuing on the same data")
        say(roster(json.loads(marker.read_text())["cases"]))
        return
    if platform.register_file is None:
        raise DemoError(
            f"the register is {platform.register_url}: the demo adds its children to the "
            "development register file, so unset STAFETT_REGISTER_URL to load it"
        )
    FileRegister(platform.register_file).add(*registered_children(datetime.now(UTC).date()))
    urls = {s.name: s.url for s in platform.services}
    steps = [s for s in STEPS + meeting_steps() if s.service in urls]
    skipped = len(STEPS) + len(meeting_steps()) - len(steps)
    environ = {
        **os.environ,
        **platform.config.service_env,
        "STAFETT_DATA_DIR": str(platform.config.data_dir),
    }
    demo = Demo(urls, environ)
    try:
        for number, step in enumerate(steps, 1):
            if platform.stopping:
                raise DemoError("stopped before the demo was complete")
            demo.run(step)
            if number % 10 == 0:
                say(f"demo: {number}/{len(steps)} requests")
    finally:
        demo.close()
    cases = {key: str(case.id) for key, case in demo.cases.items() if case.id is not None}
    marker.write_text(
        json.dumps({"loaded_at": datetime.now(UTC).isoformat(), "cases": cases}, indent=2) + "\n"
    )
    say(
        f"demo: loaded {len(cases)} cases with {len(steps)} requests"
        + (f" ({skipped} skipped: their service is not built yet)" if skipped else "")
    )
    say(roster(cases))


def roster(cases: Mapping[str, str]) -> str:
    """The demo's cases (by child) and people, with what it takes to act as each."""
    lines = ["demo cases (the child, as the register names them):"]
    for key, case_id in cases.items():
        lines.append(f"  {key:<6} {case_id}  {CHILDREN[key].name}")
    lines.append("demo people (get a token: stafett token --person ID --role ROLE [--service S]):")
    for p in PEOPLE.values():
        lines.append(f"  {p.id:<24} {p.role:<13} {p.service or '':<21} {p.title}")
    return "\n".join(lines)
