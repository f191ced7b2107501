"""`stafett retry SERVICE [POSITION]`: process a service's parked events again, after a fix.

The running service does the work (`POST /processing/parked/retry`, `stafett_runtime.service`),
so each retry is recorded in its stream and happens once: `ParkedEventRetried` with the events
its handling makes, or `ProcessingParked` again if it still fails, and then it stays parked. The
command asks as an administrator, with a development token (as `stafett token` mints them).
"""

from __future__ import annotations

from typing import Any

import httpx
from rich.console import Console


class RetryError(RuntimeError):
    pass


def retry_parked(
    service: str, base_url: str, token: str, upstream: str | None, position: int | None
) -> list[dict[str, Any]]:
    """What became of each parked event the service processed again."""
    url = f"{base_url}/processing/parked/retry"
    body = {
        name: value
        for name, value in (("upstream", upstream), ("position", position))
        if value is not None
    }
    try:
        answer = httpx.post(
            url, json=body, headers={"Authorization": f"Bearer {token}"}, timeout=120
        )
    except httpx.HTTPError as error:
        raise RetryError(
            f"the {service} service does not answer at {base_url} ({error}); "
            "is `stafett up` running, or is --url right?"
        ) from error
    if answer.status_code != 200:
        raise RetryError(f"POST {url} answered {answer.status_code}: {answer.text[:500]}")
    retried: list[dict[str, Any]] = answer.json()["retried"]
    return retried


def print_outcomes(service: str, retried: list[dict[str, Any]], console: Console) -> int:
    """One line per parked event (never wrapped); exit status 1 if any is still parked."""
    lines = [f"{service}: nothing is parked"] if not retried else []
    for outcome in retried:
        where = f"{service}: {outcome['upstream']} event {outcome['position']}"
        if outcome["outcome"] == "parked again":
            lines.append(f"{where} failed again and stays parked: {outcome['error']}")
        elif outcome["outcome"] == "processed":
            lines.append(f"{where} processed ({outcome['events']} events recorded)")
        else:
            lines.append(f"{where} was retried meanwhile by another request")
    for line in lines:
        console.print(line, soft_wrap=True, highlight=False, markup=False)
    return 1 if any(o["outcome"] == "parked again" for o in retried) else 0
