"""`stafett up` runs NATS as production does, and prepares its data folder, before any service.

Given the embedded nats-server as `stafett up` starts it (the first half of its start, without
the services): nobody connects anonymously; the CLI's tools work as the operator user; a service's
own user cannot write into another service's stream; the children's keys are only ever stored
wrapped, also those a data folder kept from before there was a key-encryption key; the passwords
and the key are made once and readable by their owner only; the directory and the register are
where the services look for them.
"""

from __future__ import annotations

import asyncio
import json
import stat
import tomllib
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4

import msgspec
import nats
import pytest
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import Environment
from nats.aio.client import Client
from nats.errors import Error as NatsError

from stafett_cli.config import PlatformConfig
from stafett_cli.datafolder import KEY_ENCRYPTION_KEY_FILE, USERS_FILE, Login
from stafett_cli.main import main
from stafett_cli.municipality import DIRECTORY
from stafett_cli.platform import Platform
from stafett_contracts.case import ConcernRaised
from stafett_contracts.export import example_of
from stafett_contracts.people import Directory
from stafett_contracts.personal import Erased, PersonalData, SealedPersonalData
from stafett_runtime.contracts import ContractApplication
from stafett_runtime.jetstream import JetStreamFactory
from stafett_runtime.keystore import KEY_ENCRYPTION_KEY_VARIABLE, ChildKeys
from stafett_runtime.natsaccess import ADMIN_USER
from stafett_runtime.natsserver import NatsServer, free_port
from stafett_runtime.register import FileRegister

WRAPPED_KEY_BYTES = 12 + 32 + 16  # nonce, key, authentication tag


class CaseLog(ContractApplication):
    name = "case"


def embedded(data: Path, port: int) -> Platform:
    return Platform(PlatformConfig(data_dir=data, nats_port=port), say=lambda _: None)


@pytest.fixture
def up(tmp_path: Path) -> Iterator[Platform]:
    """The platform's nats-server, started as `stafett up` starts it, on a fresh data folder."""
    platform = embedded(tmp_path / "data", free_port())
    platform.start_nats()
    try:
        yield platform
    finally:
        platform.nats.stop()


async def connect(url: str, login: Login | None = None) -> Client:
    options = login.options() if login else {}
    return await nats.connect(url, allow_reconnect=False, connect_timeout=5, **options)


async def test_given_stafett_up_then_an_anonymous_connection_is_refused(up: Platform) -> None:
    with pytest.raises(NatsError, match="Authorization Violation"):
        await connect(up.nats.url)


