"""The wire shape of tamper evidence, as an integrator or an auditor reads it: the headers that
sign every message, and the two streams of the evidence (`stafett_runtime.evidence` signs and
checkpoints; `stafett verify` checks; the AsyncAPI document describes them from here).

- Every message a service appends carries `SIGNER`, `PREVIOUS` and `SIGNATURE`.
- SIGNING_KEYS holds each service's public keys, `evidence.keys.<service>.<key id>`, one
  `PublicKeyRecord` each, written once per key id.
- CHECKPOINTS holds each service's signed `CheckpointRecord`s of the stream it owns,
  `evidence.checkpoints.<service>.<STREAM>`.
"""

from __future__ import annotations

from datetime import datetime

import msgspec

SIGNER = "Stafett-Signer"  # <service>/<key id>
PREVIOUS = "Stafett-Previous"  # the digest of the previous message of the aggregate
SIGNATURE = "Stafett-Signature"  # base64 Ed25519 signature of the message's digest
GENESIS = "0" * 64  # the previous digest of an aggregate's first message, and the first hash

PREFIX = "evidence"  # the subjects of both evidence streams begin with it
SIGNING_KEYS = "SIGNING_KEYS"  # the stream, its subjects `evidence.keys.<service>.<key id>`
CHECKPOINTS = "CHECKPOINTS"  # the stream, its subjects `evidence.checkpoints.<service>.<STREAM>`


class PublicKeyRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A service's public signing key, published before anything is signed with it."""

    service: str
    key_id: str  # the first 16 hex digits of the SHA-256 of the raw public key
    algorithm: str  # Ed25519
    public_key: str  # base64 of the raw 32-byte key
    published_at: str  # ISO 8601


class CheckpointRecord(msgspec.Struct, frozen=True):
    """What a checkpoint says: `stream` held `last_seq` messages whose running hash is `hash`."""

    stream: str
    last_seq: int
    hash: str
    service: str
    at: datetime
