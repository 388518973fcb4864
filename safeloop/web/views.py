"""What the pages show of an entity, beyond what ``safeloop.api.queries`` reads: the facts worth a
person's eye with Chinese labels, and names for the ids (people, units) the row and the trail carry.

Generic: a column is shown when it has a label here and a value, whatever the workflow.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from core.timeparse import to_local
from models.enums import HazardCategory, HazardGrade, HazardSource, LabelledEnum, Role
from models.tables import ENTERPRISE, PERSON, UNIT

FACTS: dict[str, str] = {
    "title": "名称", "name": "名称", "grade": "等级", "category": "类别", "source": "来源",
    "enterprise_id": "企业", "unit_id": "单位", "location": "地点", "description": "描述",
    "found_at": "发现时间", "finder_id": "发现人", "owner_id": "整改责任人", "acceptor_id": "验收人",
    "rectifier_id": "整改人", "measures": "整改措施", "funds": "资金（元）", "reason": "原因",
    "period_start": "周期开始", "period_end": "周期结束", "due_at": "期限", "review_due": "复核期限",
    "escalation_level": "督办升级", "cancel_reason": "撤销原因", "accepted_at": "验收时间",
    "closed_at": "关闭时间", "created_at": "登记时间", "updated_at": "更新时间",
}
ENUMS: dict[str, type[LabelledEnum]] = {"grade": HazardGrade, "category": HazardCategory,
                                        "source": HazardSource}
PEOPLE_COLUMNS = ("finder_id", "owner_id", "acceptor_id", "rectifier_id", "reinspected_by_id",
                  "accepted_by_id")


def names(conn: Connection, table: Any, ids: Iterable[Any], key: str = "id") -> dict[Any, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    column = table.c[key]
    return {r[0]: r[1] for r in conn.execute(select(column, table.c.name).where(column.in_(wanted)))}


def local(value: Any, zone: str) -> str:
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return value
    return to_local(value, zone) if isinstance(value, datetime) else ""


def time_left(due: Any, now: datetime, zone: str) -> tuple[str, bool]:
    """("剩余 3 天 4 小时" or "已逾期 2 天", overdue) for a deadline."""
    if isinstance(due, str):
        due = datetime.fromisoformat(due.replace("Z", "+00:00"))
    if not isinstance(due, datetime):
        return "", False
    if due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    left = due - now
    overdue = left.total_seconds() < 0
    seconds = abs(int(left.total_seconds()))
    days, hours, minutes = seconds // 86400, seconds % 86400 // 3600, seconds % 3600 // 60
    short = f"{hours} 小时 {minutes} 分" if hours else f"{minutes} 分钟"
    text = f"{days} 天 {hours} 小时" if days else short
    return (f"已逾期 {text}" if overdue else f"剩余 {text}"), overdue


def due_today(due: Any, now: datetime, zone: str) -> bool:
    if not isinstance(due, datetime):
        return False
    if due.tzinfo is None:
        due = due.replace(tzinfo=UTC)
    here = ZoneInfo(zone)
    return due >= now and due.astimezone(here).date() == now.astimezone(here).date()


def facts(conn: Connection, row: Mapping[str, Any], zone: str) -> list[tuple[str, str]]:
    """(label, text) for each labelled column with a value, in ``FACTS`` order."""
    people = names(conn, PERSON, [row.get(c) for c in PEOPLE_COLUMNS])
    units = names(conn, UNIT, [row.get("unit_id")])
    enterprises = names(conn, ENTERPRISE, [row.get("enterprise_id")])
    out = []
    for column, label in FACTS.items():
        value = row.get(column)
        if value is None or value == "" or (column == "escalation_level" and not value):
            continue
        if column in PEOPLE_COLUMNS:
            text = people.get(value, str(value))
        elif column == "unit_id":
            text = units.get(value, str(value))
        elif column == "enterprise_id":
            text = enterprises.get(value, str(value))
        elif column in ENUMS:
            try:
                text = ENUMS[column](value).label
            except ValueError:
                text = str(value)
        elif isinstance(value, datetime):
            text = local(value, zone)
        elif isinstance(value, Decimal):
            text = f"{value:,.2f}"
        else:
            text = str(value)
        out.append((label, text))
    return out


def timeline_rows(conn: Connection, events: list[dict[str, Any]], zone: str) -> list[dict[str, Any]]:
    """The trail's rows with the actor's name, the role's label and local time."""
    people = names(conn, PERSON, [e.get("actor") for e in events], key="key")
    out = []
    for e in events:
        try:
            role = Role(e["actor_role"]).label if e.get("actor_role") else ""
        except ValueError:
            role = str(e["actor_role"])
        out.append({**e, "who": people.get(e.get("actor"), e.get("actor") or ""), "role_label": role,
                    "when": local(e.get("at"), zone)})
    return out
