"""What a caller hands the engine and gets back: where a session's requests come from (``Origin``),
the times an event is recorded at (``Clock``), and the request and result types of ``fire``.

Kept apart from the engine so the shell can say how it identifies people, and callers can build
requests, without reading the transaction code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session

from core.errors import InvalidInput, SafeloopError
from models.db import as_utc, utcnow

# Channels through which a person acts; everything else is the product's own code (flows).
PERSON_CHANNELS = frozenset({"cli", "web", "api"})


@dataclass(frozen=True)
class Origin:
    """How the person behind a session is identified, and whether its times may be simulated.

    The shell puts one on each session (``set_origin``): the CLI says ``cli``, the web and API
    their channel and the session or token id. A session without one is the product's own code
    (flows, jobs, tests of the engine): channel ``flow``, times as given.
    """

    channel: str = "flow"
    credential: str | None = None  # session or token id, never the secret
    # A person's event is recorded at the real clock: its business time may differ from it by
    # ``tolerance`` at most, unless ``simulate`` is set (demo, imports), which the trail records.
    simulate: bool = False
    tolerance: timedelta = timedelta(minutes=5)

    @property
    def by_person(self) -> bool:
        return self.channel in PERSON_CHANNELS


FLOW_ORIGIN = Origin()


def set_origin(session: Session, origin: Origin) -> None:
    session.info["origin"] = origin


def origin_of(session: Session) -> Origin:
    found = session.info.get("origin")
    return found if isinstance(found, Origin) else FLOW_ORIGIN


@dataclass(frozen=True)
class Clock:
    """An event's times: ``moment`` is its business time (audit ``at``), ``reference`` what rules
    compare deadlines with, ``simulated`` whether the business time left the real clock."""

    moment: datetime
    reference: datetime
    simulated: bool
    channel: str = "flow"  # how the actor came, for the audit row
    credential: str | None = None


def clock_for(origin: Origin, as_of: datetime | None) -> Clock:
    """Check a requested business time against the real clock; refuse a person's backdating."""
    real = utcnow()
    moment = as_utc(as_of) or real
    off = abs(moment - real) > origin.tolerance
    if off and origin.by_person and not origin.simulate:
        minutes = int(origin.tolerance.total_seconds() // 60)
        raise InvalidInput(
            f"操作时间 {moment:%Y-%m-%d %H:%M} UTC 与当前时间 {real:%Y-%m-%d %H:%M} UTC 相差超过 "
            f"{minutes} 分钟：人员的操作按实际时间记录，不能倒签或预签（演示、导入等模拟须显式开启 "
            f"SAFELOOP_SIMULATE_TIME=true，并记入审计日志）", as_of=moment.isoformat())
    reference = moment if (origin.simulate or not origin.by_person) else max(moment, real)
    return Clock(moment, reference, off, origin.channel, origin.credential)


@dataclass(frozen=True)
class FireRequest:
    entity: int | str  # id, or the entity's code
    event: str
    actor: str
    role: str | None = None
    comment: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)
    expected_version: int | None = None


@dataclass(frozen=True)
class FireResult:
    entity_id: int
    code: str
    event: str
    from_state: str | None
    to_state: str
    version: int
    role: str
    audit_seq: int


@dataclass
class BatchResult:
    applied: list[FireResult] = field(default_factory=list)
    refused: list[tuple[FireRequest, SafeloopError]] = field(default_factory=list)
