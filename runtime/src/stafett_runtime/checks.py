"""What a health check answers. Its own module, so that what is checked (a policy's loop,
`follower`) and what gathers the checks (`health`) both use it without importing each other."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import msgspec


class CheckResult(msgspec.Struct, frozen=True, omit_defaults=True):
    ok: bool
    detail: str
    degraded: bool = False  # passes, but something needs an operator (a parked event)


Check = Callable[[], Awaitable[CheckResult]]
