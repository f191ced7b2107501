"""Retention as an operation (DOMAIN.md rule 10), across the case and projection services, each
in its own process with its own NATS user, as in production.

Given a case that closes: the projection delivers its archive document to the archive (a folder
of 0600 files, or an archive's HTTP API that fails before it takes it), records the delivery on
AUDIT, and only then, once the municipality's retention period has run, does the case service's
retention timer shred the child: `ChildErased`, the key deleted, every reader told "erased".
`stafett status` says what is due at each step.
"""

from __future__ import annotations

import json
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import msgspec
import pytest

from stafett_cli.main import main as stafett
from stafett_contracts.identity import Actor, Role
from stafett_contracts.people import Directory, RegisteredChild, Retention
from stafett_projection.testing import FakeArchive, fake_archive
from stafett_runtime.testing import TEST_DIRECTORY, a_child
from tests.platform import Platform

UNIT = "barnehage-solsikke"
TEACHER = Actor(person="ped-1", role=Role.EMPLOYEE, service=UNIT)
LEADER = Actor(person="styrer-1", role=Role.UNIT_LEADER, service=UNIT)
MOTHER = Actor(person="mor-1", role=Role.GUARDIAN)
AUDITOR = Actor(person="tilsyn-1", role=Role.AUDITOR)
FAST = {"STAFETT_ARCHIVE_INTERVAL": "0.3", "STAFETT_RETENTION_INTERVAL": "0.3"}


def keeping(years: int) -> Directory:
    return msgspec.structs.replace(TEST_DIRECTORY, retention=Retention(closed_case_years=years))


def wait_until(what: str, holds: Callable[[], Any], seconds: float = 30) -> Any:
    deadline = time.monotonic() + seconds
    while not (found := holds()):
        assert time.monotonic() < deadline, f"not within {seconds} s: {what}"
        time.sleep(0.1)
    return found


def a_closed_case(platform: Platform) -> tuple[RegisteredChild, UUID]:
    child = a_child(MOTHER.person, name="Kari Nordmann")
    platform.register_child(child)
    raised = platform.post(
        "case", "/cases", TEACHER, {"child_id": str(child.child_id), "concern": "Trist i lek."}
    )
    assert raised.status_code == 201, raised.text
    case_id = UUID(raised.json()["id"])
    closed = platform.post("case", f"/cases/{case_id}/close-case", LEADER, {"reason": "Bedre."})
    assert closed.status_code == 201, closed.text
    return child, case_id


def audit_records(platform: Platform, kind: str) -> list[dict[str, Any]]:
    return [r for r in _stream(platform, "AUDIT") if r.get("type") == kind]


def erasures(platform: Platform) -> list[dict[str, Any]]:
    return [r for r in _stream(platform, "CASE") if r.get("type") == "ChildErased"]


def _stream(platform: Platform, stream: str) -> list[dict[str, Any]]:
    from stafett_cli.datafolder import Login
    from stafett_cli.streams import Store

    env = platform.admin_env()
    with Store(env["NATS_URL"], Login(env["NATS_USER"], env["NATS_PASSWORD"])) as store:
        return [msgspec.json.decode(m.data) for m in store.read(stream, f"{stream.lower()}.>")]


def status(platform: Platform, monkeypatch: pytest.MonkeyPatch, capsys: Any) -> str:
    """What `stafett status` prints, as the operator of this platform runs it."""
    env = platform.admin_env()
    monkeypatch.setenv("NATS_USER", env["NATS_USER"])
    monkeypatch.setenv("NATS_PASSWORD", env["NATS_PASSWORD"])
    monkeypatch.setenv("STAFETT_DIRECTORY_FILE", str(platform.directory_file))
    capsys.readouterr()
    assert stafett(["status", "--nats", env["NATS_URL"]]) == 0
    printed: str = capsys.readouterr().out
    return printed


@pytest.fixture
def folder_platform(tmp_path: Path) -> Iterator[Platform]:
    running = Platform(tmp_path, directory=keeping(5), env=FAST)
    try:
        yield running
    finally:
        running.stop()


