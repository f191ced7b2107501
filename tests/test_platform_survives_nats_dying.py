"""nats-server dies under `stafett up` while commands flow, and the platform heals by itself.

Given `stafett up` in its own process (run as tests/test_platform_end_to_end.py runs it) and a
few cases, when clients on several threads keep noting bright spots on them, each request under
a correlation id of its own, and nats-server is killed (SIGKILL) in the middle: then `stafett up`
starts it again on the same data and says so, without restarting the services; while it is away
the case service answers 503 with Retry-After, never 500, and no request takes over 2 s; soon
after it is back the commands succeed again; and every command answered 201 has its event in the
CASE stream exactly once. And a service whose nats-server is gone for good, with requests in
flight, stops within seconds when asked, rather than after waiting for the server.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from uuid import uuid4

import httpx

from stafett_contracts.identity import Actor, Role
from stafett_runtime.auth import DevelopmentKey
from stafett_runtime.register import FileRegister
from stafett_runtime.testing import a_child
from tests.platform import Platform as Services
from tests.test_platform_end_to_end import Mailbox, Platform, mailbox, stream, wait_until

__all__ = ["mailbox"]  # the fixture this test takes from the end-to-end test

TEACHER = Actor(person="laerer-lia", role=Role.EMPLOYEE, service="skole-lia")
CLIENTS = 4  # threads, each noting bright spots on a case of its own
BEFORE_THE_KILL = 60  # commands acknowledged before nats-server is killed
AFTER_IT_IS_BACK = 60  # and after it is back
SLOWEST_ANSWER = 2.0  # seconds: no request may wait longer, whatever NATS does
SERVING_AGAIN_WITHIN = 15.0  # seconds after nats-server is back
NO_ANSWER = 0  # the status noted when the service closed the connection without one
STOPS_WITHIN = 5.0  # seconds from SIGTERM with nats-server gone (NATS_TIMEOUT is 10)


@dataclass(frozen=True)
class Answer:
    correlation_id: str
    status: int
    seconds: float
    retry_after: str | None
    sent_at: float  # time.monotonic()


class Clients:
    """Threads that each note bright spots on their own case until stopped, and what they got."""

    def __init__(self, url: str, token: str, cases: list[str]) -> None:
        self.answers: list[Answer] = []
        self._url, self._token = url, token
        self._stopping = threading.Event()
        self._threads = [
            threading.Thread(target=self._note_bright_spots, args=(number, case_id))
            for number, case_id in enumerate(cases)
        ]

    def _note_bright_spots(self, client: int, case_id: str) -> None:
        with httpx.Client(timeout=30) as http:
            for count in range(1_000_000):
                if self._stopping.is_set():
                    return
                correlation_id = f"nats-dies-{client}-{count}"
                sent_at = time.monotonic()
                try:
                    answer = http.post(
                        f"{self._url}/cases/{case_id}/note-bright-spot",
                        json={"note": f"Lysglimt {count}"},
                        headers={
                            "Authorization": f"Bearer {self._token}",
                            "X-Correlation-Id": correlation_id,
                        },
                    )
                    status, retry_after = answer.status_code, answer.headers.get("Retry-After")
                except httpx.TransportError:
                    status, retry_after = NO_ANSWER, None
                seconds = time.monotonic() - sent_at
                self.answers.append(Answer(correlation_id, status, seconds, retry_after, sent_at))
                self._stopping.wait(0.02)  # a steady flow, not a benchmark

    def acknowledged(self, since: float = 0.0) -> int:
        return sum(1 for a in list(self.answers) if a.status == 201 and a.sent_at >= since)

    @contextmanager
    def flowing(self) -> Iterator[Clients]:
        for thread in self._threads:
            thread.start()
        try:
            yield self
        finally:
            self._stopping.set()
            for thread in self._threads:
                thread.join(timeout=60)


def nats_server_pid(platform: Platform) -> int:
    for pid in platform.descendants():
        try:
            program = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0]
        except OSError:
            continue
        if program.endswith(b"nats-server"):
            return pid
    raise AssertionError("no nats-server under stafett up")


def test_when_nats_server_dies_stafett_up_restarts_it_and_no_acknowledged_command_is_lost(
    tmp_path: Path, mailbox: Mailbox
) -> None:
    data_dir = tmp_path / "data"
    platform = Platform(data_dir, smtp_port=mailbox.port)
    try:
        answers = kill_nats_server_while_commands_flow(platform, data_dir)
        # Then every command acknowledged is in the CASE stream exactly once, and none twice
        noted = Counter(
            event["correlation_id"]
            for event in stream(platform, "case")
            if event["type"] == "BrightSpotNoted"
        )
        acknowledged = {a.correlation_id for a in answers if a.status == 201}
        assert {c: noted[c] for c in acknowledged if noted[c] != 1} == {}
        assert [c for c, times in noted.items() if times > 1] == []
    finally:
        output = platform.stop()
    assert platform.process.returncode == 0, output


def cases_of_a_pupil(case_url: str, token: str, register: FileRegister) -> list[str]:
    """A pupil in the register, and a case about them for each client."""
    child = a_child("mor-1", born=date(2016, 8, 1))
    register.add(child)
    return [
        httpx.post(
            f"{case_url}/cases",
            json={"child_id": str(child.child_id), "concern": f"Bekymring {uuid4().hex[:6]}"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        ).json()["id"]
        for _ in range(CLIENTS)
    ]


def kill_nats_server_while_commands_flow(platform: Platform, data_dir: Path) -> list[Answer]:
    key = DevelopmentKey.load_or_create(data_dir / "dev-signing-key.pem")  # the services' key
    token = key.mint(TEACHER)
    case_url = platform.url("case")
    # Given a pupil in the register, and a few cases about them
    cases = cases_of_a_pupil(case_url, token, FileRegister(data_dir / "register.json"))
    # And clients noting bright spots on them, a steady flow
    with Clients(case_url, token, cases).flowing() as clients:
        wait_until("commands flow", lambda: clients.acknowledged() >= BEFORE_THE_KILL)
        services_before = {name: platform.pid_of(name) for name in ("case", "notify")}

        # When nats-server is killed in the middle of it
        os.kill(nats_server_pid(platform), signal.SIGKILL)

        # Then stafett up says so, and starts it again on the same data
        said = platform.wait_for_line("nats-server exited with")
        assert "nats-server exited with code -9; restarting it in 1 s" in said
        platform.wait_for_line("nats-server is back")
        back_at = time.monotonic()
        # And the commands succeed again soon, from the same service processes
        wait_until(
            "commands succeed again",
            lambda: clients.acknowledged(since=back_at) > 0,
            timeout=SERVING_AGAIN_WITHIN,
        )
        assert {name: platform.pid_of(name) for name in services_before} == services_before
        wait_until(
            "commands flow again",
            lambda: clients.acknowledged(since=back_at) >= AFTER_IT_IS_BACK,
        )
    answers = clients.answers

    # And while it was away the service said so at once: 503 with Retry-After, never 500
    statuses = Counter(a.status for a in answers)
    assert statuses.keys() <= {201, 503}, statuses
    unavailable = [a for a in answers if a.status == 503]
    assert unavailable, "no request met nats-server's absence"
    assert all(a.retry_after for a in unavailable)
    # And no request waited on the dead server
    assert [a for a in answers if a.seconds > SLOWEST_ANSWER] == []
    return answers


def test_a_service_whose_nats_server_is_gone_stops_at_once_when_asked(
    platform: Services,
) -> None:
    # Given every service running, and commands in flight on the case service
    platform.start()
    token = platform.key.mint(TEACHER)
    cases = cases_of_a_pupil(platform.url("case"), token, platform.register)
    with Clients(platform.url("case"), token, cases).flowing() as clients:
        wait_until("commands flow", lambda: clients.acknowledged() >= CLIENTS)
        # When nats-server goes for good, and each service is asked to stop (SIGTERM) meanwhile
        platform.nats.kill()
        for run in platform.services.values():
            run.process.terminate()
        # Then each stops within seconds: no request, close or policy waits for the server
        still_running = []
        for name, run in platform.services.items():
            try:
                run.process.wait(timeout=STOPS_WITHIN)
            except subprocess.TimeoutExpired:
                still_running.append(name)
    assert still_running == []
