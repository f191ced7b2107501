"""A child's identifying data, which never stands in an event in clear (DOMAIN.md rule 8).

It enters with a concern as `PersonalData`, is sealed with a key of that child's own, and only
the `SealedPersonalData` is stored. Deleting the child's key erases it everywhere at once
(crypto-shredding); a reader then gets `Erased`, never an error.
"""

from __future__ import annotations

from datetime import date
from typing import Literal

import msgspec


class PersonalData(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    birth_date: date | None = None
    national_id: str | None = None  # fødselsnummer / CPR


class SealedPersonalData(msgspec.Struct, frozen=True, kw_only=True):
    """PersonalData encrypted with the child's own key: AES-256-GCM, base64 (RFC 4648)."""

    child_id: str  # whose key seals it: the pseudonymous child id
    algorithm: Literal["AES-256-GCM"] = "AES-256-GCM"
    nonce: str
    ciphertext: str


class SealedText(msgspec.Struct, frozen=True, kw_only=True):
    """Free text about a child or family (a concern, a note, minutes, a reason), sealed: UTF-8
    encrypted with the child's own key, AES-256-GCM, base64 (RFC 4648). Like personal data, it
    never stands in an event in clear, and erasing the child's key erases it everywhere."""

    child_id: str  # whose key seals it: the pseudonymous child id
    algorithm: Literal["AES-256-GCM"] = "AES-256-GCM"
    nonce: str
    ciphertext: str


class Erased(msgspec.Struct, frozen=True, kw_only=True):
    """What a reader gets once the child's key is deleted: the data is gone for good."""

    erased: Literal[True] = True
    reason: str = "the child's key was deleted (retention ended or erasure requested)"
