# ruff: noqa: RUF001 (the pages' words are written with en dashes, as the pages show them)
"""Stafett in a real browser, on the real platform: the five services, the development identity
provider and the web app, each its own process, driven by headless Chromium (Debian's `chromium`
through Playwright; no browser is downloaded from anywhere).

- a guardian signs in through the development provider on a phone, finds the child's case,
  reads the relay log and the access log, and withdraws consent for one service;
- a teacher raises a concern, the unit leader records the guardian's consent and escalates, a
  meeting is held, and its decision changes the level;
- an auditor states a purpose and sees a case as it was before it was escalated.

Every page of those journeys is checked by axe-core (0 serious or critical violations) and, at
360 px, for content wider than the screen. The main pages are photographed at phone and desktop
width into docs/screenshots/ (shown in the README).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import httpx
import pytest
from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]
from playwright.sync_api import (
    BrowserContext,
    Page,
    Playwright,
    ViewportSize,
    expect,
    sync_playwright,
)

from stafett_cli.idp import DevelopmentProvider, web_client
from stafett_cli.municipality import CHILDREN, DIRECTORY, registered_children
from stafett_contracts.identity import Actor, Role
from stafett_contracts.people import RegisteredChild
from stafett_runtime.natsserver import free_port
from tests.platform import Platform, ServiceRun

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).parents[1] / "docs" / "screenshots"
PHONE = ViewportSize(width=360, height=780)
DESKTOP = ViewportSize(width=1280, height=900)
OSLO = ZoneInfo("Europe/Oslo")
READY_WITHIN = 60.0

TEACHER = Actor(person="laerer-lia", role=Role.EMPLOYEE, service="skole-lia")
HEAD = Actor(person="styrer-solsikke", role=Role.UNIT_LEADER, service="barnehage-solsikke")
HEADTEACHER = Actor(person="rektor-lia", role=Role.UNIT_LEADER, service="skole-lia")
PPT = Actor(person="ppt-radgiver", role=Role.EMPLOYEE, service="ppt")


def ensure_chromium() -> None:
    """Debian's chromium, installed with apt-get when missing (as root); never a download."""
    if CHROMIUM.exists():
        return
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(
            f"{CHROMIUM} is missing: install Debian's chromium package "
            "(apt-get install chromium) as root, then run the browser tests again"
        )
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        subprocess.run(command, check=True, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    if not CHROMIUM.exists():
        pytest.fail(f"apt-get installed chromium, yet {CHROMIUM} is missing")


@dataclass
class Stafett:
    platform: Platform
    web: str
    idp: str
    processes: list[ServiceRun]

    def child(self, key: str) -> RegisteredChild:
        (found,) = [
            c for c in registered_children(date.today()) if c.child_id == CHILDREN[key].child_id
        ]
        return found

    def wait_for_consent(self, case_id: UUID, reader: Actor) -> None:
        """Until the case service has noted the consent (its policy follows the consent
        service's stream), as its own reading of the case shows."""

        def noted() -> bool:
            answer = self.platform.get("case", f"/cases/{case_id}", reader)
            return answer.status_code == 200 and bool(answer.json()["case"].get("consents"))

        wait_until("the case notes the consent", noted)

    def api(self, service: str, path: str, actor: Actor, body: dict[str, Any]) -> Any:
        answer = self.platform.post(service, path, actor, body)
        assert answer.status_code == 201, f"{path}: {answer.text}"
        return answer.json()


@pytest.fixture(scope="module")
def stafett(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stafett]:
    """The platform as `stafett up` runs it, on a data folder of its own: NATS with a user per
    service, the services trusting the development provider, the provider, and the web app."""
    ensure_chromium()
    data = tmp_path_factory.mktemp("stafett")
    web, idp = f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}"
    provider = DevelopmentProvider(idp, (web_client(data, f"{web}/auth/callback", f"{web}/"),))
    trusted = provider.trusted_by_services({"STAFETT_DATA_DIR": str(data)})
    notify = {  # notifications link to the web app; no mail server listens on its port
        "STAFETT_NOTIFY_LINK_BASE": web,
        "STAFETT_NOTIFY_SMTP_PORT": str(free_port()),
    }
    platform = Platform(data, directory=DIRECTORY, env={**trusted, **notify})
    processes: list[ServiceRun] = []
    try:
        platform.start()
        for child in registered_children(date.today()):
            platform.register_child(child)
        common = {**os.environ, "STAFETT_DATA_DIR": str(data), "STAFETT_LOG_FORMAT": "json"}
        processes.append(
            _run("idp", provider.command, {**common, **provider.environment()}, data, idp)
        )
        (client,) = provider.clients
        web_env = {
            **common,
            **trusted,
            "STAFETT_HTTP_PORT": web.rsplit(":", 1)[1],
            "STAFETT_WEB_URL": web,
            "STAFETT_OIDC_ISSUER": idp,
            "STAFETT_OIDC_CLIENT_ID": client.client_id,
            "STAFETT_OIDC_CLIENT_SECRET": client.client_secret or "",
            "STAFETT_DIRECTORY_FILE": str(platform.directory_file),
            **{f"STAFETT_{s.upper()}_URL": platform.url(s) for s in platform.services},
        }
        processes.append(_run("web", (sys.executable, "-m", "stafett_web"), web_env, data, web))
        yield Stafett(platform, web, idp, processes)
    finally:
        for process in reversed(processes):
            process.stop()
        platform.stop()


