"""Ids made from what they are about, so doing the same thing twice collides in the store.

A notification's id is derived from its trigger, recipient and channel: a second request for
the same one is an optimistic-concurrency conflict at version 1, never a second notification.
"""

from __future__ import annotations

from uuid import NAMESPACE_URL, UUID, uuid5

NAMESPACE = uuid5(NAMESPACE_URL, "https://stafett.example/notify")


def derived_id(*parts: object) -> UUID:
    return uuid5(NAMESPACE, "|".join(str(part) for part in parts))
