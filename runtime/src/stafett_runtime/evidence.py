"""Tamper evidence: every message a service appends is signed and chained, and every stream is
checkpointed, so that `stafett verify` can tell a forged, altered, deleted or cut-back record.

The one place for it: the event store's recorders and the access log sign with `Signer.sign`,
the kernel publishes the key and runs the `Checkpointer`, and `stafett verify` checks with
`Keys`, `digest` and `running_hash`.

**Keys.** Each service signs with an Ed25519 key of its own (`load_signer`): read from
`STAFETT_SIGNING_KEY_FILE` (a Kubernetes Secret in production), made there on first start if
the file is missing (development: `<data>/event-keys/<service>.pem`, 0600), or, with no file
configured, a key that lives as long as the process. Its public key is published once, before
anything is signed with it, on `evidence.keys.<service>.<key id>` in the stream SIGNING_KEYS,
guarded so that a key id is written only once; the key id is the start of the SHA-256 of the
public key. NATS lets a service publish only under its own name there.

The header names, the evidence streams and their records are `stafett_contracts.evidence`'s,
which the AsyncAPI document describes. **Each message** carries three headers: `Stafett-Signer`
(`<service>/<key id>`), `Stafett-Previous` (the `digest` of the previous message on the same
aggregate's subjects, or GENESIS for the first) and `Stafett-Signature` (Ed25519 over the
message's `digest`). The digest covers the subject, the headers that say what the message is
(`SIGNED_HEADERS`: topic, aggregate, version, tracking position, signer, previous) and the
payload; NATS's own headers and the trace context are left out. The recorder knows the previous
message of an aggregate because it guards each write with the aggregate's last sequence
(`recorders.py`): the server refuses the write if that message is no longer the last. Group
commit means a writer never knows the message before its own in the whole stream, so the
stream-wide chain is the checkpoints' work.

**Checkpoints.** Every `interval` seconds and on a clean stop, each service publishes on
`evidence.checkpoints.<service>.<STREAM>` in the stream CHECKPOINTS a signed record of the stream
it owns: its last sequence and the `running_hash` of every message up to it, in sequence order
(carried on from the last checkpoint, reading only what came since). A stream cut back below a
checkpoint, or altered before it, no longer matches it; `stafett verify --export-checkpoints`
keeps them off-site.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import structlog
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from eventsourcing.persistence import OperationalError, PersistenceError

from stafett_contracts.evidence import CHECKPOINTS as CHECKPOINTS_STREAM
from stafett_contracts.evidence import GENESIS as GENESIS
from stafett_contracts.evidence import PREFIX, SIGNING_KEYS, PublicKeyRecord
from stafett_contracts.evidence import PREVIOUS as PREVIOUS
from stafett_contracts.evidence import SIGNATURE as SIGNATURE
from stafett_contracts.evidence import SIGNER as SIGNER
from stafett_contracts.evidence import CheckpointRecord as CheckpointRecord
from stafett_runtime.jetstream.core import (
    ConflictError,
    Connected,
    JetStreamCore,
    OutgoingMessage,
    StoredMessage,
)
from stafett_runtime.jetstream.layout import (
    APPLICATION_NAME,
    EXPECTED_SEQUENCE,
    NOTIFICATION_ID,
    ORIGINATOR_ID,
    ORIGINATOR_VERSION,
    TOPIC,
    StreamLayout,
    token,
)
from stafett_runtime.periodic import Periodic

log = structlog.get_logger(__name__)

SIGNED_HEADERS: tuple[str, ...] = (TOPIC, ORIGINATOR_ID, ORIGINATOR_VERSION)
SIGNED_HEADERS += (APPLICATION_NAME, NOTIFICATION_ID, SIGNER, PREVIOUS)
KEYS = StreamLayout(stream=SIGNING_KEYS, prefix=PREFIX, purpose="keys")
CHECKPOINTS = StreamLayout(stream=CHECKPOINTS_STREAM, prefix=PREFIX, purpose="checkpoints")
KEY_FILE_VARIABLE = "STAFETT_SIGNING_KEY_FILE"
DEFAULT_CHECKPOINT_INTERVAL = 60.0  # seconds


# Digests and hashes ---------------------------------------------------------------------------


def digest(subject: str, headers: Mapping[str, str], payload: bytes) -> str:
    """SHA-256 (hex) of what a message says: its subject, `SIGNED_HEADERS` and payload."""
    said = {name: headers[name] for name in SIGNED_HEADERS if name in headers}
    h = hashlib.sha256(msgspec.json.encode([subject, said]))  # JSON: one way to read it back
    h.update(b"\n")
    h.update(payload)
    return h.hexdigest()


def digest_of(message: StoredMessage) -> str:
    return digest(message.subject, message.headers, message.data)


def running_hash(previous: str, seq: int, message_digest: str) -> str:
    """The hash of a stream up to `seq`, from the hash up to the message before it."""
    h = hashlib.sha256(bytes.fromhex(previous))
    h.update(seq.to_bytes(8, "big"))
    h.update(bytes.fromhex(message_digest))
    return h.hexdigest()


def chain_of(subject: str) -> str | None:
    """The subjects a message is chained on: its aggregate's (`case.events.<id>`), or a tracking
    subject itself; None for the evidence streams' own records."""
    parts = subject.split(".")
    if len(parts) == 4 and parts[1] == "events":
        return ".".join(parts[:3])
    if len(parts) == 3 and parts[1] == "tracking":
        return subject
    return None