def test_given_stafett_up_then_the_cli_tools_work_as_the_operator(
    up: Platform, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an event the case service appended with its own user
    case_id = uuid4()
    case_store = JetStreamFactory(Environment("case", service_env(up, "case")))
    try:
        case_store.application_recorder().insert_events([noted(case_id)])
    finally:
        case_store.close()
    # When the tools run with nothing but the data folder to go on (no NATS_USER)
    monkeypatch.delenv("NATS_USER", raising=False)
    monkeypatch.setenv("STAFETT_DATA_DIR", str(up.config.data_dir))
    url = up.nats.url

    # Then each reads the streams, as the operator
    assert main(["status", "--nats", url]) == 0
    assert "CASE" in capsys.readouterr().out
    assert main(["export", str(case_id), "--nats", url]) == 0
    assert str(case_id) in capsys.readouterr().out
    assert main(["tail", "--from-start", "--count", "1", "--json", "--nats", url]) == 0
    assert json.loads(capsys.readouterr().out)["stream"] == "CASE"


def test_given_stafett_up_then_replay_rebuilds_as_the_projection(
    up: Platform, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a concern the case service raised, with its own user
    raised = msgspec.structs.replace(example_of(ConcernRaised), aggregate_version=1)
    cases = CaseLog({"PERSISTENCE_MODULE": "stafett_runtime.jetstream", **service_env(up, "case")})
    try:
        cases.save(raised)
    finally:
        cases.close()
    monkeypatch.delenv("NATS_USER", raising=False)
    monkeypatch.setenv("STAFETT_DATA_DIR", str(up.config.data_dir))

    # When the read models are rebuilt, the rebuild connecting as the projection
    code = main(["replay", "--nats", up.nats.url])

    # Then it read the concern, and NATS refused it nothing
    assert code == 0
    assert "rebuilt 1 events" in capsys.readouterr().err
    assert "Violation" not in (up.logs / "nats-server.log").read_text()  # none refused


def test_given_no_login_then_the_cli_tools_say_what_to_set(
    up: Platform,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.delenv("NATS_USER", raising=False)
    monkeypatch.setenv("STAFETT_DATA_DIR", str(tmp_path / "another-folder"))

    assert main(["verify", "--nats", up.nats.url]) == 2
    said = capsys.readouterr().err
    assert "refused the connection without a user" in said
    assert "NATS_USER" in said


async def test_given_the_case_services_user_then_it_cannot_forge_a_consent(up: Platform) -> None:
    # Given the case service's own connection
    errors: asyncio.Queue[Exception] = asyncio.Queue()
    case = await nats.connect(
        up.nats.url, allow_reconnect=False, error_cb=errors.put, **up.login("case").options()
    )
    try:
        # When it publishes a ConsentGiven into the consent service's stream
        await case.publish(f"consent.events.{uuid4()}.ConsentGiven", b"{}", reply="_INBOX.case.x")
        refused = await asyncio.wait_for(errors.get(), 5)
    finally:
        await case.close()
    # Then NATS refuses it, and CONSENT holds nothing
    assert 'permissions violation for publish to "consent.events.' in str(refused).lower()
    assert await messages_in(up, "CONSENT") == 0


def test_given_a_data_folder_from_before_the_key_encryption_key_then_its_keys_are_wrapped(
    tmp_path: Path,
) -> None:
    data, port = tmp_path / "data", free_port()
    # Given a data folder whose bucket holds children's keys unwrapped, one of them erased
    before = NatsServer(store_dir=data / "nats", port=port)
    before.start()
    try:
        kept, erased = asyncio.run(seal_without_a_key_encryption_key(before.url))
    finally:
        before.stop()

    # When stafett up starts on it
    platform = embedded(data, port)
    platform.start_nats()
    try:
        asyncio.run(only_wrapped_keys_and_everything_opens(platform, kept, erased))
    finally:
        platform.nats.stop()


async def seal_without_a_key_encryption_key(
    url: str,
) -> tuple[SealedPersonalData, SealedPersonalData]:
    nc = await connect(url)
    try:
        keys = await ChildKeys.bind(nc, environ={})
        kept = await keys.seal(PersonalData(name="Astrid Nilsen"), "child-kept")
        erased = await keys.seal(PersonalData(name="Ola Nordmann"), "child-erased")
        await keys.erase("child-erased", reason="retention ended")
        return kept, erased
    finally:
        await nc.close()


async def only_wrapped_keys_and_everything_opens(
    platform: Platform, kept: SealedPersonalData, erased: SealedPersonalData
) -> None:
    nc = await connect(platform.nats.url, platform.login(ADMIN_USER))
    try:
        # Then the bucket holds only wrapped keys, and the erasure marker as it was
        kv = await nc.jetstream().key_value("CHILD_KEYS")
        assert await kv.keys() == ["child-kept"]
        assert len((await kv.get("child-kept")).value or b"") == WRAPPED_KEY_BYTES
        # And with the key-encryption key every sealed blob opens as before
        kek = (platform.config.data_dir / KEY_ENCRYPTION_KEY_FILE).read_text().strip()
        keys = await ChildKeys.bind(nc, environ={KEY_ENCRYPTION_KEY_VARIABLE: kek})
        assert await keys.open(kept) == PersonalData(name="Astrid Nilsen")
        assert await keys.open(erased) == Erased()
        # And a key made now is wrapped from the start
        await keys.seal(PersonalData(name="Kari Nordmann"), "child-new")
        assert len((await kv.get("child-new")).value or b"") == WRAPPED_KEY_BYTES
    finally:
        await nc.close()


def test_the_passwords_and_the_key_are_made_once_and_readable_by_their_owner_only(
    up: Platform,
) -> None:
    data = up.config.data_dir
    secrets = [data / USERS_FILE, data / KEY_ENCRYPTION_KEY_FILE, up.nats.config_file]
    for path in secrets:
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    made = [path.read_text() for path in secrets[:2]]
    passwords = json.loads(made[0])
    assert passwords[ADMIN_USER] in up.nats.config_file.read_text()

    # When stafett up starts again on the same data folder, they are the same
    up.nats.stop()
    again = embedded(data, up.config.nats_port)
    again.start_nats()
    again.nats.stop()
    assert [path.read_text() for path in secrets[:2]] == made


def test_given_a_new_data_folder_then_the_demo_directory_and_an_empty_register_are_written(
    up: Platform,
) -> None:
    directory = msgspec.convert(tomllib.loads(up.directory_file.read_text()), Directory)
    assert directory == DIRECTORY
    assert up.directory_file == up.config.data_dir / "directory.toml"
    assert up.register_file == up.config.data_dir / "register.json"
    assert FileRegister(up.register_file).children_of("mor-jonas") == []
    assert str(up.directory_file) in up.screen()
    assert str(up.register_file) in up.screen()


def test_given_a_directory_of_its_own_then_stafett_up_leaves_it_as_it_is(
    up: Platform,
) -> None:
    up.directory_file.write_text('municipality = "Egen kommune"\n')
    up.nats.stop()
    again = embedded(up.config.data_dir, up.config.nats_port)
    again.start_nats()
    again.nats.stop()
    assert up.directory_file.read_text() == 'municipality = "Egen kommune"\n'


def service_env(platform: Platform, service: str) -> dict[str, str]:
    return {
        "NATS_URL": platform.nats.url,
        **platform.login(service).env(),
        "CREATE_TABLE": "no",  # stafett up made the streams
    }


def noted(case_id: UUID) -> StoredEvent:
    return StoredEvent(
        originator_id=case_id, originator_version=1, topic="cli.tests:Noted", state=b"{}"
    )


async def messages_in(platform: Platform, stream: str) -> int:
    nc = await connect(platform.nats.url, platform.login(ADMIN_USER))
    try:
        messages: int = (await nc.jetstream().stream_info(stream)).state.messages
        return messages
    finally:
        await nc.close()
