"""What several workflows declare alike, defined once: the reflexive branch, the regulator role,
escalation and deadline inputs, time-stamping effects, unit-role recipients, the hazard lookup,
and facts derived when an event fires and recorded in its audit row (replay reads them back).

Only what is really the same lives here; a helper that differs by workflow (a refusal's wording,
who is told) stays in its workflow, or is built here from a parameter (``stamp``, ``notify_roles``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select

from models.db import as_utc
from models.tables import HAZARD
from states.workflow import ANY_OTHER, STRICT, Branch, Context, Effect, Notify, Subject

STAY = (Branch(ANY_OTHER),)  # a logged event that leaves the state as it is
REG = ("regulator",)  # the regulator alone
DEADLINE = "期限（只给日期时为当天 23:59:59）"  # a deadline field's description (CLI help, API)


class EscalateParams(BaseModel):
    """One step up an escalation ladder (levels 1–3; each workflow names its levels)."""

    model_config = STRICT
    level: int = Field(ge=1, le=3, description="升级级别 1–3")


class DeadlineParams(BaseModel):
    """A new deadline (a hazard's extension; a listing's extension request adds its due date)."""

    model_config = STRICT
    deadline: datetime = Field(description=DEADLINE)


# ---- effects ----------------------------------------------------------------------------------


def stamp(column: str) -> Effect:
    """The effect that records when the event happened in ``column`` (filed_at, closed_at …)."""
    def effect(_subject: Subject, ctx: Context) -> dict[str, Any]:
        return {column: ctx.as_of}
    effect.__name__ = f"stamp_{column}"
    return effect


def on_escalate(subject: Subject, _ctx: Context) -> dict[str, Any]:
    return {"escalation_level": subject.data["level"]}


# ---- recipients -------------------------------------------------------------------------------


def notify_roles(*roles: str) -> Notify:
    """Recipients: whoever holds each of ``roles`` at the entity's unit (resolved at dispatch)."""
    def notify(subject: Subject, _ctx: Context) -> list[str]:
        unit = f"unit:{subject.row['unit_id']}"
        return [f"role:{role}@{unit}" for role in roles]
    notify.__name__ = "notify_" + "_and_".join(roles)
    return notify


notify_regulator = notify_roles("regulator")
notify_principal = notify_roles("principal")
notify_principal_and_regulator = notify_roles("principal", "regulator")


# ---- lookups ----------------------------------------------------------------------------------


def hazard_row(ctx: Context, code_or_id: str | int) -> dict[str, Any] | None:
    """A hazard's row by code or id (the listing and the suspension order name one)."""
    column = HAZARD.c.id if isinstance(code_or_id, int) else HAZARD.c.code
    row = ctx.conn.execute(select(HAZARD).where(column == code_or_id)).mappings().first()
    return dict(row) if row else None


# ---- derived due dates: computed when the event fires, recorded, read back on replay ---------

Dues = Callable[[Subject, Context], dict[str, datetime]]


def due_fields(params: type[BaseModel]) -> tuple[str, ...]:
    """The due dates a params model carries: the engine derives them, input never gives them."""
    return tuple(name for name in params.model_fields if name.endswith("_due"))


def dues(subject: Subject, ctx: Context, derive: Dues) -> dict[str, datetime]:
    """The due dates as recorded in the event's audit data (replay), else derived now."""
    recorded = {k: as_utc(v) for k, v in subject.data.items() if k.endswith("_due") and v}
    return recorded if recorded else derive(subject, ctx)


def noting(derive: Dues) -> Callable[[Subject, Context], dict[str, Any]]:
    """The rule's ``annotate``: its derived due dates, for the audit row."""
    def annotate(subject: Subject, ctx: Context) -> dict[str, Any]:
        return {k: v.isoformat() for k, v in derive(subject, ctx).items()}
    return annotate
