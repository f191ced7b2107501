"""The operator commands against a real nats-server: status, verify, export and tail.

The history is written as the services write it: contract events through a ContractApplication
(the JetStream store), a tracking record through the store's process recorder.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID, uuid4

import msgspec
import nats
import pytest
from eventsourcing.persistence import Tracking
from eventsourcing.utils import Environment
from nats.js.api import StorageType, StreamConfig

from stafett_cli.main import main
from stafett_contracts.case import CaseEvent, ConcernRaised, ConcernShared, Escalated
from stafett_contracts.consent import ConsentGiven
from stafett_contracts.envelope import Event
from stafett_contracts.export import example_of
from stafett_runtime.contracts import ContractApplication
from stafett_runtime.jetstream import JetStreamFactory
from stafett_runtime.natsaccess import create_missing_streams
from stafett_runtime.natsserver import free_port
from stafett_runtime.testing import NatsTestServer

STAFETT = [sys.executable, "-m", "stafett_cli.main"]


class CaseLog(ContractApplication):
    name = "case"


class ConsentLog(ContractApplication):
    name = "consent"


E = TypeVar("E", bound=Event)


def event(cls: type[E], aggregate: UUID, version: int, **fields: Any) -> E:
    made = msgspec.structs.replace(
        example_of(cls), event_id=uuid4(), aggregate_id=aggregate, aggregate_version=version
    )
    assert isinstance(made, cls)
    return msgspec.structs.replace(made, **fields) if fields else made


@dataclass
class History:
    url: str
    case_id: UUID
    other_case: UUID
    consent_id: UUID


def env(url: str) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": url}


def write_case(url: str, case_id: UUID, *events: type[CaseEvent]) -> None:
    app = CaseLog(env(url))
    try:
        app.save(*(event(cls, case_id, n) for n, cls in enumerate(events, 1)))
    finally:
        app.close()


def track(url: str, upstream: str, position: int) -> None:
    factory = JetStreamFactory(Environment("case", env(url)))
    try:
        factory.process_recorder().insert_events([], tracking=Tracking(upstream, position))
    finally:
        factory.close()


@pytest.fixture
def history(nats_server: NatsTestServer) -> History:
    """Two cases; a consent for the first; the case service has processed the consent."""
    url = nats_server.url
    case_id, other_case, consent_id = uuid4(), uuid4(), uuid4()
    write_case(url, case_id, ConcernRaised, ConcernShared, Escalated)
    write_case(url, other_case, ConcernRaised)
    consents = ConsentLog(env(url))
    consents.save(event(ConsentGiven, consent_id, 1, case_id=case_id))
    consents.close()
    track(url, "consent", 1)
    return History(url, case_id, other_case, consent_id)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


def test_verify_passes_a_sound_history(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the rest of the platform's streams, made as `stafett up` and deploy's Job make them
    asyncio.run(create_platform_streams(history.url))

    code, out = run(capsys, "verify", "--nats", history.url)

    assert code == 0, out
    assert "OK: 5 events in 7 streams verified." in out
    assert "FAULT" not in out


def test_verify_finds_every_kind_of_fault_in_a_broken_stream(
    nats_server: NatsTestServer, capsys: pytest.CaptureFixture[str]
) -> None:
    url = nats_server.url
    # Given a CASE stream that, unlike the store's own, allows deleting
    asyncio.run(create_deletable_case_stream(url))
    asyncio.run(create_platform_streams(url))
    case_id, broken = uuid4(), uuid4()
    write_case(url, case_id, ConcernRaised, ConcernShared, Escalated)
    # When an event is deleted, a payload is no contract, and a tracking record points nowhere
    asyncio.run(break_stream(url, delete_seq=2, broken=broken))
    track(url, "consent", 7)

    code, out = run(capsys, "verify", "--nats", url)

    assert code == 1
    assert "CASE: allows deleting or purging messages, which the platform's streams deny" in out
    assert "1 sequence(s) deleted: #2, in a stream that denies deletion" in out
    assert f"aggregate {case_id}: version 3 where 2 was due" in out
    assert "the chain is broken" in out  # the event after the deleted one
    assert "does not decode as case.ConcernRaised@1" in out
    assert f"case.events.{broken}.ConcernRaised: unsigned" in out
    assert "tracking of 'consent' points to CONSENT #7, where there is no event" in out
    assert "7 fault(s) found." in out


async def create_platform_streams(url: str) -> None:
    nc = await nats.connect(url)
    try:
        await create_missing_streams(nc)
    finally:
        await nc.close()


async def create_deletable_case_stream(url: str) -> None:
    nc = await nats.connect(url)
    try:
        await nc.jetstream().add_stream(
            StreamConfig(
                name="CASE",
                subjects=["case.events.>", "case.tracking.>"],
                storage=StorageType.FILE,
                allow_direct=True,
                allow_atomic=True,
            )
        )
    finally:
        await nc.close()


async def break_stream(url: str, delete_seq: int, broken: UUID) -> None:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        await js.delete_msg("CASE", delete_seq)
        await js.publish(
            f"case.events.{broken}.ConcernRaised",
            b'{"type": "ConcernRaised", "concern": 42}',
            headers={"Es-Topic": "case.ConcernRaised@1", "Es-Originator-Version": "1"},
        )
    finally:
        await nc.close()


def test_status_shows_streams_counts_and_how_far_the_case_service_has_processed_consent(
    history: History, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    code, out = run(capsys, "status", "--nats", history.url)

    assert code == 0
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in out.splitlines()
        if line.startswith("│")
    ]
    streams = {row[0]: row for row in rows if len(row) == 7}
    assert streams["CASE"][2] == "5"  # 4 events and 1 tracking record
    assert streams["CONSENT"][2] == "1"
    # The case service has processed the CONSENT stream up to its last event: no lag
    assert ["CASE", "CONSENT", "1", "1", "0"] in rows


def test_export_writes_a_cases_events_and_its_consents_as_json_lines(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = run(capsys, "export", "--nats", history.url, str(history.case_id))

    assert code == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(x["stream"], x["event"]["type"]) for x in lines] == [
        ("CASE", "ConcernRaised"),
        ("CASE", "ConcernShared"),
        ("CASE", "Escalated"),
        ("CONSENT", "ConsentGiven"),
    ]  # the examples all occurred at the same moment: stream order breaks the tie
    assert {x["event"]["aggregate_id"] for x in lines} == {
        str(history.case_id),
        str(history.consent_id),
    }


def test_export_of_an_unknown_case_says_so(
    history: History, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = uuid4()
    code = main(["export", "--nats", history.url, str(missing)])

    assert code == 2
    assert f"no events of case {missing} in any stream" in capsys.readouterr().err


def test_tail_follows_new_events_of_one_type_as_json_lines(history: History) -> None:
    tail = subprocess.Popen(
        [*STAFETT, "tail", "--json", "--count", "2", "--type", "Escalated"],
        env={**os.environ, "NATS_URL": history.url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert tail.stderr is not None
    followed = {tail.stderr.readline().split()[-1] for _ in range(2)}
    assert followed == {"CASE", "CONSENT"}
    # When two more cases are raised and escalated (the Escalated already stored is old news)
    new_cases = [uuid4(), uuid4()]
    for case_id in new_cases:
        write_case(history.url, case_id, ConcernRaised, Escalated)

    out, _ = tail.communicate(timeout=60)

    assert tail.returncode == 0
    lines = [json.loads(line) for line in out.splitlines()]
    assert [(x["stream"], x["event"]["type"]) for x in lines] == [("CASE", "Escalated")] * 2
    assert [UUID(x["event"]["aggregate_id"]) for x in lines] == new_cases


def test_tail_prints_one_readable_line_per_event(history: History) -> None:
    tail = subprocess.run(
        [
            *STAFETT,
            "tail",
            "--from-start",
            "--count",
            "1",
            "--subject",
            f"case.events.{history.other_case}.*",
        ],
        env={**os.environ, "NATS_URL": history.url},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert tail.returncode == 0, tail.stderr
    (line,) = tail.stdout.splitlines()
    assert "CASE#4" in line
    assert "case.ConcernRaised@1" in line
    assert f"{str(history.other_case)[:8]} v1" in line
    assert "by example-person (employee, example-service)" in line


def test_a_command_without_a_nats_server_says_where_it_looked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    nowhere = f"nats://127.0.0.1:{free_port()}"

    code = main(["status", "--nats", nowhere])

    assert code == 2
    assert f"cannot reach NATS at {nowhere}: is `stafett up` running?" in capsys.readouterr().err
