"""`stafett erase CHILD_ID --reason REASON [--reference REF]`: erase a child's personal data.

The running case service does the work (`POST /children/{child_id}/erase`), so the erasure is
recorded (`ChildErased`) and the child's key deleted exactly as any administrator's erasure is.
The command asks as an administrator, with a development token (as `stafett token` mints them).
"""

from __future__ import annotations

from typing import Any

import httpx

from stafett_contracts.erasure import ErasureReason

REASONS = tuple(reason.value for reason in ErasureReason)


class EraseError(RuntimeError):
    pass


def erase_child(
    base_url: str, token: str, child_id: str, reason: str, reference: str | None
) -> dict[str, Any]:
    """The case service's answer: the child, and whether it was erased already."""
    url = f"{base_url}/children/{child_id}/erase"
    body = {"reason": reason, **({"reference": reference} if reference else {})}
    try:
        answer = httpx.post(
            url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )
    except httpx.HTTPError as error:
        raise EraseError(
            f"the case service does not answer at {base_url} ({error}); "
            "is `stafett up` running, or is --url right?"
        ) from error
    if answer.status_code == 404:
        raise EraseError(f"no case names the child {child_id}: nothing to erase")
    if answer.status_code != 200:
        raise EraseError(f"POST {url} answered {answer.status_code}: {answer.text[:500]}")
    erased: dict[str, Any] = answer.json()
    return erased


def said(erased: dict[str, Any]) -> str:
    if erased["already_erased"]:
        return f"child {erased['child_id']} was erased already: nothing new recorded"
    return f"child {erased['child_id']} erased: its personal data reads as erased everywhere"
