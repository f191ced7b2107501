"""The whole platform, as a new user runs it: `stafett up`, then a case driven over HTTP only.

Given `stafett up` running in its own process (embedded nats-server and all five services) and
a real SMTP server for the notify service, when an integrator takes one case from a concern
through consent, measures, a meeting whose decision escalates it, a coordinator, a baton
handover, de-escalation and closing, and the notify service is killed in the middle, then the
platform restarts it, the projection converges on the case as its events leave it, `stafett
verify` finds every stream sound, no notification reaches anyone twice, and Ctrl-C leaves no
process behind.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from email import message_from_bytes
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import httpx
import msgspec
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from eventsourcing.utils import Environment

from stafett_cli.datafolder import operator_login
from stafett_contracts.identity import Actor, Role
from stafett_runtime.auth import DevelopmentKey
from stafett_runtime.jetstream import JetStreamFactory
from stafett_runtime.natsserver import free_port, free_ports, port_is_free
from stafett_runtime.register import FileRegister
from stafett_runtime.testing import a_child

SCHOOL = "skole-lia"
TEACHER = Actor(person="laerer-lia", role=Role.EMPLOYEE, service=SCHOOL)
HEADTEACHER = Actor(person="rektor-lia", role=Role.UNIT_LEADER, service=SCHOOL)
COORDINATOR = Actor(person="koordinator-lia", role=Role.EMPLOYEE, service=SCHOOL)
GUARDIAN = Actor(person="mor-noah", role=Role.GUARDIAN)
PPT = Actor(person="ppt-radgiver", role=Role.EMPLOYEE, service="ppt")
SERVICES = ("consent", "case", "meeting", "notify", "projection")
CONVERGES_WITHIN = 60.0  # seconds; generous, for a shared 2-core machine


class Mailbox:
    """An SMTP server's handler that keeps every message it is given."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[tuple[tuple[str, ...], bytes]] = []

    async def handle_DATA(  # noqa: N802 (the name aiosmtpd calls)
        self, server: SMTP, session: Session, envelope: Envelope
    ) -> str:
        content = envelope.original_content or b""
        self.messages.append((tuple(envelope.rcpt_tos), content))
        return "250 OK"


@pytest.fixture
def mailbox() -> Iterator[Mailbox]:
    box = Mailbox(free_port())
    controller = Controller(box, hostname="127.0.0.1", port=box.port)
    controller.start()
    yield box
    controller.stop()


class Platform:
    """`stafett up` in a subprocess; its output read on a thread so the pipe never fills."""

    def __init__(self, data_dir: Path, smtp_port: int) -> None:
        self.data_dir = data_dir
        self.nats_port = free_port()
        self.port_base = free_ports(len(SERVICES) + 1)  # the identity provider, then the services
        env = {
            **os.environ,
            "STAFETT_DATA_DIR": str(data_dir),
            "STAFETT_NATS_PORT": str(self.nats_port),
            "STAFETT_PORT_BASE": str(self.port_base),
            "STAFETT_NOTIFY_SMTP_PORT": str(smtp_port),
            "STAFETT_NOTIFY_INTERVAL": "1",
            "STAFETT_NOTIFY_BACKOFF_SECONDS": "1",
            # A send cut off by the kill below is settled (as failed, never repeated) this soon.
            "STAFETT_NOTIFY_ATTEMPT_TIMEOUT_SECONDS": "5",
        }
        self.process = subprocess.Popen(
            [sys.executable, "-m", "stafett_cli.main", "up"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.wait_for_line("Press Ctrl-C", timeout=120)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for_line(self, start: str, timeout: float = CONVERGES_WITHIN) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = [line for line in self.lines if start in line]
            if found:
                return found[-1]
            if self.process.poll() is not None and not self._reader.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"no line with {start!r}; stafett up said:\n{''.join(self.lines)}")

    @property
    def nats_url(self) -> str:
        return f"nats://127.0.0.1:{self.nats_port}"

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port_base + SERVICES.index(service) + 1}"

    def descendants(self) -> set[int]:
        """Every process `stafett up` started (nats-server, services), from /proc."""
        found: set[int] = set()
        frontier = [self.process.pid]
        while frontier:
            pid = frontier.pop()
            try:
                children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
            except OSError:
                continue
            for child in map(int, children):
                found.add(child)
                frontier.append(child)
        return found

    def pid_of(self, service: str) -> int:
        for pid in self.descendants():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"stafett_{service}".encode() in cmdline:
                return pid
        raise AssertionError(f"no {service} process under stafett up")

    def stop(self) -> str:
        self.process.send_signal(signal.SIGINT)
        self.process.wait(timeout=60)
        self._reader.join(timeout=10)
        return "".join(self.lines)


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"  # a zombie has exited; only its exit status is left


