"""The flows by name, with their default schedules (cron in the configured zone)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from flows.audit_checkpoint import audit_checkpoint
from flows.dispatch_notifications import dispatch_notifications
from flows.materialize_inspections import materialize_inspections
from flows.sweep_deadlines import sweep_deadlines


@dataclass(frozen=True)
class FlowEntry:
    flow: Any
    cron: str
    label: str


FLOWS: dict[str, FlowEntry] = {
    "materialize-inspections": FlowEntry(materialize_inspections, "5 0 * * *", "每天 00:05 生成排查任务"),
    "sweep-deadlines": FlowEntry(sweep_deadlines, "*/15 * * * *", "每 15 分钟期限巡检"),
    "audit-checkpoint": FlowEntry(audit_checkpoint, "30 23 * * *", "每天 23:30 审计检查点"),
    "dispatch-notifications": FlowEntry(dispatch_notifications, "* * * * *", "每分钟分发通知"),
}
