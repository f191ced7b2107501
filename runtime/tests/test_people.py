"""The sources of record for facts about people: the population register and the directory.

Given the development register file, the municipality's register gateway (spoken to over HTTP as
its documented interface says) and the directory file, each answers what it knows, says clearly
when it cannot, and a bad file never takes the last good answer away.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import date
from pathlib import Path
from uuid import uuid4

import httpx
import msgspec
import pytest

from stafett_contracts.people import RegisteredChild, ServiceKind
from stafett_runtime.directory import DirectoryFile, directory_from_env, parse
from stafett_runtime.register import (
    FileRegister,
    HttpRegister,
    RegisterUnavailableError,
    register_from_env,
)
from stafett_runtime.settings import SettingsError
from stafett_runtime.testing import a_child

KARI = a_child("mor", "far", born=date(2014, 5, 17), person="kari")


def test_the_register_file_answers_by_child_by_national_id_and_by_guardian(tmp_path: Path) -> None:
    register = FileRegister(tmp_path / "register.json")
    other = a_child("someone-else")
    register.add(KARI, other)
    assert register.child(KARI.child_id) == KARI
    assert register.by_national_id(KARI.national_id) == KARI
    assert register.children_of("far") == [KARI]
    assert register.children_of("kari") == [KARI]  # a child finds their own
    assert register.child(uuid4()) is None
    # It holds children's names: only its owner reads it
    assert stat.S_IMODE(os.stat(register.path).st_mode) == 0o600


def test_the_register_file_is_read_again_when_it_changes(tmp_path: Path) -> None:
    path = tmp_path / "register.json"
    register, writer = FileRegister(path), FileRegister(path)
    assert register.child(KARI.child_id) is None
    writer.add(KARI)
    assert register.child(KARI.child_id) == KARI  # another process's write is seen


def test_a_register_file_that_does_not_parse_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "register.json"
    path.write_text('{"children": [{"name": "no id"}]}')
    with pytest.raises(SettingsError, match=r"register\.json is not valid"):
        FileRegister(path).child(KARI.child_id)


def gateway(children: list[RegisteredChild], asked: list[str]) -> httpx.MockTransport:
    """The municipality's register gateway, as its interface is documented in register.py."""

    def answer(request: httpx.Request) -> httpx.Response:
        asked.append(str(request.url))
        assert request.headers["Authorization"] == "Bearer secret"
        path = request.url.path.removeprefix("/v1")
        if path.startswith("/children/"):
            found = [c for c in children if str(c.child_id) == path.rsplit("/", 1)[-1]]
            return (
                httpx.Response(200, content=msgspec.json.encode(found[0]))
                if found
                else (httpx.Response(404))
            )
        if path == "/children":
            wanted = request.url.params["national_id"]
            found = [c for c in children if c.national_id == wanted]
            return httpx.Response(200, content=msgspec.json.encode(found))
        if path.startswith("/people/"):
            person = path.split("/")[2]
            found = [c for c in children if person in c.guardians]
            return httpx.Response(200, content=msgspec.json.encode(found))
        return httpx.Response(500)

    return httpx.MockTransport(answer)


def test_the_register_gateway_is_asked_as_documented_and_its_answers_kept_a_while() -> None:
    asked: list[str] = []
    register = HttpRegister("https://register.example/v1", "secret", 60, gateway([KARI], asked))
    assert register.child(KARI.child_id) == KARI
    assert register.child(KARI.child_id) == KARI
    assert register.by_national_id(KARI.national_id) == KARI
    assert register.children_of("mor") == [KARI]
    assert register.child(uuid4()) is None
    assert len(asked) == 4  # the second question about Kari was answered from the cache


def test_a_register_gateway_that_fails_is_unavailable_not_an_empty_answer() -> None:
    broken = httpx.MockTransport(lambda _: httpx.Response(502))
    register = HttpRegister("https://register.example/v1", None, 60, broken)
    with pytest.raises(RegisterUnavailableError, match="502"):
        register.children_of("mor")
    garbled = httpx.MockTransport(lambda _: httpx.Response(200, content=b'{"child_id": 1}'))
    with pytest.raises(RegisterUnavailableError, match="not valid"):
        HttpRegister("https://register.example/v1", None, 60, garbled).child(KARI.child_id)