def wait_until(what: str, holds: Callable[[], bool], timeout: float = CONVERGES_WITHIN) -> None:
    deadline = time.monotonic() + timeout
    while not holds():
        assert time.monotonic() < deadline, f"not within {timeout:.0f} s: {what}"
        time.sleep(0.2)


def stream(platform: Platform, service: str) -> list[dict[str, Any]]:
    """Every event in a service's stream, in order, as JSON, read as the operator user."""
    login = operator_login(platform.data_dir)
    assert login is not None, "stafett up made no NATS users"
    env = Environment(
        service,
        {
            "NATS_URL": platform.nats_url,
            "NATS_USER": login.user,
            "NATS_PASSWORD": login.password,
            "CREATE_TABLE": "no",
        },
    )
    factory = JetStreamFactory(env)
    try:
        found = factory.application_recorder().select_notifications(start=1, limit=100_000)
        return [msgspec.json.decode(n.state) for n in found]
    finally:
        factory.close()


def test_a_whole_case_over_http_survives_a_crash_and_the_platform_stops_clean(
    tmp_path: Path, mailbox: Mailbox
) -> None:
    data_dir = tmp_path / "data"
    platform = Platform(data_dir, smtp_port=mailbox.port)
    try:
        drive_a_case_and_check(platform, data_dir, mailbox)
        started = platform.descendants()
        assert started, "stafett up has no processes to stop"
    finally:
        output = platform.stop()

    # Then Ctrl-C stopped everything it started
    assert platform.process.returncode == 0, output
    assert "stopped." in output
    assert [pid for pid in started if alive(pid)] == []
    assert port_is_free("127.0.0.1", platform.nats_port)


