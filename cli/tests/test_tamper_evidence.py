"""Tamper evidence: `stafett verify` detects every forgery, alteration, deletion and truncation,
names the fault (stream, sequence, subject), and exits 1; an untampered platform verifies.

The platform here is written as the services write it, on a real nats-server: its streams made
as `stafett up` makes them, CASE and CONSENT events through the store's recorders (signed and
chained), access records through the access log (signed), and a signed checkpoint of each
stream. Each test then tries one attack an operator with the admin user could make: the streams
deny deleting and purging, so a deletion or a cut is a stream deleted and made again.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import UUID, uuid4

import msgspec
import nats
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from stafett_cli.main import main
from stafett_contracts.access import Access
from stafett_contracts.case import ConcernShared, Escalated
from stafett_contracts.consent import ConsentGiven
from stafett_contracts.export import example_of
from stafett_contracts.identity import Actor, Role
from stafett_runtime import evidence
from stafett_runtime.accesslog import AccessLog
from stafett_runtime.contracts import ContractApplication
from stafett_runtime.jetstream.client import ConnectionSettings, JetStreamClient
from stafett_runtime.jetstream.core import stream_config
from stafett_runtime.jetstream.layout import StreamLayout
from stafett_runtime.natsaccess import create_missing_streams
from stafett_runtime.testing import NatsTestServer

AUDITOR = Actor(person="revisor-1", role=Role.AUDITOR)


class CaseLog(ContractApplication):
    name = "case"


class ConsentLog(ContractApplication):
    name = "consent"


@dataclass
class Platform:
    url: str
    case_id: UUID


def env(url: str) -> dict[str, str]:
    return {"PERSISTENCE_MODULE": "stafett_runtime.jetstream", "NATS_URL": url}


def event(cls: type[Any], aggregate: UUID, version: int, **fields: Any) -> Any:
    made = msgspec.structs.replace(
        example_of(cls), event_id=uuid4(), aggregate_id=aggregate, aggregate_version=version
    )
    return msgspec.structs.replace(made, **fields)


@pytest.fixture
def platform(nats_server: NatsTestServer) -> Platform:
    """Two cases (four CASE events), a consent, three reads in the access log, and a signed
    checkpoint of CASE, CONSENT and AUDIT."""
    url = nats_server.url
    asyncio.run(with_nats(url, create_missing_streams))
    case_id, other = uuid4(), uuid4()
    cases = CaseLog(env(url))
    try:
        cases.save(*(event(c, case_id, n) for n, c in enumerate([ConcernShared, Escalated], 1)))
        cases.save(event(ConcernShared, case_id, 3))
        cases.save(event(ConcernShared, other, 1))
    finally:
        cases.close()
    consents = ConsentLog(env(url))
    try:
        consents.save(event(ConsentGiven, uuid4(), 1, case_id=case_id))
    finally:
        consents.close()
    asyncio.run(reads_and_checkpoints(url, case_id))
    return Platform(url, case_id)


async def reads_and_checkpoints(url: str, case_id: UUID) -> None:
    client = await JetStreamClient.open(ConnectionSettings(url=url, name="test"))
    try:
        log = AccessLog(client, "case")
        await log.open()
        for _ in range(3):
            await log.record(
                actor=AUDITOR,
                case_id=case_id,
                what="case",
                purpose="tilsyn",
                access=Access(granted=True, basis="auditor", rule="auditor-with-purpose"),
                correlation_id="test",
            )
        for service, stream in (("case", "CASE"), ("consent", "CONSENT"), ("projection", "AUDIT")):
            signer = evidence.load_signer(service, None)
            await evidence.publish_key(client.core, signer)
            await evidence.Checkpointer(client, signer, [stream]).round()
    finally:
        await client.aclose()


async def with_nats(url: str, work: Callable[[Any], Any]) -> Any:
    nc = await nats.connect(url)
    try:
        return await work(nc)
    finally:
        await nc.close()


def verify(capsys: pytest.CaptureFixture[str], url: str, *more: str) -> tuple[int, str]:
    capsys.readouterr()
    code = main(["verify", "--nats", url, *more])
    return code, " ".join(capsys.readouterr().out.split())  # one line: rich wraps long faults


async def messages(nc: Any, stream: str) -> list[Any]:
    js = nc.jetstream()
    last = (await js.stream_info(stream)).state.last_seq
    found = []
    for seq in range(1, last + 1):
        try:
            found.append(await js.get_msg(stream, seq))
        except nats.js.errors.NotFoundError:
            continue
    return found


async def made_again(
    nc: Any, stream: str, keep: Callable[[Any], bool], *, deletable: bool = False
) -> None:
    """Delete `stream` and make it again with only the messages `keep` keeps, copied as they
    were (signatures and all): what an operator with the admin user can do."""
    js = nc.jetstream()
    old = await messages(nc, stream)
    await js.delete_stream(stream)
    config = stream_config(StreamLayout(stream, stream.lower()), 1)
    if deletable:
        config.deny_delete, config.deny_purge = False, False
    await js.add_stream(config)
    for message in old:
        if keep(message):
            headers = {
                k: v for k, v in (message.headers or {}).items() if not k.startswith("Nats-")
            }
            await js.publish(message.subject, message.data, headers=headers)


def attack(url: str, work: Callable[[Any], Any]) -> None:
    asyncio.run(with_nats(url, work))


def test_an_untampered_platform_verifies_and_its_checkpoints_can_be_kept_off_site(
    platform: Platform, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    kept = tmp_path / "checkpoints.json"

    code, out = verify(capsys, platform.url, "--export-checkpoints", str(kept))

    assert code == 0, out
    assert "OK: 8 events in 7 streams verified." in out
    assert "3 checkpoint(s) written" in out
    code, out = verify(capsys, platform.url, "--checkpoints", str(kept))
    assert code == 0, out


def test_an_unsigned_event_forged_into_case_is_named(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    # When someone publishes a well-formed event for the case's next version, unsigned
    forged = event(Escalated, platform.case_id, 4)

    async def forge(nc: Any) -> None:
        await nc.jetstream().publish(
            f"case.events.{platform.case_id}.Escalated",
            msgspec.json.encode(forged),
            headers={"Es-Topic": "case.Escalated@1", "Es-Originator-Version": "4"},
        )

    attack(platform.url, forge)

    code, out = verify(capsys, platform.url)
    assert code == 1
    assert f"CASE #5: case.events.{platform.case_id}.Escalated: unsigned" in out


def test_an_event_forged_into_consent_with_a_key_of_the_forgers_own_is_named(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    # When someone signs a consent with a key they made, in the consent service's name
    forger = evidence.Signer("consent", Ed25519PrivateKey.generate())
    consent_id = uuid4()
    forged = event(ConsentGiven, consent_id, 1, case_id=platform.case_id)
    subject = f"consent.events.{consent_id}.ConsentGiven"
    payload = msgspec.json.encode(forged)
    headers, _ = forger.sign(
        subject,
        {"Es-Topic": "consent.ConsentGiven@1", "Es-Originator-Version": "1"},
        payload,
        evidence.GENESIS,
    )

    async def forge(nc: Any) -> None:
        await nc.jetstream().publish(subject, payload, headers=headers)

    attack(platform.url, forge)

    code, out = verify(capsys, platform.url)
    assert code == 1
    assert f"CONSENT #2: {subject}: signed by '{forger.name}', a key never published" in out


def test_a_payload_altered_and_published_again_is_named(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the case's second event is published again with its payload changed, headers kept
    async def alter(nc: Any) -> None:
        js = nc.jetstream()
        original = await js.get_msg("CASE", 2)
        changed = original.data.replace(b'"level":', b'"level": ', 1) + b" "
        headers = {k: v for k, v in original.headers.items() if not k.startswith("Nats-")}
        await js.publish(original.subject, changed, headers=headers)

    attack(platform.url, alter)

    code, out = verify(capsys, platform.url)
    assert code == 1
    assert f"CASE #5: case.events.{platform.case_id}.Escalated: the signature of case/" in out
    assert "does not match the message (forged or altered)" in out


def test_a_message_deleted_by_the_admin_is_named(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    # When the admin makes CASE again so that it allows deleting, and deletes the second event
    async def delete(nc: Any) -> None:
        await made_again(nc, "CASE", lambda _: True, deletable=True)
        await nc.jetstream().delete_msg("CASE", 2)

    attack(platform.url, delete)

    code, out = verify(capsys, platform.url)
    assert code == 1
    assert "CASE: allows deleting or purging messages, which the platform's streams deny" in out
    assert "CASE #2: 1 sequence(s) deleted: #2, in a stream that denies deletion" in out
    assert f"CASE #3: case.events.{platform.case_id}.ConcernShared: the chain is broken" in out
    assert "CASE #4: does not match its checkpoint" in out


def test_an_event_left_out_breaks_the_chain(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    # When CASE is made again without its second event: every sequence there, every signature
    # sound
    async def leave_out(nc: Any) -> None:
        await made_again(nc, "CASE", lambda m: m.seq != 2)

    attack(platform.url, leave_out)

    code, out = verify(capsys, platform.url)
    assert code == 1
    assert f"CASE #2: case.events.{platform.case_id}.ConcernShared: the chain is broken" in out
    assert f"aggregate {platform.case_id}: version 3 where 2 was due" in out
    assert "CASE #3: ends at #3, cut back below its checkpoint at #4" in out


def test_the_newest_access_records_cut_from_audit_are_named(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    # When AUDIT is made again with only its first record (each record chains on its own)
    async def cut(nc: Any) -> None:
        await made_again(nc, "AUDIT", lambda m: m.seq == 1)

    attack(platform.url, cut)

    code, out = verify(capsys, platform.url)
    assert code == 1
    assert "AUDIT #1: ends at #1, cut back below its checkpoint at #3" in out


def test_a_purged_audit_stream_is_named(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    # When AUDIT is made again so that it allows purging, and purged to its newest record
    async def purge(nc: Any) -> None:
        await made_again(nc, "AUDIT", lambda _: True, deletable=True)
        await nc.jetstream().purge_stream("AUDIT", keep=1)

    attack(platform.url, purge)

    code, out = verify(capsys, platform.url)
    assert code == 1
    assert "AUDIT #1: #1-2: before the stream's first sequence 3" in out
    assert "AUDIT #3: does not match its checkpoint" in out


def test_a_deleted_audit_stream_is_named(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    async def delete(nc: Any) -> None:
        await nc.jetstream().delete_stream("AUDIT")

    attack(platform.url, delete)

    code, out = verify(capsys, platform.url)
    assert code == 1
    assert "AUDIT: missing: the platform keeps this stream" in out


def test_a_cut_hidden_by_rewriting_the_checkpoints_is_caught_by_the_copy_kept_off_site(
    platform: Platform, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # Given the checkpoints kept off-site
    kept = tmp_path / "checkpoints.json"
    assert verify(capsys, platform.url, "--export-checkpoints", str(kept))[0] == 0

    # When AUDIT is cut back and the checkpoints are emptied to hide it
    async def cut_and_hide(nc: Any) -> None:
        await made_again(nc, "AUDIT", lambda m: m.seq == 1)
        await made_again(nc, "CHECKPOINTS", lambda _: False)

    attack(platform.url, cut_and_hide)

    code, out = verify(capsys, platform.url, "--checkpoints", str(kept))
    assert code == 1
    assert "CHECKPOINTS: a checkpoint kept off-site is gone from the stream" in out
    assert "AUDIT #1: ends at #1, cut back below its checkpoint at #3 (kept off-site" in out
