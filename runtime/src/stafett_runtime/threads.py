"""Where blocking work runs: never on the event loop, and in a pool of the process's own.

The eventsourcing application, the store's recorders and the population register block; async
code calls them with `await call(fn, ...)`, which runs them on one of the process's blocking
workers, in the caller's context (its correlation id, its trace), as `asyncio.to_thread` does.

The pool is not the event loop's default executor, which has min(32, cores + 4) threads: six on
two cores. A store call holds its worker while it waits for the server, so six slow ones would
queue every other request behind them. Its size is the service's setting
`STAFETT_BLOCKING_WORKERS` (default 32), which the kernel applies when it opens.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

DEFAULT_WORKERS = 32


class _Workers:
    """The process's pool, made on first use with the size set last."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._size = DEFAULT_WORKERS
        self._pool: ThreadPoolExecutor | None = None

    def resize(self, size: int) -> None:
        with self._lock:
            if size == self._size:
                return
            self._size, old, self._pool = size, self._pool, None
        if old is not None:
            old.shutdown(wait=False)  # what runs there finishes; new work goes to the new pool

    def submit(self, work: Callable[[], T]) -> asyncio.Future[T]:
        with self._lock:  # never onto a pool that `resize` is shutting down
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self._size, thread_name_prefix="blocking")
            return asyncio.wrap_future(self._pool.submit(work))


_workers = _Workers()


def use_workers(count: int) -> None:
    """Run blocking calls on `count` workers from now on (the service's setting)."""
    _workers.resize(count)


async def call(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run blocking code on one of the process's workers, never on the event loop."""
    context = contextvars.copy_context()
    return await _workers.submit(functools.partial(context.run, fn, *args, **kwargs))