def drive_a_case_and_check(platform: Platform, data_dir: Path, mailbox: Mailbox) -> None:
    key = DevelopmentKey.load_or_create(data_dir / "dev-signing-key.pem")  # the services' key
    http = httpx.Client(timeout=15)
    consent, case, meeting = platform.url("consent"), platform.url("case"), platform.url("meeting")
    projection = platform.url("projection")

    def headers(actor: Actor) -> dict[str, str]:
        return {"Authorization": f"Bearer {key.mint(actor)}"}

    def post(actor: Actor, url: str, body: dict[str, Any]) -> Any:
        answer = http.post(url, json=body, headers=headers(actor))
        assert answer.status_code == 201, f"{url}: {answer.status_code} {answer.text}"
        return answer.json()

    def act(actor: Actor, command: str, body: dict[str, Any] | None = None) -> None:
        post(actor, f"{case}/cases/{case_id}/{command}", body or {})

    def case_types() -> list[str]:
        return [e["type"] for e in stream(platform, "case") if e["aggregate_id"] == cid]

    def roster_level() -> int | None:
        answer = http.get(f"{meeting}/cases/{case_id}/roster", headers=headers(TEACHER))
        return int(answer.json()["level"]) if answer.status_code == 200 else None

    # Given a pupil in the population register, and a teacher's concern about them
    child = a_child(GUARDIAN.person, born=date(2015, 3, 2), name="Noah Hansen")
    FileRegister(data_dir / "register.json").add(child)
    raised = post(
        TEACHER,
        f"{case}/cases",
        {"child_id": str(child.child_id), "concern": "Mye fravær og uro i timene."},
    )
    case_id = UUID(raised["id"])
    cid = str(case_id)

    # And the guardian's written consent to cooperate with PPT
    post(
        GUARDIAN,
        f"{consent}/consents",
        {
            "case_id": cid,
            "given_by": {"kind": "guardian", "person": GUARDIAN.person},
            "services": [SCHOOL, "ppt"],
            "purposes": ["cooperation", "referral"],
            "valid_from": datetime.now(UTC).isoformat(),
            "evidence": {
                "form": "written",
                "document_ref": "arkiv/2026/noah",
                "document_sha256": hashlib.sha256(b"signert samtykke").hexdigest(),
            },
        },
    )
    wait_until("the case notes the consent", lambda: "ConsentNoted" in case_types())

    # And the school's own measures at level 1
    act(HEADTEACHER, "appoint-baton-holder", {"holder": TEACHER.person, "service": SCHOOL})
    act(
        TEACHER,
        "escalate",
        {"to_level": 1, "reason": "Tiltak i skolen", "participants": [GUARDIAN.person]},
    )
    act(TEACHER, "define-problem", {"description": "Uro etter storefri.", "with_guardians": True})
    measure_id = str(uuid4())
    evaluation = (date.today() + timedelta(days=42)).isoformat()
    act(
        TEACHER,
        "plan-measure",
        {
            "measure_id": measure_id,
            "description": "Fast pause med kontaktlærer etter storefri.",
            "responsible": TEACHER.person,
            "service": SCHOOL,
            "evaluation_date": evaluation,
        },
    )
    act(
        TEACHER,
        "evaluate-measure",
        {"measure_id": measure_id, "outcome": "partly", "notes": "Roligere de fleste dager."},
    )

    # When the baton holder calls a cooperation meeting with the guardian and PPT
    wait_until("the meeting service knows the case at level 1", lambda: roster_level() == 1)
    starts = datetime.now(UTC) + timedelta(days=7)
    meeting_id = post(
        TEACHER,
        f"{meeting}/meetings",
        {
            "case_id": cid,
            "meeting_type": "cooperation",
            "starts_at": starts.isoformat(),
            "ends_at": (starts + timedelta(hours=1)).isoformat(),
            "place": "Lia skole, møterom 2",
            "agenda": ["Hvordan går det?", "Trengs mer hjelp?"],
        },
    )["id"]
    at_meeting = f"{meeting}/meetings/{meeting_id}"
    post(TEACHER, f"{at_meeting}/invite", {"person": GUARDIAN.person, "kind": "guardian"})
    post(
        TEACHER, f"{at_meeting}/invite", {"person": PPT.person, "kind": "service", "service": "ppt"}
    )

    # And the notify service is killed while it has invitations to send
    killed = platform.pid_of("notify")
    os.kill(killed, signal.SIGKILL)

    # And the meeting is held and decides to move the case to level 2
    attended = [TEACHER.person, GUARDIAN.person, PPT.person]
    post(TEACHER, f"{at_meeting}/record-held", {"attended": attended})
    post(TEACHER, f"{at_meeting}/record-minutes", {"minutes": "Enige om å hente inn PPT."})
    decision = {
        "decision_id": str(uuid4()),
        "kind": "move_to_level",
        "to_level": 2,
        "reason": "PPT utreder sammen med skolen.",
        "participants": attended,
    }
    post(TEACHER, f"{at_meeting}/record-decision", decision)

    # Then the platform restarts the notify service and says so
    assert "notify restarted" in platform.wait_for_line("notify restarted")
    assert platform.pid_of("notify") != killed
    # And the case service escalates the case by itself
    wait_until("the decision escalates the case", lambda: case_types().count("Escalated") == 2)

    # When PPT takes the baton, a coordinator is assigned, and the case climbs to level 3
    act(TEACHER, "send-referral", {"to_service": "ppt", "purpose": "Utredning av konsentrasjon"})
    act(PPT, "join-agency", {"service": "ppt"})
    act(TEACHER, "offer-baton", {"to_person": PPT.person, "to_service": "ppt"})
    act(PPT, "accept-baton")
    act(HEADTEACHER, "assign-coordinator", {"coordinator": COORDINATOR.person, "service": SCHOOL})
    act(PPT, "escalate", {"to_level": 3, "reason": "Sammensatt behov", "participants": attended})
    # And, helped, it comes down to level 1 and is closed
    act(PPT, "end-measure", {"measure_id": measure_id, "reason": "Virket"})
    act(COORDINATOR, "de-escalate", {"to_level": 1, "reason": "Trives nå"})
    act(HEADTEACHER, "close-case", {"reason": "Ingen uro lenger", "participants": attended})

    expected_case_events = [
        "ConcernRaised",
        "ConsentNoted",
        "BatonHolderAppointed",
        "Escalated",
        "ProblemDefined",
        "MeasurePlanned",
        "MeasureEvaluated",
        "Escalated",  # by the meeting's decision
        "ReferralSent",
        "AgencyJoined",
        "BatonHandoverOffered",
        "BatonHandedOver",
        "CoordinatorAssigned",
        "Escalated",
        "MeasureEnded",
        "DeEscalated",
        "CaseClosed",
    ]
    assert case_types() == expected_case_events

    # Then the projection converges on the case as its events leave it
    def relay_log() -> dict[str, Any]:
        answer = http.get(f"{projection}/cases/{case_id}/relay-log", headers=headers(GUARDIAN))
        return answer.json() if answer.status_code == 200 else {}

    def converged() -> bool:
        log = relay_log()
        entries = log.get("entries", [])
        return [e["type"] for e in entries if e["stream"] == "CASE"] == expected_case_events

    wait_until("the projection shows every case event", converged)
    log = relay_log()
    assert log["state"]["status"] == "closed"
    assert log["state"]["level"] == 1
    assert (log["state"]["holder"], log["state"]["holder_service"]) == (PPT.person, "ppt")
    assert log["state"]["coordinator"] == COORDINATOR.person
    types = [e["type"] for e in log["entries"]]
    for entry in ("ConsentGiven", "MeetingScheduled", "MinutesRecorded", "DecisionRecorded"):
        assert entry in types, f"{entry} missing from the relay log: {types}"
    # And a service the consent never covered is refused
    outsider = Actor(person="bup-psykolog", role=Role.EMPLOYEE, service="bup")
    refused = http.get(f"{projection}/cases/{case_id}/relay-log", headers=headers(outsider))
    assert refused.status_code == 403

    # Then every notification that was asked for is settled, and none reached anyone twice
    def notify_events() -> list[dict[str, Any]]:
        return stream(platform, "notify")

    def settled() -> bool:
        events = notify_events()
        requested = {e["aggregate_id"] for e in events if e["type"] == "NotificationRequested"}
        outcomes = {
            e["aggregate_id"]
            for e in events
            if e["type"] in ("NotificationSent", "NotificationFailed")
        }
        return bool(requested) and requested <= outcomes

    wait_until("every notification is sent or has failed", settled)
    events = notify_events()
    requested = {
        e["aggregate_id"]: e
        for e in events
        if e["type"] == "NotificationRequested" and e.get("case_id") == cid
    }
    invited = {r["recipient"] for r in requested.values() if r["reason"] == "meeting.scheduled"}
    assert {GUARDIAN.person, PPT.person} <= invited, requested
    sent_per_notification = Counter(
        e["aggregate_id"] for e in events if e["type"] == "NotificationSent"
    )
    assert [n for n, times in sent_per_notification.items() if times > 1] == []
    message_ids = Counter(
        message_from_bytes(content)["Message-ID"] for _, content in mailbox.messages
    )
    assert message_ids, "no mail arrived"
    assert [m for m, times in message_ids.items() if times > 1] == []
    # (an attempt cut off by the kill is not sent again: it may or may not have arrived)
    cut_off = [
        e for e in events if e["type"] == "NotificationFailed" and "interrupted" in e["error"]
    ]
    mails = sum(len(rcpts) for rcpts, _ in mailbox.messages)
    sent = sum(sent_per_notification.values())
    assert sent <= mails <= sent + len(cut_off)

    # And `stafett verify` finds every stream sound
    verify = subprocess.run(
        [sys.executable, "-m", "stafett_cli.main", "verify", "--nats", platform.nats_url],
        env={**os.environ, "STAFETT_DATA_DIR": str(data_dir)},  # it logs in as the operator
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