def test_the_register_is_the_gateway_in_production_and_the_file_in_development(
    tmp_path: Path,
) -> None:
    gateway_register = register_from_env({"STAFETT_REGISTER_URL": "https://register.example"})
    assert isinstance(gateway_register, HttpRegister)
    file_register = register_from_env({"STAFETT_DATA_DIR": str(tmp_path)})
    assert isinstance(file_register, FileRegister)
    assert file_register.path == (tmp_path / "register.json").resolve()
    with pytest.raises(SettingsError, match="STAFETT_REGISTER_URL"):
        register_from_env({"STAFETT_REGISTER_URL": "register.example"})


DIRECTORY = {
    "municipality": "Testkommune",
    "units": {"skole-lia": {"name": "Lia skole", "kind": "school", "leader": "rektor-lia"}},
    "legal_bases": {"skoleloven § 1": ["school"]},
}


def test_the_directory_names_units_kinds_leaders_and_the_provisions_that_empower_them(
    tmp_path: Path,
) -> None:
    path = tmp_path / "directory.json"
    path.write_text(json.dumps(DIRECTORY))
    directory = DirectoryFile(path).current()
    assert directory.kind_of("skole-lia") == ServiceKind.SCHOOL
    assert directory.leads("rektor-lia", "skole-lia")
    assert not directory.leads("rektor-lia", "skole-fjell")
    assert directory.empowers("skoleloven § 1", "skole-lia")
    assert not directory.empowers("barnevernsloven § 2-1", "skole-lia")  # child welfare's


def test_a_directory_that_does_not_parse_stops_the_start_but_never_a_running_service(
    tmp_path: Path,
) -> None:
    path = tmp_path / "directory.toml"
    path.write_text('[units.skole-lia]\nname = "Lia skole"\nkind = "castle"\nleader = "r"\n')
    with pytest.raises(SettingsError, match=r"directory\.toml is not valid"):
        parse(path)
    path.write_text('[units.skole-lia]\nname = "Lia skole"\nkind = "school"\nleader = "r"\n')
    running = DirectoryFile(path)
    path.write_text("[units.skole-lia\n")  # a typo while the service runs
    assert running.current().leads("r", "skole-lia")  # the last good directory stays
    with pytest.raises(SettingsError, match="cannot be read"):
        directory_from_env({"STAFETT_DATA_DIR": str(tmp_path / "nowhere")})


def test_the_directory_sets_the_municipality_s_deadlines_and_a_level_s_own(
    tmp_path: Path,
) -> None:
    # Given a directory that sets the level-0 decision and, at level 3, its own inactivity
    path = tmp_path / "directory.toml"
    path.write_text(
        "[deadlines]\ndecision_days = 21\n\n[deadlines.levels.3]\ninactivity_days = 30\n"
    )
    deadlines = parse(path).deadlines
    # Then those are in force, the rest are the defaults, and a level's own wins at that level
    assert (deadlines.decision_days, deadlines.inactivity_days) == (21, 14)
    assert deadlines.at_level(3).inactivity_days == 30
    assert deadlines.at_level(2).inactivity_days == 14
    assert (deadlines.minutes_days, deadlines.escalation_days) == (7, 7)


@pytest.mark.parametrize(
    ("section", "line", "reason"),
    [
        ("[deadlines]\ninactivity_days = 0\n", 3, r"int` >= 1 - at `\$\.deadlines\.inactivity"),
        ("[deadlines]\nsoon = 3\n", 2, "unknown field `soon`"),
        ("[deadlines.levels.4]\nminutes_days = 3\n", 2, "Invalid enum value '4'"),
        ('[deadlines.levels.1]\nminutes_days = "a week"\n', 3, "Expected `int | null`"),
    ],
)
def test_a_bad_deadlines_section_is_refused_with_its_line_and_the_reason(
    tmp_path: Path, section: str, line: int, reason: str
) -> None:
    path = tmp_path / "directory.toml"
    path.write_text('municipality = "Eksempel"\n' + section)
    with pytest.raises(SettingsError, match=rf"not valid \(line {line}\): .*{reason}"):
        parse(path)
