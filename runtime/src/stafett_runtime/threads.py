"""Where blocking work runs: never on the event loop.

The eventsourcing application, the store's recorders and the population register block; async
code calls them with `await call(fn, ...)`, which runs them on a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")


async def call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking code on a worker thread, never on the event loop."""
    return await asyncio.to_thread(fn, *args, **kwargs)
