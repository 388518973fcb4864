"""What a dispatch run is configured with, what it reports, and the clock it runs on.

Kept apart so the modules doing one part of the run (grouping, rendering, sending) share these
without importing each other or the dispatcher.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from typing import Any

from core.errors import InvalidInput
from models.db import as_utc


@dataclass(frozen=True)
class DispatchConfig:
    max_attempts: int = 8
    backoff_s: float = 30.0
    backoff_max_s: float = 3600.0
    concurrency: int = 16
    batch_size: int = 200
    timeout_s: float = 10.0
    lease_s: float = 300.0
    digest_time: str | None = "08:00"
    zone: str = "Asia/Shanghai"
    run_budget_s: float | None = 50.0
    digest_items: int = 20

    @classmethod
    def from_settings(cls, settings: Any) -> DispatchConfig:
        digest = settings.notify_digest_time or None
        if digest is not None:
            try:
                dtime.fromisoformat(digest)
            except ValueError as exc:
                raise InvalidInput(f"SAFELOOP_NOTIFY_DIGEST_TIME「{digest}」应为 HH:MM") from exc
        return cls(
            max_attempts=settings.notify_max_attempts, backoff_s=settings.notify_backoff_s,
            backoff_max_s=settings.notify_backoff_max_s,
            concurrency=settings.notify_concurrency, batch_size=settings.notify_batch_size,
            timeout_s=settings.notify_timeout_s, lease_s=settings.notify_lease_s,
            digest_time=settings.notify_digest_time or None, zone=settings.timezone,
            run_budget_s=settings.notify_run_budget_s,
        )

    def backoff(self, attempts: int) -> timedelta:
        """Wait before attempt ``attempts + 1``: base, 2×base, 4×base … capped."""
        return timedelta(seconds=min(self.backoff_s * 2 ** max(0, attempts - 1),
                                     self.backoff_max_s))


@dataclass
class DispatchReport:
    batches: int = 0
    claimed: int = 0
    messages: int = 0
    delivered: int = 0  # messages whose every channel has it
    sends_ok: int = 0
    sends_failed: int = 0
    retrying: int = 0
    dead: int = 0
    unrouted: int = 0
    skipped: int = 0
    held: int = 0
    digests: int = 0
    alerts: int = 0
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Clock:
    """``as_of`` advancing with the wall clock: leases and backoff stay right in a long run."""

    def __init__(self, as_of: datetime) -> None:
        self.start = as_utc(as_of) or datetime.now(UTC)
        self.t0 = time.monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=time.monotonic() - self.t0)
