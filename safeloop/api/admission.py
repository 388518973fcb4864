"""Admission control: no more requests inside the app than the engine's pool can serve.

Each request holds one database connection from its first query to its session's close, and its
sync parts run on the threadpool. Without a bound, a burst larger than the pool (SQLAlchemy's
default 5 + 10) fills the threadpool with requests *waiting* for a connection while the requests
that hold one wait for a thread to finish on: nothing moves until the pool's timeout answers 500
(bench/api.py found it at 50 clients). Here the extra requests wait on an asyncio semaphore,
holding neither a thread nor a connection, and go in as others leave.

Reading and writing requests have gates of their own. On SQLite, reads run side by side (the
read-only engine: deferred transactions in WAL) while writes take the one write lock in turn:
a second writer inside would only sleep in SQLite's busy handler, and a queue here is fair where
that handler is not. A reading request may briefly take a second connection (recording a
credential's use, once a minute), so the gates leave room for it: reads x 2 + writes <= pool.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

DEFAULT_POOL = 15  # SQLAlchemy's QueuePool default: pool_size 5 + max_overflow 10
UNBOUNDED = 1_000
READING = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class Gates:
    reads: int
    writes: int


def gates_for(engine: Any) -> Gates:
    """The gates for the engine's pool (SQLite: one writer at a time)."""
    pool_size = _pool_size(engine)
    if getattr(getattr(engine, "dialect", None), "name", "") == "sqlite":
        return Gates(reads=max(1, (pool_size - 1) // 2), writes=1)
    if pool_size >= UNBOUNDED:
        return Gates(UNBOUNDED, UNBOUNDED)
    writes = max(1, pool_size // 5)
    return Gates(reads=max(1, (pool_size - writes) // 2), writes=writes)


def _pool_size(engine: Any) -> int:
    pool = getattr(engine, "pool", None)
    try:
        size, overflow = int(pool.size()), int(getattr(pool, "_max_overflow", 0))  # type: ignore[union-attr]
    except (AttributeError, TypeError, ValueError):
        return DEFAULT_POOL
    if overflow < 0:  # unlimited overflow: no pool wait to fear
        return UNBOUNDED
    return max(1, size + overflow)


class Admission:
    """Let at most ``gates.reads`` reading and ``gates.writes`` writing HTTP requests run inside
    ``app`` at a time; the rest queue, first come first served."""

    def __init__(self, app: ASGIApp, *, gates: Gates) -> None:
        self.app = app
        self.gates = gates
        # Per event loop: a server has one, but an app driven by two test clients at once has
        # two, and a semaphore waited on from another loop than the one releasing it never wakes.
        self._semaphores: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[bool, asyncio.Semaphore]] = weakref.WeakKeyDictionary()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        reading = scope.get("method", "GET") in READING
        gates = self._semaphores.setdefault(asyncio.get_running_loop(), {})
        semaphore = gates.get(reading)
        if semaphore is None:
            semaphore = asyncio.Semaphore(self.gates.reads if reading else self.gates.writes)
            gates[reading] = semaphore
        async with semaphore:
            await self.app(scope, receive, send)
