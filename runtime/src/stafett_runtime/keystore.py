"""Each child's own key, so that deleting one key erases that child's personal data everywhere.

Events are immutable and replayed forever, so personal data in them could never be deleted
(DOMAIN.md rules 8 and 10). It is sealed instead with a key of the child's own, kept in a NATS KV
bucket; purging that one key makes every copy of the sealed data unreadable at once, in every
stream, projection and process (crypto-shredding).

- A child's key is written once, by whichever process seals first, and lives until erased: the
  bucket has no TTL, because an expiring key would erase data nobody decided to erase.
- Erasure first deletes the key's message with JetStream's secure delete, which overwrites it on
  disk (a KV purge alone leaves the bytes in the message block until the block is compacted), then
  purges the key, so a replay of the bucket cannot recover it. That is why the bucket's stream is
  made here rather than by `create_key_value`, which denies message deletes.
- Erasure leaves the KV purge marker. It is how `open` tells erased data (`Erased`) from data that
  fails authentication (`TamperedError`, never `Erased`: tampering is not erasure), and why an
  erased child is never given a new key: its old blobs would then read as tampered.
- No key is cached, so an erasure holds at once for every process.
- With a key-encryption key (STAFETT_KEY_ENCRYPTION_KEY), the bucket holds keys only wrapped, so a
  copy of the bucket alone reveals nothing. Keys stored before a KEK was set are wrapped in place
  by `wrap_stored_keys`, once, before any service opens the bucket (`stafett up` does).
- A process that only opens sealed data (the projection) binds with `create=False`: its NATS user
  may read the bucket but not make it, so a missing bucket is said at once, not as a timeout.
- No key is ever logged or put in an error message.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeVar, cast

import msgspec
import structlog
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nats.aio.client import Client
from nats.js.api import DiscardPolicy, StorageType, StreamConfig
from nats.js.client import JetStreamContext
from nats.js.errors import (
    KeyNotFoundError,
    KeyWrongLastSequenceError,
    NoKeysError,
    NotFoundError,
)
from nats.js.kv import KeyValue

from stafett_contracts.envelope import private_fields
from stafett_contracts.personal import Erased, PersonalData, SealedPersonalData, SealedText
from stafett_runtime.settings import SettingsError

DEFAULT_BUCKET = "CHILD_KEYS"
KEY_ENCRYPTION_KEY_VARIABLE = "STAFETT_KEY_ENCRYPTION_KEY"
_KEY_BYTES = 32  # AES-256
_NONCE_BYTES = 12  # the 96-bit nonce GCM is made for
_CHILD_ID = re.compile(r"[-/_=a-zA-Z0-9]+(\.[-/_=a-zA-Z0-9]+)*")  # a valid NATS KV key

_TEXT_NONCE_LABEL = b"stafett sealed-text nonce"  # keeps the nonce key apart from the text key
_encode_personal = msgspec.json.Encoder()
_decode_personal = msgspec.json.Decoder(PersonalData)

T = TypeVar("T")
S = TypeVar("S", bound=msgspec.Struct)

log = structlog.get_logger(__name__)


class TamperedError(Exception):
    """Sealed data failed authentication: it was altered, or moved from another child."""


class ChildErasedError(Exception):
    """The child's key was erased for good: nothing can be sealed for that child again."""


class KeyStoreError(Exception):
    """The key store is not as it must be: misconfigured, or a key is gone without erasure."""


