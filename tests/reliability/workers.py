"""Bodies of the processes the concurrency tests spawn (a module of its own so that ``spawn``
imports only this, not pytest's test module).

Each worker opens its own engine on the shared database, waits at a barrier so the workers really
start together, fires its events through the engine and reports every outcome on a queue:
``(hazard_id, event, outcome, version, detail, expected_version)`` where outcome is ``"ok"``, a
``SafeloopError`` class name, or ``"crash"`` for anything else (which the tests treat as a
failure), and detail is the event's data on success, else the message.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from core.errors import SafeloopError
from models.db import make_engine
from states import engine
from states.workflows.hazard import HAZARD, PLAN_PARTS

NOW = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
Outcome = tuple[int, str, str, int | None, Any, int | None]


def _fire(session: Session, hid: int, event: str, actor: str, data: dict[str, Any],
          comment: str | None, expected: int | None) -> tuple[str, int | None, str]:
    try:
        result = engine.fire(session, HAZARD, hid, event, actor=actor, data=data, comment=comment,
                             as_of=NOW, expected_version=expected)
    except SafeloopError as exc:
        return type(exc).__name__, None, exc.message
    except Exception as exc:  # a driver error, a deadlock, "database is locked": all failures
        session.rollback()
        return "crash", None, repr(exc)
    return "ok", result.version, ""


def random_events(url: str, worker: int, hazards: list[int], count: int, barrier: Any,
                  queue: Any) -> None:
    """Fire ``count`` logged events (plan drafts, escalations, extensions) on random hazards;
    half of them carry the version the worker has just read (the optimistic web form path)."""
    rng = random.Random(worker)
    eng = make_engine(url)
    out: list[Outcome] = []
    try:
        with Session(eng, expire_on_commit=False) as session:
            barrier.wait(timeout=120)
            for i in range(count):
                hid = rng.choice(hazards)
                kind = rng.choice(["draft_plan", "draft_plan", "escalate", "extend_deadline"])
                comment = None
                if kind == "draft_plan":
                    actor = rng.choice(["li.anquan", "zhao.chejian", "zhou.weixiu"])
                    data: dict[str, Any] = {rng.choice(sorted(PLAN_PARTS)): f"w{worker}-{i}"}
                elif kind == "escalate":
                    actor, data = "system", {"level": rng.randint(1, 3)}
                else:
                    actor, comment = "wang.zhuren", f"延期 w{worker}-{i}"
                    data = {"deadline": NOW + timedelta(days=rng.randint(8, 400))}
                expected = None
                if rng.random() < 0.5:
                    try:
                        expected = engine.row_of(session, HAZARD, hid)["version"]
                    except Exception as exc:
                        out.append((hid, "read", "crash", None, repr(exc), None))
                    session.rollback()
                outcome, version, detail = _fire(session, hid, kind, actor, data, comment,
                                                 expected)
                out.append((hid, kind, outcome, version, data if outcome == "ok" else detail,
                            expected))
    finally:
        queue.put((worker, out))
        eng.dispose()


def accept_each(url: str, actor: str, hazards: list[int], versions: list[int | None],
                barrier: Any, queue: Any) -> None:
    """For each hazard in turn: wait for the rival at the barrier, then fire ``accept``."""
    eng = make_engine(url)
    out: list[Outcome] = []
    try:
        with Session(eng, expire_on_commit=False) as session:
            for hid, expected in zip(hazards, versions, strict=True):
                barrier.wait(timeout=120)
                outcome, version, detail = _fire(session, hid, "accept", actor, {}, None, expected)
                out.append((hid, "accept", outcome, version, detail, expected))
    finally:
        queue.put((actor, out))
        eng.dispose()