def _run(
    name: str, command: tuple[str, ...], env: dict[str, str], data: Path, url: str
) -> ServiceRun:
    log = data / f"{name}.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(list(command), env=env, stdout=out, stderr=out)
    run = ServiceRun(name, url, log, process)
    deadline = time.monotonic() + READY_WITHIN
    while time.monotonic() < deadline:
        assert process.poll() is None, f"{name} exited:\n{log.read_text()[-4000:]}"
        try:
            if httpx.get(f"{url}/health/ready", timeout=1).status_code == 200:
                return run
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    run.stop()
    raise AssertionError(f"{name} not ready in time:\n{log.read_text()[-4000:]}")


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as running:
        yield running


class Person:
    """Someone at the web app in their own browser (a new, empty profile)."""

    def __init__(self, context: BrowserContext, stafett: Stafett, phone: bool) -> None:
        self.context = context
        self.page: Page = context.pages[0] if context.pages else context.new_page()
        self.stafett = stafett
        self.phone = phone
        self.axe = Axe()
        self.checked: list[str] = []

    def open(self, path: str) -> None:
        self.page.goto(f"{self.stafett.web}{path}")
        self.check()

    def check(self) -> None:
        """The page as it stands: axe-core's serious and critical violations (none), and on a
        phone nothing wider than the screen."""
        page = self.page
        page.wait_for_load_state()
        results = self.axe.run(page)
        grave = [
            f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
            for v in results.response["violations"]
            if v["impact"] in ("serious", "critical")
        ]
        assert grave == [], f"{page.url}: {grave}"
        if self.phone:
            wide = page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
            assert not wide, f"{page.url} is wider than a 360 px phone"
        self.checked.append(page.url)

    def sign_in(self, person: str) -> None:
        """Through the development provider: the front page's button, then the person's."""
        self.open("/")
        self.page.get_by_role("link", name="Logg inn med eID").or_(
            self.page.get_by_role("link", name="Sign in with eID")
        ).click()
        self.page.locator(f'button[name="person"][value="{person}"]').click()
        self.page.wait_for_url(f"{self.stafett.web}/**")
        self.check()

    def sign_out(self) -> None:
        """Here and at the provider, which sends the browser back to the front page."""
        self.page.locator("form.signout button").click()
        self.page.wait_for_load_state()
        assert self.page.url.split("?")[0] == f"{self.stafett.web}/", self.page.url
        self.check()

    def submit(self, button: str) -> None:
        self.page.get_by_role("button", name=button, exact=True).click()
        self.page.wait_for_load_state()
        self.check()

    def photograph(self, name: str) -> None:
        """The page at phone and at desktop width, into docs/screenshots/."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for width, size in (("phone", PHONE), ("desktop", DESKTOP)):
            self.page.set_viewport_size(size)
            self.page.screenshot(path=SCREENSHOTS / f"{name}-{width}.png", full_page=True)
        self.page.set_viewport_size(PHONE if self.phone else DESKTOP)

    def until(self, what: str, holds: Callable[[], bool], within: float = 30.0) -> None:
        """Reloads the page until `holds` (the services apply each other's events a moment
        after they happen)."""
        deadline = time.monotonic() + within
        while not holds():
            assert time.monotonic() < deadline, f"not within {within} s: {what}"
            time.sleep(0.3)
            self.page.reload()
        self.check()


@pytest.fixture
def person(
    playwright: Playwright, stafett: Stafett, tmp_path: Path, request: pytest.FixtureRequest
) -> Iterator[Callable[..., Person]]:
    contexts: list[BrowserContext] = []

    def browser(locale: str = "nb-NO", phone: bool = False) -> Person:
        profile = tmp_path / f"profile-{len(contexts)}"
        profile.mkdir()
        context = playwright.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=FLAGS,
            locale=locale,
            timezone_id="Europe/Oslo",
            viewport=PHONE if phone else DESKTOP,
            accept_downloads=True,
        )
        context.set_default_timeout(15_000)
        contexts.append(context)
        return Person(context, stafett, phone)

    yield browser
    for context in contexts:
        context.close()


def wait_until(what: str, holds: Callable[[], bool], within: float = 30.0) -> None:
    deadline = time.monotonic() + within
    while not holds():
        assert time.monotonic() < deadline, f"not within {within} s: {what}"
        time.sleep(0.2)


def a_case_at_level_1(stafett: Stafett) -> UUID:
    """Given through the services' APIs (as the demo does): Noah's teacher raised a concern,
    Noah's mother consented to the school and PPT cooperating, the headteacher made the teacher
    baton holder and moved the case to level 1, a meeting is called for tomorrow, and PPT read
    the case."""
    noah = stafett.child("noah")
    mother = Actor(person=noah.guardians[0], role=Role.GUARDIAN)
    case_id = UUID(
        stafett.api(
            "case",
            "/cases",
            TEACHER,
            {
                "national_id": noah.national_id,
                "concern": "Sliter med å lese, og gruer seg til skolen.",
            },
        )["id"]
    )
    stafett.api(
        "consent",
        "/consents",
        mother,
        {
            "case_id": str(case_id),
            "given_by": {"kind": "guardian", "person": mother.person},
            "services": ["skole-lia", "ppt"],
            "purposes": ["cooperation"],
            "valid_from": datetime.now(UTC).isoformat(),
            "evidence": {
                "form": "written",
                "document_ref": "skole-lia/2026/17",
                "document_sha256": hashlib.sha256(b"signert samtykke").hexdigest(),
            },
        },
    )
    stafett.wait_for_consent(case_id, TEACHER)
    stafett.api(
        "case",
        f"/cases/{case_id}/appoint-baton-holder",
        HEADTEACHER,
        {"holder": TEACHER.person, "service": "skole-lia"},
    )
    stafett.api(
        "case",
        f"/cases/{case_id}/escalate",
        TEACHER,
        {
            "to_level": 1,
            "reason": "Lesekurs på skolen, avtalt med mor.",
            "participants": [mother.person],
        },
    )
    roster = f"/cases/{case_id}/roster"
    wait_until(
        "the meeting service knows the case at level 1",
        lambda: (
            stafett.platform.get("meeting", roster, TEACHER).status_code == 200
            and stafett.platform.get("meeting", roster, TEACHER).json()["level"] == 1
        ),
    )
    tomorrow = datetime.now(OSLO).replace(hour=14, minute=0, second=0, microsecond=0) + timedelta(
        days=1
    )
    meeting = stafett.api(
        "meeting",
        "/meetings",
        TEACHER,
        {
            "case_id": str(case_id),
            "meeting_type": "cooperation",
            "starts_at": tomorrow.isoformat(),
            "ends_at": (tomorrow + timedelta(hours=1)).isoformat(),
            "place": "Lia skole, møterom 2",
        },
    )
    stafett.api(
        "meeting",
        f"/meetings/{meeting['id']}/invite",
        TEACHER,
        {"person": mother.person, "kind": "guardian"},
    )
    assert stafett.platform.get("projection", f"/cases/{case_id}/relay-log", PPT).status_code == 200
    return case_id


def test_a_guardian_reads_the_case_and_the_access_log_and_withdraws_consent_for_one_service(
    stafett: Stafett, person: Callable[..., Person]
) -> None:
    # Given a case about Noah at level 1, with his mother's consent to the school and PPT
    case_id = a_case_at_level_1(stafett)
    mother = stafett.child("noah").guardians[0]
    # When his mother signs in on her phone through the development provider
    guardian = person(phone=True)
    guardian.sign_in(mother)
    page = guardian.page
    # Then she lands on her children's cases, and finds Noah's
    expect(page).to_have_title("Mine saker – Stafett")
    guardian.photograph("guardian-my-cases")
    page.get_by_role("link", name=f"ref. {str(case_id)[:8]}").click()
    guardian.check()
    # And reads the case: the level, the baton holder, the next meeting, the log in plain words
    expect(page).to_have_title("Sak – Stafett")
    state = page.locator("section.state")
    expect(state).to_contain_text("Nivå 1 – tiltak i egen tjeneste")
    expect(state).to_contain_text("laerer-lia (Lia skole)")
    expect(page.locator("main")).to_contain_text("Barn: Noah Berg")
    log = page.locator("ol.log")
    expect(log).to_contain_text("laerer-lia (Lia skole) meldte en bekymring ved Lia skole.")
    expect(log).to_contain_text("Sliter med å lese, og gruer seg til skolen.")
    expect(log).to_contain_text("flyttet saken opp til Nivå 1 – tiltak i egen tjeneste")
    expect(log).to_contain_text(
        "ga skriftlig samtykke til Lia skole, Pedagogisk-psykologisk tjeneste (PPT)"
    )
    for bookkeeping in (
        "CaseRosterNoted",
        "ConsentNoted",
        "DeliveryAttempted",
        "NotificationRequested",
        '{"',
    ):
        expect(page.locator("main")).not_to_contain_text(bookkeeping)
    expect(page.locator("section", has_text="Kommende møter")).to_contain_text("Samarbeidsmøte")
    with page.expect_download() as calendar:
        page.get_by_role("link", name="Legg i kalenderen (.ics)").first.click()
    assert "BEGIN:VEVENT" in Path(calendar.value.path()).read_text()
    guardian.photograph("guardian-case")
    # When she opens who read the case
    page.get_by_role("link", name="Hvem har lest saken").click()
    guardian.check()
    # Then she sees PPT's read, when, and that it was allowed (in words)
    expect(page).to_have_title("Hvem har lest saken – Stafett")
    reads = page.locator("ol.readings")
    expect(reads).to_contain_text("ppt-radgiver (Pedagogisk-psykologisk tjeneste (PPT))")
    expect(reads).to_contain_text("stafettloggen")
    expect(reads).to_contain_text("Fikk lese")
    guardian.photograph("guardian-access-log")
    # When she withdraws her consent for PPT only, confirming what it means
    page.get_by_role("link", name="Tilbake").click()
    page.get_by_role("link", name="Trekk samtykket tilbake").click()
    guardian.check()
    page.get_by_label("Hva trekkes tilbake").select_option("some")
    page.get_by_label("Pedagogisk-psykologisk tjeneste (PPT)").check()
    guardian.submit("Gå videre")
    expect(page.locator(".review")).to_contain_text(
        "Du trekker samtykket tilbake for: Pedagogisk-psykologisk tjeneste (PPT)."
    )
    guardian.photograph("guardian-withdraw-consent")
    guardian.submit("Trekk tilbake")
    # Then the case says so, and the consent covers the school alone
    expect(page.locator(".flash")).to_have_text("Samtykket er trukket tilbake.")
    consent = page.locator("section", has_text="Samtykke").locator("ul.cards li").first
    guardian.until(
        "the consent covers the school alone",
        lambda: "Gjelder nå for: Lia skole" in consent.inner_text(),
    )
    expect(page.locator("ol.log")).to_contain_text(
        "trakk samtykket tilbake for Pedagogisk-psykologisk tjeneste (PPT)."
    )


def test_a_concern_is_raised_escalated_with_consent_and_a_meeting_s_decision_moves_it(
    stafett: Stafett, person: Callable[..., Person]
) -> None:
    emma = stafett.child("emma")
    # Given the kindergarten's teacher at her desk
    teacher = person()
    teacher.sign_in("ped-solsikke")
    page = teacher.page
    expect(page).to_have_title("Arbeidsliste – Stafett")
    # When she raises a concern with a national id the register does not know
    page.get_by_role("link", name="Meld bekymring").first.click()
    teacher.check()
    page.get_by_label("Barnets fødselsnummer").fill("01018099999")
    page.get_by_label("Hva er du bekymret for?").fill(
        "Emma har vært stille og lei seg i flere uker."
    )
    teacher.submit("Meld bekymringen")
    # Then the register's answer is next to the field, and what she wrote is still there
    expect(page.locator(".field.has-error")).to_contain_text("Barnets fødselsnummer")
    expect(page.get_by_label("Hva er du bekymret for?")).to_have_value(
        "Emma har vært stille og lei seg i flere uker."
    )
    teacher.photograph("staff-concern-refused")
    # When she corrects it
    page.get_by_label("Barnets fødselsnummer").fill(emma.national_id)
    teacher.submit("Meld bekymringen")
    # Then the new case is at level 0, with her concern in the log
    expect(page.locator("section.state")).to_contain_text("Nivå 0 – undring")
    expect(page.locator("ol.log")).to_contain_text("Emma har vært stille og lei seg i flere uker.")
    case_path = page.url.removeprefix(stafett.web).split("?")[0]
    case_id = UUID(case_path.rsplit("/", 1)[1])
    # And the guide's next step is to share the worry, its form the guide's wondering note
    guide = page.locator("section.guide")
    expect(guide).to_contain_text("Undringsnotat")
    # When she shares it with the head on that form
    guide.get_by_label("Delt med").fill("styrer-solsikke")
    guide.get_by_label("Hva undrer du deg over, konkret?").fill("Hun leker mest alene.")
    teacher.submit("Registrer")
    # Then the log tells it, and the guide's next step is the wondering conversation
    expect(page.locator("ol.log")).to_contain_text("Hun leker mest alene.")
    expect(guide).to_contain_text("Samtalemal: undringssamtale med foresatte")
    teacher.sign_out()

    # Given the kindergarten's head, who follows the notification's link to the case
    head = person()
    head.sign_in("styrer-solsikke")
    page = head.page
    head.open(case_path)
    # When she records the mother's written consent to the kindergarten and PPT
    page.get_by_role("link", name="Registrer samtykke").click()
    head.check()
    page.get_by_label("Hvem samtykker").select_option("guardian")
    page.get_by_label("Forelderens (eller barnets) person-id").fill(emma.guardians[0])
    page.get_by_label("Solsikken barnehage").check()
    page.get_by_label("Pedagogisk-psykologisk tjeneste (PPT)").check()
    page.get_by_label("Samarbeid").check()
    page.get_by_label("Form", exact=True).select_option("written")
    page.get_by_label("Dokumentreferanse").fill("solsikke/2026/0042")
    page.get_by_label("Dokumentets SHA-256").fill(hashlib.sha256(b"signert").hexdigest())
    head.submit("Gå videre")
    expect(page.locator(".review")).to_contain_text(f"Samtykket er gitt av {emma.guardians[0]}.")
    head.submit("Registrer samtykket")
    expect(page.locator(".flash")).to_have_text("Samtykket er registrert.")
    stafett.wait_for_consent(
        case_id,
        Actor(person="styrer-solsikke", role=Role.UNIT_LEADER, service="barnehage-solsikke"),
    )
    # And makes the teacher baton holder, and moves the case to level 1
    page.get_by_text("Vis alle handlinger i saken").click()
    page.get_by_role("link", name="Utnevn stafettholder").click()
    head.check()
    page.get_by_label("Stafettholder (person-id)").fill("ped-solsikke")
    page.get_by_label("Tjeneste").select_option("barnehage-solsikke")
    head.submit("Lagre")
    page.get_by_text("Vis alle handlinger i saken").click()
    page.get_by_role("link", name="Flytt saken opp").click()
    head.check()
    page.get_by_label("Til nivå").select_option("1")
    page.get_by_label("Begrunnelse").fill("Tiltak i barnehagen, avtalt med mor.")
    page.get_by_label("Deltakere").fill(f"styrer-solsikke\n{emma.guardians[0]}")
    head.submit("Lagre")
    # Then the case is at level 1
    expect(page.locator("section.state")).to_contain_text("Nivå 1 – tiltak i egen tjeneste")
    wait_until(
        "the meeting service knows the case at level 1",
        lambda: (
            stafett.platform.get("meeting", f"/cases/{case_id}/roster", HEAD).json().get("level")
            == 1
        ),
    )
    # When she calls a cooperation meeting, invites the mother and PPT, and holds it
    page.get_by_role("link", name="Kall inn til møte").click()
    head.check()
    page.get_by_label("Type møte").select_option("cooperation")
    starts = datetime.now(OSLO).replace(second=0, microsecond=0) + timedelta(minutes=5)
    page.get_by_label("Starter").fill(starts.strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Slutter").fill((starts + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"))
    page.get_by_label("Videolenke").fill("https://video.example/solsikke/42")
    head.submit("Kall inn")
    expect(page).to_have_title("Møte – Stafett")
    for kind, who, unit in (
        ("guardian", emma.guardians[0], None),
        ("service", "ppt-radgiver", "ppt"),
    ):
        page.get_by_role("link", name="Inviter").click()
        head.check()
        page.get_by_label("Hvem inviteres").select_option(kind)
        page.get_by_label("Person-id").fill(who)
        if unit:
            page.get_by_label("Tjeneste").select_option(unit)
        head.submit("Lagre")
    page.get_by_role("link", name="Møtet er holdt").click()
    head.check()
    page.get_by_label("Hvem deltok").fill(f"styrer-solsikke\n{emma.guardians[0]}\nppt-radgiver")
    head.submit("Lagre")
    # And records its decision: the case moves to level 2
    page.get_by_role("link", name="Registrer vedtak").click()
    head.check()
    page.get_by_label("Vedtak", exact=True).select_option("move_to_level")
    page.get_by_label("Til nivå").select_option("2")
    page.get_by_label("Begrunnelse").fill("PPT utreder språket sammen med barnehagen.")
    head.submit("Lagre")
    expect(page.locator("main")).to_contain_text("PPT utreder språket sammen med barnehagen.")
    head.photograph("staff-meeting")
    # Then the case service carries the decision out: the case is at level 2
    head.open(case_path)
    state = page.locator("section.state")
    head.until("the case is at level 2", lambda: "Nivå 2" in state.inner_text())
    expect(state).to_contain_text("Nivå 2 – samarbeid med andre tjenester")
    expect(page.locator("ol.log")).to_contain_text(
        "skrev møtets vedtak: saken flyttes til Nivå 2 – samarbeid med andre tjenester."
    )
    head.photograph("staff-case")
    # And the head's overview and the figures show it, as tables and charts
    page.get_by_role("link", name="Enhetsoversikt").click()
    head.check()
    expect(page.locator("table")).to_contain_text("Nivå 2 – samarbeid med andre tjenester")
    head.photograph("leader-overview")
    page.get_by_role("link", name="Styringstall").click()
    head.check()
    expect(page.locator("svg.chart").first).to_be_visible()
    head.photograph("leader-figures")


def test_an_auditor_states_a_purpose_and_sees_a_case_as_it_was(
    stafett: Stafett, person: Callable[..., Person]
) -> None:
    # Given a concern raised, and a moment later the case closed
    sara = stafett.child("sara")
    case_id = UUID(
        stafett.api(
            "case",
            "/cases",
            Actor(person="ped-lia", role=Role.EMPLOYEE, service="barnehage-lia"),
            {"national_id": sara.national_id, "concern": "Sara kommer ofte sulten i barnehagen."},
        )["id"]
    )
    time.sleep(1.5)
    before = datetime.now(OSLO)
    time.sleep(1.5)
    stafett.api(
        "case",
        f"/cases/{case_id}/close-case",
        Actor(person="styrer-lia", role=Role.UNIT_LEADER, service="barnehage-lia"),
        {"reason": "Far forklarte: Sara spiser frokost sent. Ingen videre bekymring."},
    )
    # When the county's supervisor finds the case, stating why
    auditor = person(locale="en-GB")
    auditor.sign_in("tilsyn-1")
    page = auditor.page
    expect(page).to_have_title("Audit: find a case – Stafett")
    page.get_by_label("Case reference").fill(str(case_id))
    page.get_by_label("Purpose").fill("Supervision of follow-up in kindergartens, case 2026/14")
    auditor.photograph("auditor-find")
    auditor.submit("Open the case")
    # Then the case is shown, with the purpose stated
    expect(page.locator("main")).to_contain_text("Stated purpose: Supervision of follow-up")
    expect(page.locator("section.state")).to_contain_text("closed")
    expect(page.locator("ol.log")).to_contain_text("closed the case at Level 0")
    # When they ask for the case as it was before it closed
    page.get_by_label("Moment").fill(before.strftime("%Y-%m-%dT%H:%M:%S"))
    auditor.submit("Show")
    # Then the log ends with the concern, and says it is the case as it was
    expect(page.locator(".notice")).to_contain_text("The case as it was on")
    log = page.locator("ol.log")
    expect(log).to_contain_text("Sara kommer ofte sulten i barnehagen.")
    expect(log).not_to_contain_text("closed the case")
    expect(page.locator("section.state")).to_contain_text("open")
    auditor.photograph("auditor-as-of")
    # And the access log records the auditor's reads with the purpose
    page.get_by_role("link", name="Who read the case").click()
    auditor.check()
    expect(page.locator("ol.readings")).to_contain_text("Supervision of follow-up in kindergartens")