class ChildKeys:
    """Seals, opens and erases children's personal data with a key per child, held in NATS KV."""

    def __init__(
        self,
        js: JetStreamContext,
        bucket: str,
        kv: KeyValue,
        key_encryption_key: bytes | None = None,
        makes_keys: bool = True,
    ) -> None:
        self._js = js
        self._makes_keys = makes_keys  # false for a reader: it seals only under existing keys
        self._stream = f"KV_{bucket}"
        self._kv = kv
        self._kek = AESGCM(key_encryption_key) if key_encryption_key is not None else None

    @classmethod
    async def bind(
        cls,
        nc: Client,
        *,
        bucket: str = DEFAULT_BUCKET,
        replicas: int = 1,
        environ: Mapping[str, str] = os.environ,
        create: bool = True,
    ) -> ChildKeys:
        """The key store in `bucket`, created if missing (unless `create` is false: a reader's
        NATS user may not make it); the KEK, if any, comes from `environ`."""
        key_encryption_key = _key_encryption_key(environ)
        js = nc.jetstream()
        try:
            config = (await js.stream_info(f"KV_{bucket}")).config
        except NotFoundError:
            if not create:
                raise KeyStoreError(
                    f"bucket {bucket} does not exist yet: the case service makes it"
                ) from None
            # A KV bucket as create_key_value makes it, but with message deletes allowed. Making
            # the same config twice, as two processes starting at once may, is no conflict.
            config = (await js.add_stream(bucket_config(bucket, replicas))).config
        if config.max_age:
            raise KeyStoreError(f"bucket {bucket} has a TTL: keys would expire, erasing data")
        if config.deny_delete:
            raise KeyStoreError(f"bucket {bucket} denies message deletes: erasure cannot scrub")
        return cls(js, bucket, await js.key_value(bucket), key_encryption_key, makes_keys=create)

    async def seal(self, data: PersonalData, child_id: str) -> SealedPersonalData:
        key = await self._stored_key(child_id)
        if key is None:
            key = await self._create_key(child_id)
        if isinstance(key, Erased):
            raise ChildErasedError(f"child {child_id} was erased: no data can be sealed for it")
        nonce = os.urandom(_NONCE_BYTES)
        ciphertext = AESGCM(key).encrypt(nonce, _encode_personal.encode(data), child_id.encode())
        return SealedPersonalData(
            child_id=child_id, nonce=_base64(nonce), ciphertext=_base64(ciphertext)
        )

    async def open(self, sealed: SealedPersonalData) -> PersonalData | Erased:
        key = await self._stored_key(sealed.child_id)
        plaintext = _opened(key, sealed, sealed.child_id.encode(), "sealed personal data")
        return plaintext if isinstance(plaintext, Erased) else _decode_personal.decode(plaintext)

    async def seal_text(self, text: str, child_id: str, context: str = "") -> SealedText:
        """Free text about the child, sealed with the child's key.

        The nonce is not random but derived (an HMAC under a key of the child's key) from the
        text and `context` (say, the aggregate and field it is written to): the same text sealed
        twice in the same context is the same `SealedText`. A command retried is then the same
        command, and the domain finds it already satisfied instead of refusing a conflicting
        second event; and a sealed value compares equal to itself wherever it is copied. What
        this reveals is only that two sealed texts of one child in one context are equal; a
        nonce is never used for two different texts (SIV-style, RFC 5297)."""
        key = await self._stored_key(child_id)
        if key is None:
            if not self._makes_keys:
                raise KeyStoreError(f"child {child_id} has no key yet: the case service makes it")
            key = await self._create_key(child_id)
        if isinstance(key, Erased):
            raise ChildErasedError(f"child {child_id} was erased: no text can be sealed for it")
        plaintext = text.encode()
        nonce_key = hmac.digest(key, _TEXT_NONCE_LABEL, hashlib.sha256)
        nonce = hmac.digest(nonce_key, context.encode() + b"\x00" + plaintext, hashlib.sha256)[
            :_NONCE_BYTES
        ]
        ciphertext = AESGCM(key).encrypt(nonce, plaintext, _text_associated_data(child_id))
        return SealedText(child_id=child_id, nonce=_base64(nonce), ciphertext=_base64(ciphertext))

    def one_answer(self) -> Callable[[SealedText], Awaitable[str | Erased]]:
        """What opens the sealed texts of one answer: each to its text, or `Erased` once the
        child's key is gone (never an error for erasure). Each child's key is looked up once,
        not once per text (a round trip to the key store each), so the whole answer is opened
        under one state of the key: all its texts read, or all read as erased."""
        keys: dict[str, bytes | Erased | None] = {}

        async def open_text(sealed: SealedText) -> str | Erased:
            if sealed.child_id not in keys:
                keys[sealed.child_id] = await self._stored_key(sealed.child_id)
            return self._open_text_with(keys[sealed.child_id], sealed)

        return open_text

    def _open_text_with(self, key: bytes | Erased | None, sealed: SealedText) -> str | Erased:
        associated = _text_associated_data(sealed.child_id)
        plaintext = _opened(key, sealed, associated, "sealed text")
        return plaintext if isinstance(plaintext, Erased) else plaintext.decode()

    async def erase(self, child_id: str, reason: str) -> None:
        """Overwrite the child's key on disk, then purge it for good; the purge marker stays.
        A child erased already is left as it is: erasing again changes nothing."""
        if isinstance(await self._stored_key(child_id), Erased):
            return
        with contextlib.suppress(NotFoundError):  # no key: never made, or already erased
            entry = await self._kv.get(_checked(child_id))
            assert entry.revision is not None  # the stream sequence of the key's message
            await self._js.delete_msg(self._stream, entry.revision)  # a secure delete
        await self._kv.purge(child_id)
        log.info("child_key_erased", child_id=child_id, reason=reason)

    async def wrap_stored_keys(self) -> int:
        """Wrap, in place, every key stored unwrapped (made before there was a KEK); erasure
        markers stay as they are. How many were wrapped. Run it before any service opens the
        bucket: a service with the KEK refuses an unwrapped key. The unwrapped bytes are no
        longer readable; on disk they go when nats-server compacts the message block."""
        if self._kek is None:
            raise KeyStoreError(f"set {KEY_ENCRYPTION_KEY_VARIABLE} to wrap the stored keys")
        try:
            children = await self._kv.keys()  # purged (erased) keys are not listed
        except NoKeysError:
            return 0
        wrapped = 0
        for child_id in children:
            entry = await self._kv.get(child_id)
            stored = entry.value or b""
            if len(stored) != _KEY_BYTES:  # wrapped already: nonce, key and tag
                continue
            # Only if it is still the message read: never over a key changed meanwhile.
            await self._kv.update(child_id, self._wrap(child_id, stored), last=entry.revision)
            wrapped += 1
        log.info("child_keys_wrapped", count=wrapped)
        return wrapped

    async def _stored_key(self, child_id: str) -> bytes | Erased | None:
        """The child's key; `Erased` once it was deleted or purged; None if there never was one."""
        try:
            entry = await self._kv.get(_checked(child_id))
        except KeyNotFoundError as missing:
            return None if missing.op is None else Erased()
        return self._unwrap(child_id, entry.value or b"")

    async def _create_key(self, child_id: str) -> bytes | Erased:
        key = AESGCM.generate_key(bit_length=256)
        try:
            # Expect no message at all on the key. kv.create would also write over an erasure
            # marker, and so give an erased child a new key.
            await self._kv.update(child_id, self._wrap(child_id, key), last=0)
        except KeyWrongLastSequenceError:
            winners_key = await self._stored_key(child_id)  # another process sealed first
            if winners_key is None:
                raise KeyStoreError(
                    f"the key of child {child_id} vanished as it was made"
                ) from None
            return winners_key
        log.info("child_key_created", child_id=child_id)
        return key

    def _wrap(self, child_id: str, key: bytes) -> bytes:
        if self._kek is None:
            return key
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + self._kek.encrypt(nonce, key, child_id.encode())

    def _unwrap(self, child_id: str, stored: bytes) -> bytes:
        if self._kek is None:
            if len(stored) != _KEY_BYTES:
                raise KeyStoreError(
                    f"the key of child {child_id} is stored wrapped: "
                    f"set {KEY_ENCRYPTION_KEY_VARIABLE}"
                )
            return stored
        try:
            return self._kek.decrypt(
                stored[:_NONCE_BYTES], stored[_NONCE_BYTES:], child_id.encode()
            )
        except (InvalidTag, ValueError):
            raise KeyStoreError(
                f"the key of child {child_id} does not unwrap with this "
                f"{KEY_ENCRYPTION_KEY_VARIABLE}: another one, or the key is stored unwrapped"
            ) from None


