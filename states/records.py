"""Administrative acts in the audit trail: changes that move no workflow state (loading the org
file, a derivation's plan changes, a materialised batch), recorded by the same chain.

Apart from the engine's transactions because an act runs inside its caller's transaction.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from states import audit
from states.requests import clock_for, origin_of


@dataclass(frozen=True)
class Act:
    """An administrative act that changes no workflow state, for the audit trail."""

    entity_type: str
    entity_code: str
    event: str
    data: Mapping[str, Any]
    comment: str | None = None


def record(
    session: Session,
    *,
    entity_type: str,
    entity_code: str,
    event: str,
    actor: str,
    role: str,
    data: Mapping[str, Any],
    comment: str | None = None,
    as_of: datetime | None = None,
) -> int:
    """Audit an administrative act that changes no workflow state (e.g. loading the org file).

    Runs inside the caller's transaction so the act and its trace commit together.
    """
    [seq] = record_many(session, [Act(entity_type, entity_code, event, data, comment)],
                        actor=actor, role=role, as_of=as_of)
    return seq


def record_many(session: Session, acts: Sequence[Act], *, actor: str, role: str,
                as_of: datetime | None = None, flow_run_id: str | None = None) -> list[int]:
    """``record`` for many acts by one actor at one moment (e.g. a derivation's plan changes)."""
    # Acts are the product's own bookkeeping (derivations, batches, loads) run on someone's
    # behalf; the row says through which channel it was triggered.
    clock = clock_for(origin_of(session), as_of)
    at = audit.format_at(clock.moment)
    return audit.append(session.connection(), [
        audit.PendingEntry(a.entity_type, 0, a.entity_code, a.event, None, None, actor, role, at,
                           a.comment, audit.canonical_data(dict(a.data)), flow_run_id,
                           clock.channel, clock.credential, clock.simulated)
        for a in acts])


def id_ranges(ids: Sequence[int]) -> list[list[int]]:
    """Compress sorted ids into inclusive [first, last] runs for the audit row."""
    ranges: list[list[int]] = []
    for i in ids:
        if ranges and ranges[-1][1] == i - 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    return ranges
