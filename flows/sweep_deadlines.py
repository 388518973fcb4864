"""Flow ``sweep-deadlines``: due-soon reminders, overdue escalation, missed inspections."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from prefect import flow, task
from prefect.context import FlowRunContext

from core.rules import Rules
from flows.common import flow_run_id, resolve_as_of, session_for, settings_for
from states.jobs.duty_sweep import sweep_duties
from states.jobs.sweep import sweep


@task(name="sweep-partition")
def sweep_task(as_of: datetime, enterprise_ids: list[int] | None,
               run_id: str | None) -> dict[str, Any]:
    settings = settings_for()
    rules = Rules.from_settings(settings)
    with session_for(settings, rules) as session:
        report = sweep(
            session, as_of=as_of, ladder=settings.escalation_days,
            due_soon=timedelta(hours=settings.due_soon_hours),
            batch_size=settings.sweep_batch_size, enterprise_ids=enterprise_ids,
            flow_run_id=run_id, rules=rules,
        )
        duties = sweep_duties(session, as_of=as_of, rules=rules,
                              batch_size=settings.sweep_batch_size,
                              enterprise_ids=enterprise_ids, flow_run_id=run_id)
    return {**report.to_dict(), **duties.to_dict()}


@flow(name="sweep-deadlines", log_prints=True)
def sweep_deadlines(as_of: datetime | None = None,
                    partitions: list[list[int]] | None = None) -> dict[str, Any]:
    """期限巡检：到期提醒、逾期逐级升级、过期排查任务记为漏检、履职任务提醒/逾期/升级。

    ``partitions`` (lists of enterprise ids) runs the sweep as that many concurrent tasks.
    """
    moment = resolve_as_of(as_of)
    run_id = flow_run_id()
    if not partitions:
        result = sweep_task(moment, None, run_id)
    elif FlowRunContext.get() is None:  # called through .fn(): no task runner, run in turn
        result = _merge([sweep_task.fn(moment, ids, run_id) for ids in partitions])
    else:
        futures = [sweep_task.submit(moment, ids, run_id) for ids in partitions]
        result = _merge([f.result() for f in futures])
    print(f"期限巡检：提醒 {result['reminders']}，升级 {result['escalations']}，"
          f"漏检 {result['missed']}，职责逾期 {result['duties_overdue']}，"
          f"统计表逾期 {result['reports_overdue']}，风险点到期复评 {result['risk_reviews']}，"
          f"履职任务提醒 {result['duty_reminders']}、逾期 {result['duties_missed']}、"
          f"升级 {result['duty_escalations']}，"
          f"拒绝 {result['refused']}")
    return result


def _merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Add the partitions' counts: numbers sum, per-level dicts sum level by level."""
    merged: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if isinstance(value, dict):
                levels = merged.setdefault(key, {})
                for level, count in value.items():
                    levels[level] = levels.get(level, 0) + count
            else:
                merged[key] = merged.get(key, 0) + value
    return merged