def _opened(
    key: bytes | Erased | None,
    sealed: SealedPersonalData | SealedText,
    associated_data: bytes,
    what: str,
) -> bytes | Erased:
    """The plaintext of what was sealed with the child's `key`, or `Erased` once it is gone."""
    if key is None:
        # Something sealed exists, so a key did: a wrong bucket must not pass for lawful erasure.
        raise KeyStoreError(
            f"child {sealed.child_id} has neither a key nor an erasure marker: "
            "wrong bucket, or the key store was lost"
        )
    if isinstance(key, Erased):
        return key
    try:
        return AESGCM(key).decrypt(
            base64.b64decode(sealed.nonce, validate=True),
            base64.b64decode(sealed.ciphertext, validate=True),
            associated_data,
        )
    except (InvalidTag, ValueError):  # ValueError: bad base64 or nonce length
        raise TamperedError(
            f"{what} of child {sealed.child_id} failed authentication: "
            "altered, or moved from another child"
        ) from None


async def seal_private_fields(value: S, seal: Callable[[str], Awaitable[SealedText]]) -> S:
    """`value` (a command or an event) with the clear text of each field marked `"x-sealed"`
    (`stafett_contracts.envelope.private_fields`), however deep, sealed by `seal`."""
    changes: dict[str, object] = {}
    private = private_fields(type(value))
    for name in value.__struct_fields__:
        held = getattr(value, name)
        if name in private and isinstance(held, str):
            changes[name] = await seal(held)
        elif name in private and isinstance(held, tuple) and held:
            changes[name] = tuple(
                [await seal(item) if isinstance(item, str) else item for item in held]
            )
        elif isinstance(held, msgspec.Struct) and not isinstance(held, SealedText):
            changes[name] = await seal_private_fields(held, seal)
        elif isinstance(held, tuple) and any(isinstance(item, msgspec.Struct) for item in held):
            changes[name] = tuple(
                [
                    await seal_private_fields(item, seal)
                    if isinstance(item, msgspec.Struct) and not isinstance(item, SealedText)
                    else item
                    for item in held
                ]
            )
    return msgspec.structs.replace(value, **changes) if changes else value


