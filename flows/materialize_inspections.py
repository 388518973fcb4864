"""Flow ``materialize-inspections``: the current period's task for every active plan (daily).

Before creating tasks it brings the plans up to date: regulators' annual plans become their
inspection plans, and changed risk grades re-derive the risk items of the checklists (对表检查).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from prefect import flow, task

from core.rules import Rules
from flows.common import flow_run_id, resolve_as_of, session_for, settings_for
from states.jobs import calendar_watch, regulator_plans, risk_checklists
from states.jobs.duties import materialize_duties
from states.jobs.materialize import materialize
from states.jobs.stat_reports import materialize_reports


@task(name="materialize-batch")
def materialize_task(as_of: datetime, enterprise_ids: list[int] | None,
                     run_id: str | None) -> dict[str, Any]:
    settings = settings_for()
    rules = Rules.from_settings(settings)
    with session_for(settings, rules) as session:
        regulator_plans.sync(session, as_of=as_of, flow_run_id=run_id)
        derived = risk_checklists.sync(session, as_of=as_of, zone=rules.zone,
                                       enterprise_ids=enterprise_ids, flow_run_id=run_id)
        reports = materialize_reports(session, as_of=as_of, zone=rules.zone,
                                      flow_run_id=run_id)
        duties = materialize_duties(session, as_of=as_of, rules=rules,
                                    enterprise_ids=enterprise_ids, flow_run_id=run_id)
        report = materialize(
            session, as_of=as_of, zone=rules.zone, calendar=rules.calendar,
            flow_run_id=run_id, batch_size=settings.materialize_batch_size,
            enterprise_ids=enterprise_ids,
        )
        calendar_alert = calendar_watch.alert(session, calendar=rules.calendar, zone=rules.zone,
                                              as_of=as_of, skipped=report.warnings + duties.warnings,
                                              flow_run_id=run_id)
    return {"created": report.created, "total": report.total, "batches": report.batches,
            "warnings": report.warnings + duties.warnings, "stat_reports": reports,
            "duties": duties.to_dict(),
            "risk_checklists": derived.to_dict(), "calendar_alert": calendar_alert}


@flow(name="materialize-inspections", log_prints=True)
def materialize_inspections(as_of: datetime | None = None,
                            enterprise_ids: list[int] | None = None) -> dict[str, Any]:
    """生成排查任务：为每个有效的排查计划生成本周期的任务（幂等）。"""
    moment = resolve_as_of(as_of)
    result = materialize_task(moment, enterprise_ids, flow_run_id())
    print(f"生成排查任务 {result['total']} 个：{result['created']}；"
          f"风险点管控措施更新检查表的计划 {result['risk_checklists']['plans_changed']} 个；"
          f"履职任务 {result['duties']['created']} 个")
    for warning in result["warnings"]:
        print(f"警告：{warning}")
    if result["calendar_alert"] is not None:
        print(f"工作日历覆盖即将结束或已不足：已通知审计员（审计序号 {result['calendar_alert']}）；"
              "查看：safeloop calendar status")
    return result
