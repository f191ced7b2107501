"""Crypto-shredding: a child's personal data is sealed with the child's own key, and erasing that
key erases the data for every reader, for good (DOMAIN.md rules 8 and 10)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

import msgspec
import nats
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nats.aio.client import Client
from nats.js.api import KeyValueConfig, StorageType

from stafett_contracts.personal import Erased, PersonalData
from stafett_runtime.keystore import (
    DEFAULT_BUCKET,
    KEY_ENCRYPTION_KEY_VARIABLE,
    ChildErasedError,
    ChildKeys,
    KeyStoreError,
    TamperedError,
    open_sealed_texts,
)
from stafett_runtime.settings import SettingsError
from stafett_runtime.testing import NatsTestServer

ASTRID = PersonalData(name="Astrid Nilsen", birth_date=date(2017, 3, 14), national_id="14031712345")
BJORN = PersonalData(name="Bjørn Haugen")

Connect = Callable[[], Awaitable[Client]]


@pytest.fixture
async def connect(nats_server: NatsTestServer) -> AsyncIterator[Connect]:
    """Opens connections to the test server, as separate processes would; closes them after."""
    connections: list[Client] = []

    async def open_connection() -> Client:
        nc = await nats.connect(nats_server.url, max_reconnect_attempts=0)
        connections.append(nc)
        return nc

    yield open_connection
    for nc in connections:
        await nc.close()


async def stored_key_value(nc: Client, child_id: str) -> bytes:
    entry = await (await nc.jetstream().key_value(DEFAULT_BUCKET)).get(child_id)
    assert entry.value is not None
    return entry.value


def files_holding(directory: Path, data: bytes) -> list[Path]:
    files = [path for path in directory.rglob("*") if path.is_file()]
    assert files, f"no files under {directory}"
    return [path for path in files if data in path.read_bytes()]


async def test_given_personal_data_when_sealed_then_it_opens_to_the_same_data(
    connect: Connect,
) -> None:
    keys = await ChildKeys.bind(await connect(), environ={})

    sealed = await keys.seal(ASTRID, "child-1")

    assert sealed.child_id == "child-1"
    assert await keys.open(sealed) == ASTRID


async def test_given_sealed_data_then_the_name_is_not_in_clear_in_it(connect: Connect) -> None:
    keys = await ChildKeys.bind(await connect(), environ={})

    sealed = await keys.seal(ASTRID, "child-1")

    assert b"Astrid" not in base64.b64decode(sealed.ciphertext)
    assert b"Astrid" not in msgspec.json.encode(sealed)


async def test_given_the_same_data_sealed_twice_then_each_seal_has_a_nonce_of_its_own(
    connect: Connect,
) -> None:
    keys = await ChildKeys.bind(await connect(), environ={})

    first, second = await keys.seal(ASTRID, "child-1"), await keys.seal(ASTRID, "child-1")

    assert len(base64.b64decode(first.nonce)) == 12
    assert first.nonce != second.nonce
    assert first.ciphertext != second.ciphertext


async def test_given_two_children_then_each_has_a_key_and_one_childs_data_cannot_pass_as_the_others(
    connect: Connect,
) -> None:
    nc = await connect()
    keys = await ChildKeys.bind(nc, environ={})
    astrid = await keys.seal(ASTRID, "child-1")
    await keys.seal(BJORN, "child-2")

    moved = msgspec.structs.replace(astrid, child_id="child-2")

    assert await stored_key_value(nc, "child-1") != await stored_key_value(nc, "child-2")
    with pytest.raises(TamperedError):
        await keys.open(moved)


async def test_given_a_new_child_when_two_processes_seal_at_once_then_one_key_serves_both(
    connect: Connect,
) -> None:
    first = await ChildKeys.bind(await connect(), environ={})
    second = await ChildKeys.bind(await connect(), environ={})

    sealed = await asyncio.gather(*(keys.seal(ASTRID, "child-1") for keys in [first, second] * 5))

    for blob in sealed:
        assert await first.open(blob) == ASTRID
        assert await second.open(blob) == ASTRID
    stream = await (await connect()).jetstream().stream_info(f"KV_{DEFAULT_BUCKET}")
    assert stream.state.last_seq == 1  # one key was written; every other writer read it


async def test_given_sealed_data_when_the_child_is_erased_then_every_reader_gets_erased(
    connect: Connect,
) -> None:
    keys = await ChildKeys.bind(await connect(), environ={})
    sealed = [await keys.seal(ASTRID, "child-1"), await keys.seal(ASTRID, "child-1")]
    other_child = await keys.seal(BJORN, "child-2")

    await keys.erase("child-1", reason="retention ended")

    fresh = await ChildKeys.bind(await connect(), environ={})
    for blob in sealed:
        assert await keys.open(blob) == Erased()
        assert await fresh.open(blob) == Erased()
    assert await fresh.open(other_child) == BJORN


async def test_given_an_erased_child_then_nothing_can_be_sealed_for_it_again(
    connect: Connect,
) -> None:
    keys = await ChildKeys.bind(await connect(), environ={})
    earlier = await keys.seal(ASTRID, "child-1")
    await keys.erase("child-1", reason="erasure requested")

    with pytest.raises(ChildErasedError):
        await keys.seal(ASTRID, "child-1")
    assert await keys.open(earlier) == Erased()


async def test_given_an_erasure_when_the_server_restarts_then_the_key_stays_gone(
    nats_server: NatsTestServer, connect: Connect
) -> None:
    nc = await connect()
    keys = await ChildKeys.bind(nc, environ={})
    sealed = await keys.seal(ASTRID, "child-1")
    await keys.erase("child-1", reason="retention ended")
    await nc.close()

    nats_server.restart()

    nc = await connect()
    assert await (await ChildKeys.bind(nc, environ={})).open(sealed) == Erased()
    stream = await nc.jetstream().stream_info(f"KV_{DEFAULT_BUCKET}")
    assert stream.state.messages == 1  # the purge marker alone: no revision of the key is left


async def test_given_an_erasure_then_no_file_of_the_server_holds_the_key_any_more(
    nats_server: NatsTestServer, connect: Connect, tmp_path: Path
) -> None:
    nc = await connect()
    keys = await ChildKeys.bind(nc, environ={})
    await keys.seal(ASTRID, "child-1")
    await keys.seal(BJORN, "child-2")  # a neighbour in the same message block
    child_key = await stored_key_value(nc, "child-1")

    await keys.erase("child-1", reason="retention ended")
    await nc.close()
    nats_server.stop()  # the server's files as a copy of its disk would show them

    assert files_holding(tmp_path, child_key) == []


async def test_given_a_bucket_that_denies_message_deletes_then_binding_is_refused(
    connect: Connect,
) -> None:
    nc = await connect()
    await nc.jetstream().create_key_value(KeyValueConfig(bucket=DEFAULT_BUCKET))

    with pytest.raises(KeyStoreError, match="denies message deletes"):
        await ChildKeys.bind(nc, environ={})


async def test_given_sealed_data_when_its_ciphertext_is_altered_then_opening_fails_as_tampering(
    connect: Connect,
) -> None:
    keys = await ChildKeys.bind(await connect(), environ={})
    sealed = await keys.seal(ASTRID, "child-1")
    ciphertext = bytearray(base64.b64decode(sealed.ciphertext))
    ciphertext[0] ^= 1

    altered = msgspec.structs.replace(sealed, ciphertext=base64.b64encode(ciphertext).decode())

    with pytest.raises(TamperedError, match="failed authentication"):
        await keys.open(altered)


async def test_given_a_key_encryption_key_then_the_bucket_holds_child_keys_only_wrapped(
    connect: Connect,
) -> None:
    nc = await connect()
    kek = AESGCM.generate_key(bit_length=256)
    keys = await ChildKeys.bind(
        nc, environ={KEY_ENCRYPTION_KEY_VARIABLE: base64.b64encode(kek).decode()}
    )
    sealed = await keys.seal(ASTRID, "child-1")

    stored = await stored_key_value(nc, "child-1")

    child_key = AESGCM(kek).decrypt(stored[:12], stored[12:], b"child-1")
    assert child_key not in stored
    assert await keys.open(sealed) == ASTRID
    with pytest.raises(KeyStoreError, match="stored wrapped"):
        await (await ChildKeys.bind(nc, environ={})).open(sealed)


async def test_given_a_malformed_key_encryption_key_then_binding_is_refused_without_echoing_it(
    connect: Connect,
) -> None:
    with pytest.raises(SettingsError) as refused:
        await ChildKeys.bind(
            await connect(), environ={KEY_ENCRYPTION_KEY_VARIABLE: "c2hvcnQtc2VjcmV0"}
        )

    assert "c2hvcnQtc2VjcmV0" not in str(refused.value)


async def test_given_a_bucket_without_the_childs_key_then_opening_fails_rather_than_reads_erased(
    connect: Connect,
) -> None:
    nc = await connect()
    sealed = await (await ChildKeys.bind(nc, environ={})).seal(ASTRID, "child-1")

    wrong_bucket = await ChildKeys.bind(nc, bucket="OTHER_KEYS", environ={})

    with pytest.raises(KeyStoreError, match="neither a key nor an erasure marker"):
        await wrong_bucket.open(sealed)


async def test_given_no_bucket_when_bound_twice_then_one_bucket_keeps_keys_without_expiry(
    connect: Connect,
) -> None:
    nc = await connect()

    await ChildKeys.bind(nc, environ={})
    await ChildKeys.bind(await connect(), environ={})

    status = await (await nc.jetstream().key_value(DEFAULT_BUCKET)).status()
    assert status.history == 1
    assert not status.ttl
    assert status.stream_info.config.storage == StorageType.FILE


async def test_given_an_answer_with_many_texts_when_opened_then_each_childs_key_is_fetched_once(
    connect: Connect,
) -> None:
    """One answer is opened under one state of each child's key, with one look-up per child
    (not one per text, each a round trip to the key store)."""
    nc = await connect()
    keys = await ChildKeys.bind(nc, environ={})
    notes = [f"note {n} about Astrid" for n in range(5)]
    answer: dict[str, Any] = {  # an answer read as JSON, as the projection's are
        "entries": [{"note": await keys.seal_text(note, "child-1")} for note in notes],
        "other": (await keys.seal_text("about Bjørn", "child-2"), "plain words", 7, None),
    }
    # Every look-up is one request to the key store: the connection counts what it sends.
    # (A listener on the request subject, tried first, missed one request in about fifteen.)
    sent_before = nc.stats["out_msgs"]

    opened = await open_sealed_texts(answer, keys.one_answer())

    assert [entry["note"] for entry in opened["entries"]] == notes
    assert opened["other"] == ("about Bjørn", "plain words", 7, None)
    assert nc.stats["out_msgs"] - sent_before == 2  # one per child, not one per text (6)
