"""Parked events are never skipped silently: `stafett status` lists them per service, and
`stafett retry` asks the running service, as an administrator, to process them again."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import uuid4

import msgspec
import pytest
import uvicorn
from litestar import Litestar, Request, post
from litestar.params import JSONBody

from stafett_cli.main import main
from stafett_contracts.export import example_of
from stafett_contracts.identity import Actor, Role
from stafett_contracts.processing import ParkedEventRetried, ProcessingParked, parked_id
from stafett_runtime.auth import TokenVerifier, bearer_token_auth, require_role
from stafett_runtime.contracts import ContractApplication
from stafett_runtime.natsserver import free_port
from stafett_runtime.testing import NatsTestServer


class CaseLog(ContractApplication):
    name = "case"


def record(position: int, version: int, cls: type[Any]) -> Any:
    """A record of the case service about the CONSENT stream's event at `position`."""
    return msgspec.structs.replace(
        example_of(cls),
        event_id=uuid4(),
        aggregate_id=parked_id("case", "consent", position),
        aggregate_version=version,
        upstream="consent",
        position=position,
    )


def test_status_lists_the_events_a_service_parked_until_they_are_processed(
    nats_server: NatsTestServer, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the case service parked two consent events, and one was processed on a retry
    parked = msgspec.structs.replace(
        record(7, 1, ProcessingParked),
        event_type="consent.ConsentGiven@1",
        error_type="OverflowError",
        error="date value out of range",
        attempts=3,
    )
    cases = CaseLog(
        {"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": nats_server.url}
    )
    cases.save(parked)
    cases.save(record(9, 1, ProcessingParked))
    cases.save(record(9, 2, ParkedEventRetried))
    cases.close()

    # When the operator asks for the status
    monkeypatch.setenv("COLUMNS", "250")
    code = main(["status", "--nats", nats_server.url])
    out = capsys.readouterr().out

    # Then the one still parked is listed, with what failed, and the processed one is not
    assert code == 0
    rows = [
        [cell.strip() for cell in line.split("│")[1:-1]]
        for line in out.splitlines()
        if line.startswith("│")
    ]
    listed = [row for row in rows if len(row) == 7 and row[1] == "CONSENT"]
    assert [row[:5] + row[6:] for row in listed] == [
        [
            "CASE",
            "CONSENT",
            "7",
            "consent.ConsentGiven@1",
            "OverflowError: date value out of range",
            "3",
        ]
    ]


class Asked(msgspec.Struct):
    upstream: str | None = None
    position: int | None = None


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, list[Any]]]:
    """A service's retry route that trusts the development key of the CLI's data folder, and
    answers that the event it is asked about failed again."""
    monkeypatch.setenv("STAFETT_DATA_DIR", str(tmp_path))
    asked: list[Any] = []

    @post(
        "/processing/parked/retry",
        guards=[require_role(Role.ADMINISTRATOR)],
        status_code=200,
    )
    async def retry(request: Request[Actor, Any, Any], data: JSONBody[Asked]) -> dict[str, Any]:
        asked.append((request.user, data))
        outcome = {"upstream": "case", "position": data.position, "events": 0}
        return {
            "retried": [
                {**outcome, "outcome": "parked again", "error": "OverflowError: out of range"}
            ]
        }

    verifier = TokenVerifier.from_env()
    app = Litestar([retry], middleware=[bearer_token_auth(verifier)], logging_config=None)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_config=None))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "the stand-in service did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", asked
    server.should_exit = True
    thread.join()


def test_retry_asks_the_service_as_an_administrator_and_says_what_is_still_parked(
    service: tuple[str, list[Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    url, asked = service

    # When the operator retries notify's parked CASE event 4182
    code = main(["retry", "notify", "4182", "--upstream", "case", "--url", url])

    # Then the service was asked, by an administrator, for exactly that event
    ((actor, body),) = asked
    assert actor.role == Role.ADMINISTRATOR
    assert body == Asked(upstream="case", position=4182)
    # And the operator learns that it failed again, and the exit status says so
    assert capsys.readouterr().out.strip() == (
        "notify: case event 4182 failed again and stays parked: OverflowError: out of range"
    )
    assert code == 1


def test_retry_of_a_service_that_does_not_answer_says_where_it_looked(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = f"http://127.0.0.1:{free_port()}"

    code = main(["retry", "case", "--url", url])

    assert code == 2
    assert f"the case service does not answer at {url}" in capsys.readouterr().err