# Signing ------------------------------------------------------------------------------------


def key_id_of(public: Ed25519PublicKey) -> str:
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


class Signer:
    """A service's signing key: signs what the service appends."""

    def __init__(self, service: str, key: Ed25519PrivateKey) -> None:
        self.service = service
        self._key = key
        self.key_id = key_id_of(key.public_key())
        self.name = f"{service}/{self.key_id}"

    def sign(
        self, subject: str, headers: Mapping[str, str], payload: bytes, previous: str | None
    ) -> tuple[dict[str, str], str]:
        """`headers` with the signer, the previous digest (unless None) and the signature
        added, and the message's digest (the next message of its aggregate names it)."""
        signed = {**headers, SIGNER: self.name}
        if previous is not None:
            signed[PREVIOUS] = previous
        message_digest = digest(subject, signed, payload)
        signature = self._key.sign(bytes.fromhex(message_digest))
        signed[SIGNATURE] = base64.b64encode(signature).decode()
        return signed, message_digest

    def key_message(self) -> OutgoingMessage:
        """The public key, as published in SIGNING_KEYS: once per key id (guarded)."""
        raw = self._key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        record = PublicKeyRecord(
            service=self.service,
            key_id=self.key_id,
            algorithm="Ed25519",
            public_key=base64.b64encode(raw).decode(),
            published_at=datetime.now(UTC).isoformat(),
        )
        return OutgoingMessage(
            key_subject(self.service, self.key_id),
            msgspec.json.encode(record),
            {EXPECTED_SEQUENCE: "0"},
        )


def key_subject(service: str, key_id: str) -> str:
    return f"{KEYS.all_events[:-1]}{token(service)}.{token(key_id)}"


def checkpoint_subject(service: str, stream: str) -> str:
    return f"{CHECKPOINTS.all_events[:-1]}{token(service)}.{token(stream)}"


_signers: dict[tuple[str, str | None], Signer] = {}
_signers_lock = threading.Lock()


def load_signer(service: str, key_file: str | None) -> Signer:
    """The process's signer for `service`: from `key_file` (made there, 0600, if missing), or
    without one a key of the process's own. The same object for every caller in the process."""
    with _signers_lock:
        signer = _signers.get((service, key_file))
        if signer is None:
            key = Ed25519PrivateKey.generate() if key_file is None else _key_from(Path(key_file))
            if key_file is None:
                log.warning(
                    "no signing key file: events are signed with a key of this process",
                    service=service,
                    variable=KEY_FILE_VARIABLE,
                )
            signer = _signers[(service, key_file)] = Signer(service, key)
        return signer


def _key_from(path: Path) -> Ed25519PrivateKey:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        try:  # only its owner reads it; another process that made it first wins
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "wb") as file:
                file.write(pem)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path} holds no Ed25519 private key ({KEY_FILE_VARIABLE})")
    return key


_published: weakref.WeakKeyDictionary[JetStreamCore, set[str]] = weakref.WeakKeyDictionary()


async def publish_key(
    core: JetStreamCore, signer: Signer, replicas: int = 1, *, create: bool = True
) -> None:
    """Publish the signer's public key in SIGNING_KEYS (made if missing, with `create`), once per
    connection; a key id already there stays as it was."""
    done = _published.setdefault(core, set())
    if signer.name in done:
        return
    if create:
        await core.ensure_stream(KEYS, replicas)
    with contextlib.suppress(ConflictError):  # published before, by this key's earlier runs
        await core.publish(KEYS.stream, [signer.key_message()])
    done.add(signer.name)


# Checking -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PublishedKey:
    service: str
    key_id: str
    key: Ed25519PublicKey


