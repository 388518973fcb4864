"""Admission control: at most as many requests inside the app as the engine's pool has connections.

Each request holds one database connection from its first query to its session's close, and its
sync parts run on the threadpool. Without a bound, a burst larger than the pool (SQLAlchemy's
default 5 + 10) fills the threadpool with requests *waiting* for a connection while the requests
that hold one wait for a thread to finish on: nothing moves until the pool's timeout answers 500
(bench/api.py found it at 50 clients). Here the extra requests wait on an asyncio semaphore,
holding neither a thread nor a connection, and go in as others leave.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send

DEFAULT_SLOTS = 15  # SQLAlchemy's QueuePool default: pool_size 5 + max_overflow 10
# SQLite: every transaction is BEGIN IMMEDIATE (models.db), so requests run one at a time anyway;
# more inside only poll SQLite's busy handler, starve, and time out (503s at 100k hazards). Two:
# a long audit export does not stop everyone else.
SQLITE_SLOTS = 2


def pool_slots(engine: Any) -> int:
    """How many connections the engine's pool can hand out at once (unbounded pools: default)."""
    if getattr(getattr(engine, "dialect", None), "name", "") == "sqlite":
        return SQLITE_SLOTS
    pool = getattr(engine, "pool", None)
    try:
        size, overflow = int(pool.size()), int(getattr(pool, "_max_overflow", 0))  # type: ignore[union-attr]
    except (AttributeError, TypeError, ValueError):
        return DEFAULT_SLOTS
    if overflow < 0:  # unlimited overflow: no pool wait to fear
        return 1_000
    return max(1, size + overflow)


class Admission:
    """Let at most ``slots`` HTTP requests run inside ``app`` at a time; the rest queue."""

    def __init__(self, app: ASGIApp, *, slots: int) -> None:
        self.app = app
        self.slots = slots
        self._semaphore: asyncio.Semaphore | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self._semaphore is None:  # made on the server's own event loop
            self._semaphore = asyncio.Semaphore(self.slots)
        async with self._semaphore:
            await self.app(scope, receive, send)
