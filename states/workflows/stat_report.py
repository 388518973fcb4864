"""The hazard-statistics report as a tracked duty (原安监总局令第16号 第十四条).

    due ─submit (principal signs)─▶ submitted
     └─mark_overdue (system, past due)─▶ overdue ─submit─▶ submitted

Reports are created set-wise by ``states.jobs.stat_reports`` once a period has ended.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from models.db import as_utc
from models.tables import STAT_REPORT as REPORT
from states.workflow import STRICT, Branch, Context, EmptyParams, EventRule, EvidenceRef, Subject, Workflow
from states.workflows.common import notify_roles

STATES = {"due": "待报送", "overdue": "逾期未报", "submitted": "已报送"}


class SubmitParams(BaseModel):
    model_config = STRICT
    summary: str = Field(default="", description="说明")
    attachments: list[EvidenceRef] = Field(default=[], description="盖章签字的统计表")


def past_due(subject: Subject, ctx: Context) -> str | None:
    due = as_utc(subject.row["due_at"])
    return None if due is not None and ctx.as_of >= due else "尚未到报送期限"


def on_submit(_subject: Subject, ctx: Context) -> dict[str, Any]:
    return {"submitted_at": ctx.as_of, "signed_by_id": ctx.actor_id}


# the regulator is told, and the principal who signs
notify_regulator = notify_roles("regulator", "principal")


_events = [
    EventRule(
        name="submit", label="签字报送", sources=("due", "overdue"), branches=(Branch("submitted"),),
        roles=("principal",), params=SubmitParams, effect=on_submit, notify=notify_regulator,
    ),
    EventRule(
        name="mark_overdue", label="逾期未报", sources=("due",), branches=(Branch("overdue"),),
        roles=("system",), params=EmptyParams, guards=(past_due,), notify=notify_regulator,
    ),
]

STAT_REPORT = Workflow(
    name="stat_report",
    label="隐患统计报表",
    table=REPORT,
    code_prefix="TJ",
    states=STATES,
    terminal=frozenset({"submitted"}),
    create_event=EventRule(
        name="materialize", label="生成报送任务", sources=(), branches=(Branch("due"),),
        roles=("system",),
    ),
    events={rule.name: rule for rule in _events},
    materialized=True,
)