class Keys:
    """The public keys published in SIGNING_KEYS, by signer name, and what is wrong there."""

    def __init__(self) -> None:
        self.by_name: dict[str, PublishedKey] = {}
        self.faults: list[tuple[int, str]] = []  # (sequence, what is wrong)

    def add(self, seq: int, subject: str, payload: bytes) -> None:
        try:
            record = json.loads(payload)
            raw = base64.b64decode(record["public_key"], validate=True)
            key = Ed25519PublicKey.from_public_bytes(raw)
            service, key_id = str(record["service"]), str(record["key_id"])
        except (ValueError, KeyError, TypeError):
            self.faults.append((seq, f"{subject}: not a public key record"))
            return
        if subject != key_subject(service, key_id) or key_id_of(key) != key_id:
            self.faults.append((seq, f"{subject}: the record names {service}/{key_id}"))
            return
        name = f"{service}/{key_id}"
        if name in self.by_name:  # the same key (a copy kept off-site) is no news
            if self.by_name[name].key.public_bytes_raw() != raw:
                self.faults.append((seq, f"{subject}: key {name} published again, another key"))
            return
        self.by_name[name] = PublishedKey(service, key_id, key)

    def check(
        self, subject: str, headers: Mapping[str, str], payload: bytes
    ) -> tuple[str | None, str | None]:
        """The signer's service if the message is signed by a published key, and else what is
        wrong: "unsigned", an unknown signer, or a bad signature (forged or altered)."""
        name = headers.get(SIGNER)
        signature = headers.get(SIGNATURE)
        if name is None and signature is None:
            return None, "unsigned"
        published = self.by_name.get(name or "")
        if published is None:
            return None, f"signed by {name!r}, a key never published in {KEYS.stream}"
        try:
            published.key.verify(
                base64.b64decode(signature or "", validate=True),
                bytes.fromhex(digest(subject, headers, payload)),
            )
        except (InvalidSignature, ValueError):
            return None, f"the signature of {name} does not match the message (forged or altered)"
        return published.service, None


_checkpoint = msgspec.json.Decoder(CheckpointRecord)


def read_checkpoint(payload: bytes) -> CheckpointRecord | None:
    try:
        return _checkpoint.decode(payload)
    except (msgspec.DecodeError, msgspec.ValidationError):
        return None


# Checkpointing ------------------------------------------------------------------------------


@dataclass
class _Running:
    seq: int = 0
    hash: str = GENESIS
    published: int = 0  # the last sequence a checkpoint was published for


class Checkpointer(Periodic):
    """Publishes a signed checkpoint of each of `streams` every `interval` seconds, when the
    stream has grown, and once more on `close`."""

    name = "checkpoints"
    PAGE = 1000

    def __init__(
        self,
        connected: Connected,
        signer: Signer,
        streams: Sequence[str],
        interval: float = DEFAULT_CHECKPOINT_INTERVAL,
        replicas: int = 1,
    ) -> None:
        super().__init__(interval)
        self._connected = connected
        self._signer = signer
        self._streams = list(streams)
        self._replicas = replicas
        self._running: dict[str, _Running] = {}
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        await self._connected.core.ensure_stream(CHECKPOINTS, self._replicas)
        await self.start()

    async def close(self) -> None:
        """Stop, and checkpoint what was written since the last round (a clean stop)."""
        await self.stop()
        try:
            await self.round()
        except Exception as error:  # the server may be gone; the last round stands
            log.warning("no checkpoint on stopping", error=str(error))

    async def round(self) -> None:
        async with self._lock:
            for stream in self._streams:
                try:
                    await self._checkpoint(stream)
                except (OperationalError, PersistenceError) as error:  # the next round tries again
                    log.warning("no checkpoint this round", stream=stream, error=str(error))

    async def _checkpoint(self, stream: str) -> None:
        core = self._connected.core
        running = self._running.get(stream)
        if running is None:
            running = self._running[stream] = await self._resume(core, stream)
        start = running.seq + 1
        while True:
            page, pending = await core.get_range(stream, None, start, self.PAGE)
            for message in page:
                running.hash = running_hash(running.hash, message.seq, digest_of(message))
                running.seq = message.seq
            if not page or pending == 0:
                break
            start = page[-1].seq + 1
        if running.seq > running.published:
            await self._publish(core, stream, running)

    async def _resume(self, core: JetStreamCore, stream: str) -> _Running:
        """Carry on from this service's last checkpoint of the stream, if there is one."""
        subject = checkpoint_subject(self._signer.service, stream)
        last = await core.get_last(CHECKPOINTS.stream, subject)
        record = None if last is None else read_checkpoint(last.data)
        if record is None or record.stream != stream:
            return _Running()
        return _Running(record.last_seq, record.hash, record.last_seq)

    async def _publish(self, core: JetStreamCore, stream: str, running: _Running) -> None:
        record = CheckpointRecord(
            stream=stream,
            last_seq=running.seq,
            hash=running.hash,
            service=self._signer.service,
            at=datetime.now(UTC),
        )
        subject = checkpoint_subject(self._signer.service, stream)
        payload = msgspec.json.encode(record)
        headers, _ = self._signer.sign(subject, {}, payload, previous=None)
        await core.publish(CHECKPOINTS.stream, [OutgoingMessage(subject, payload, headers)])
        running.published = running.seq
        log.info("checkpoint", stream=stream, last_seq=running.seq)