def test_a_closed_case_is_archived_to_0600_files_and_its_child_shredded_once_the_period_ends(
    folder_platform: Platform, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    platform = folder_platform
    platform.start("case")  # no projection yet: nothing delivers
    child, case_id = a_closed_case(platform)

    said = status(platform, monkeypatch, capsys)
    assert "closed cases awaiting archive delivery" in said
    assert str(case_id) in said
    assert "waits for the archive (1 cases)" in said

    platform.start("projection")
    archive = platform.data / "archive"
    document = wait_until(
        "the archive document in the folder", lambda: list(archive.glob(f"{case_id}-v*.json"))
    )[0]
    (delivered,) = wait_until(
        "the delivery recorded", lambda: audit_records(platform, "ArchiveDelivered")
    )
    assert delivered["case_id"] == str(case_id)
    assert delivered["archive"] == "folder"
    assert stat.S_IMODE(archive.stat().st_mode) == 0o700
    for made in archive.iterdir():
        assert stat.S_IMODE(made.stat().st_mode) == 0o600, made
    assert sorted(p.name for p in archive.iterdir()) == sorted(
        [document.name, f"{case_id}-v2.nb.md", f"{case_id}-v2.en.md"]
    )
    payload = json.loads(document.read_bytes())
    assert payload["documents"]["nb"]["document"]["child"]["name"] == "Kari Nordmann"
    assert "Kari Nordmann" in payload["documents"]["en"]["markdown"]

    # Kept 5 years: shown as due, not shredded.
    said = wait_until(
        "status to show the delivery",
        lambda: (s := status(platform, monkeypatch, capsys)) and "kept until then" in s and s,
    )
    assert "closed cases awaiting archive delivery: none" in said
    assert erasures(platform) == []

    # The municipality keeps closed cases no time at all: the timer shreds at its next round.
    platform.directory_file.write_bytes(msgspec.json.encode(keeping(0)))
    (erased,) = wait_until("the child shredded", lambda: erasures(platform))

    assert erased["child_id"] == str(child.child_id)
    assert erased["reason"] == "retention_period_ended"
    assert erased["cases"] == [str(case_id)]
    assert "Kari Nordmann" not in json.dumps(erased)
    read = platform.get("case", f"/cases/{case_id}", MOTHER)
    assert read.status_code == 200
    assert read.json()["erased"]["erased"] is True
    # The projection follows the CASE stream a moment behind
    relay_log = wait_until(
        "the relay log to show the erasure",
        lambda: (
            (r := platform.get("projection", f"/cases/{case_id}/relay-log", MOTHER).json())
            and r["erased"]
            and r
        ),
    )
    assert relay_log["erased"]["erased"] is True
    assert relay_log["child"] is None
    said = status(platform, monkeypatch, capsys)
    assert "children due for shredding: none" in said


@pytest.fixture
def archive() -> Iterator[FakeArchive]:
    with fake_archive(failures=2) as running:
        yield running


def test_a_failing_archive_is_tried_again_and_stops_nothing_meanwhile(
    tmp_path: Path, archive: FakeArchive, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    platform = Platform(
        tmp_path, directory=keeping(5), env={**FAST, "STAFETT_ARCHIVE_URL": archive.url}
    )
    try:
        platform.start("case", "projection")
        _, case_id = a_closed_case(platform)
        wait_until("a first, failed attempt", lambda: archive.received)
        # The operator sees it from the streams: the failed attempts and what the archive said.
        wait_until("the failure recorded", lambda: audit_records(platform, "ArchiveDeliveryFailed"))
        said = status(platform, monkeypatch, capsys)
        assert "failed attempts" in said
        assert "answered 503" in said

        # Meanwhile everything else goes on: commands and reads.
        _, other_case = a_closed_case(platform)
        read = platform.get("projection", f"/cases/{case_id}/relay-log", MOTHER)
        assert read.status_code == 200, read.text

        records = wait_until(
            "both deliveries recorded",
            lambda: len(r := audit_records(platform, "ArchiveDelivered")) == 2 and r,
        )
        assert {r["case_id"] for r in records} == {str(case_id), str(other_case)}
        assert {r["reference"] for r in records} == {"ARK-2025-1"}
        assert {r["archive"] for r in records} == {"http"}
        first = [r.key for r in archive.received if r.case_id == str(case_id)]
        assert len(first) >= 2
        assert len(set(first)) == 1
        assert erasures(platform) == []  # kept 5 years
    finally:
        platform.stop()