async def open_sealed_texts(
    value: T,
    open_text: Callable[[SealedText], Awaitable[str | Erased]],
    erased_as: str | None = None,
) -> T:
    """`value` with every sealed text in it replaced by what `open_text` makes of it: the text,
    or `Erased` (or `erased_as`, for a document that wants words). Walks structs, tuples, lists
    and dicts; a sealed text is a `SealedText`, or a dict of its JSON (an event read as JSON).
    Each sealed value is opened once."""
    found: list[SealedText] = []
    _collect_sealed(value, found)
    opened: dict[SealedText, str | Erased] = {}
    for sealed in found:
        if sealed not in opened:
            text = await open_text(sealed)
            opened[sealed] = (
                erased_as if erased_as is not None and isinstance(text, Erased) else text
            )
    return cast(T, _replaced(value, opened)) if opened else value


_SEALED_KEYS = frozenset(f.name for f in msgspec.structs.fields(SealedText))
# In an event read as JSON, sealed personal data has the shape of sealed text: it is opened only
# by `ChildKeys.open`, for a reader the rule lets know who the child is, never here.
_PERSONAL_DATA = "personal_data"
# What holds no text to open: passed over at once (most of what an answer holds; the walk runs
# on every answer with free text in it).
_LEAVES = (str, int, float, bool, bytes, type(None))


def _as_sealed(value: object) -> SealedText | None:
    if isinstance(value, SealedText):
        return value
    if isinstance(value, dict) and value.keys() == _SEALED_KEYS:
        return msgspec.convert(value, SealedText)
    return None


def _collect_sealed(value: object, found: list[SealedText]) -> None:
    if isinstance(value, _LEAVES):
        return
    if (sealed := _as_sealed(value)) is not None:
        found.append(sealed)
    elif isinstance(value, msgspec.Struct):
        for field in value.__struct_fields__:
            _collect_sealed(getattr(value, field), found)
    elif isinstance(value, tuple | list):
        for item in value:
            _collect_sealed(item, found)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key != _PERSONAL_DATA:
                _collect_sealed(item, found)


def _replaced(value: object, opened: Mapping[SealedText, str | Erased]) -> object:
    if isinstance(value, _LEAVES):
        return value
    if (sealed := _as_sealed(value)) is not None:
        return opened[sealed]
    if isinstance(value, msgspec.Struct):
        changes = {}
        for field in value.__struct_fields__:
            old = getattr(value, field)
            new = _replaced(old, opened)
            if new is not old:
                changes[field] = new
        return msgspec.structs.replace(value, **changes) if changes else value
    if isinstance(value, tuple | list):
        items = [_replaced(item, opened) for item in value]
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return type(value)(items) if isinstance(value, list) else tuple(items)
    if isinstance(value, dict):
        return {
            key: item if key == _PERSONAL_DATA else _replaced(item, opened)
            for key, item in value.items()
        }
    return value


def bucket_config(bucket: str, replicas: int) -> StreamConfig:
    """The bucket's stream: as create_key_value makes it, but with message deletes allowed."""
    return StreamConfig(
        name=f"KV_{bucket}",
        subjects=[f"$KV.{bucket}.>"],
        storage=StorageType.FILE,
        num_replicas=replicas,
        max_msgs_per_subject=1,
        discard=DiscardPolicy.NEW,
        duplicate_window=120,
        allow_rollup_hdrs=True,
        deny_delete=False,
    )


def _key_encryption_key(environ: Mapping[str, str]) -> bytes | None:
    value = environ.get(KEY_ENCRYPTION_KEY_VARIABLE)
    if not value:
        return None
    try:
        key = base64.b64decode(value, validate=True)
    except binascii.Error:
        key = b""
    if len(key) != _KEY_BYTES:  # the message leaves the value out: it is a secret
        raise SettingsError(f"{KEY_ENCRYPTION_KEY_VARIABLE} must be 32 random bytes in base64")
    return key


def _text_associated_data(child_id: str) -> bytes:
    """Text is bound to the child and to being text: sealed personal data (the same key, the
    same shape) never opens as text, nor text as personal data."""
    return child_id.encode() + b"\x00text"


def _checked(child_id: str) -> str:
    if _CHILD_ID.fullmatch(child_id) is None:
        raise ValueError(f"not a usable child id (a NATS KV key): {child_id!r}")
    return child_id


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
