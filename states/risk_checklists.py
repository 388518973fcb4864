"""Checklists from risk (对表检查): a risk point's control measures become checklist items in the
inspection plans of its control tier and of every tier below it.

A plan covers a risk when the plan's unit is the risk's own unit, or a unit above it whose tier
checks the risk's approved grade (``risk_grading.tiers_checking``): a red risk in a team is on the
team's, workshop's, plant's and group's checklists; a blue one only on the team's.
A plan whose set of risk items changes gets a new, immutable
template version — its own base items followed by the risk items — and its ``template_id`` moves
to it, with an audit row naming the risks added and removed. Tasks already materialised keep the
template they were created with, so a re-grading takes effect from the next period on.

Only enterprises with a risk point marked ``checklist_dirty`` (set by approve, retire and revised
measures) are recomputed, so the pass is cheap when nothing changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlmodel import Session

from models import ChecklistItem, ChecklistTemplate, InspectionPlan, RiskPoint, Unit
from models.db import as_utc, utcnow
from models.enums import MeasureKind, RiskGrade, Tier
from safeloop.calendar import local_date
from states import engine, risk_grading
from states.risk import CONTROLLED

TEMPLATE = ChecklistTemplate.__table__  # type: ignore[attr-defined]
ITEM = ChecklistItem.__table__  # type: ignore[attr-defined]
PLAN = InspectionPlan.__table__  # type: ignore[attr-defined]
RISK = RiskPoint.__table__  # type: ignore[attr-defined]
UNIT = Unit.__table__  # type: ignore[attr-defined]
# The hazard category a failed measure implies (DOMAIN.md: things, behaviour, management).
CATEGORY = {MeasureKind.engineering: "thing", MeasureKind.management: "management",
            MeasureKind.training: "management", MeasureKind.ppe: "behaviour",
            MeasureKind.emergency: "management"}


@dataclass
class DeriveReport:
    enterprises: int = 0
    plans_changed: int = 0
    templates: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"enterprises": self.enterprises, "plans_changed": self.plans_changed,
                "templates": self.templates}


@dataclass(frozen=True)
class _Risk:
    id: int
    code: str
    name: str
    path: str
    grade: RiskGrade
    measures: tuple[tuple[str, str], ...]


def sync(session: Session, *, as_of: datetime | None = None, zone: str = "Asia/Shanghai",
         enterprise_ids: Sequence[int] | None = None, actor: str = engine.SYSTEM_ACTOR,
         flow_run_id: str | None = None) -> DeriveReport:
    """Re-derive the risk items of every plan in enterprises with changed risks; one
    transaction per enterprise."""
    moment = as_utc(as_of) or utcnow()
    report = DeriveReport()
    dirty = select(RISK.c.enterprise_id).where(RISK.c.checklist_dirty.is_(True)).distinct()
    if enterprise_ids is not None:
        dirty = dirty.where(RISK.c.enterprise_id.in_(list(enterprise_ids)))
    todo = sorted(session.connection().execute(dirty).scalars())
    session.rollback()
    for enterprise_id in todo:
        try:
            changed = _enterprise(session, enterprise_id, local_date(moment, zone), moment,
                                  actor, flow_run_id, report)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        report.enterprises += 1
        report.plans_changed += changed
    return report


def _enterprise(session: Session, enterprise_id: int, today: date, moment: datetime, actor: str,
                flow_run_id: str | None, report: DeriveReport) -> int:
    conn = session.connection()
    seen = conn.execute(select(RISK.c.id, RISK.c.version).where(
        RISK.c.enterprise_id == enterprise_id, RISK.c.checklist_dirty.is_(True))).all()
    risks = [
        _Risk(r.id, r.code, r.name, r.path, RiskGrade(r.approved_grade),
              tuple((m["kind"], m["text"]) for m in (r.measures or [])))
        for r in conn.execute(
            select(RISK.c.id, RISK.c.code, RISK.c.name, RISK.c.approved_grade, RISK.c.measures,
                   UNIT.c.path)
            .join(UNIT, UNIT.c.id == RISK.c.unit_id)
            .where(RISK.c.enterprise_id == enterprise_id, RISK.c.state.in_(CONTROLLED),
                   RISK.c.approved_grade.is_not(None))
            .order_by(RISK.c.id))
    ]
    plans = conn.execute(
        select(PLAN.c.id, PLAN.c.key, PLAN.c.tier, PLAN.c.template_id, PLAN.c.base_template_id,
               UNIT.c.path)
        .join(UNIT, UNIT.c.id == PLAN.c.unit_id)
        .where(PLAN.c.enterprise_id == enterprise_id,
               or_(PLAN.c.active_until.is_(None), PLAN.c.active_until >= today))
        .order_by(PLAN.c.id)).all()
    changed = 0
    for plan in plans:
        covered = [r for r in risks if _covers(plan.path, Tier(plan.tier), r)]
        if _apply(session, plan, covered, moment, actor, flow_run_id, report):
            changed += 1
    if seen:
        conn.execute(
            update(RISK).where(RISK.c.id == bindparam("b_id"),
                               RISK.c.version == bindparam("b_version"))
            .values(checklist_dirty=False),
            [{"b_id": i, "b_version": v} for i, v in seen])
    return changed


def _covers(plan_path: str, tier: Tier, risk: _Risk) -> bool:
    """The risk's own unit always checks it; the units above it do when their tier checks
    the risk's grade. Units below the risk's unit are not assumed to operate it: register a
    risk on the team that does."""
    if plan_path == risk.path:
        return True
    return risk.path.startswith(plan_path) and tier in risk_grading.tiers_checking(risk.grade)


def _apply(session: Session, plan: Any, risks: list[_Risk], moment: datetime, actor: str,
           flow_run_id: str | None, report: DeriveReport) -> bool:
    """Point the plan at a template with exactly ``risks``' items; False if it already has it."""
    conn = session.connection()
    base_id = plan.base_template_id or plan.template_id
    items = [(r, n, kind, text) for r in risks for n, (kind, text) in enumerate(r.measures, 1)]
    fingerprint = hashlib.sha256(json.dumps(
        [base_id, [[r.id, r.grade.value, kind, text] for r, _n, kind, text in items]],
        ensure_ascii=False).encode()).hexdigest()
    current = conn.execute(select(TEMPLATE.c.sha256).where(TEMPLATE.c.id == plan.template_id)).scalar()
    if current == fingerprint or (not items and plan.template_id == base_id):
        return False
    before = {r for (r,) in conn.execute(select(ITEM.c.risk_point_id).where(
        ITEM.c.template_id == plan.template_id, ITEM.c.risk_point_id.is_not(None)).distinct())}
    if items:
        target = _new_template(conn, plan, base_id, items, fingerprint, moment)
        report.templates.append(target)
    else:
        target = base_id
    conn.execute(update(PLAN).where(PLAN.c.id == plan.id).values(
        template_id=target, base_template_id=base_id if target != base_id else None))
    now = {r.id for r in risks}
    codes = {r.id: r.code for r in risks}
    codes.update(dict(conn.execute(select(RISK.c.id, RISK.c.code).where(
        RISK.c.id.in_(list(before - now)))).all()))
    engine.record(session, entity_type="inspection_plan", entity_code=plan.key,
                  event="derive_checklist", actor=actor, role="system", as_of=moment,
                  comment="风险点管控措施纳入排查表（自下一周期起生效）",
                  data={"template_from": plan.template_id, "template_to": target,
                        "risks": sorted(codes[i] for i in now),
                        "risks_added": sorted(codes[i] for i in now - before),
                        "risks_removed": sorted(codes[i] for i in before - now),
                        "risk_items": len(items), "flow_run_id": flow_run_id})
    return True


def _new_template(conn: Any, plan: Any, base_id: int, items: list[tuple[_Risk, int, str, str]],
                  fingerprint: str, moment: datetime) -> int:
    base = conn.execute(select(TEMPLATE.c.name, TEMPLATE.c.source).where(
        TEMPLATE.c.id == base_id)).one()
    key = f"risk-plan-{plan.id}"
    version = (conn.execute(select(func.max(TEMPLATE.c.version)).where(
        TEMPLATE.c.key == key)).scalar() or 0) + 1
    template_id = conn.execute(insert(TEMPLATE).values(
        key=key, version=version, name=f"{base.name}（含风险点管控措施）", tier=plan.tier,
        source=f"{base.source}；风险点管控措施（对表检查）".lstrip("；"), sha256=fingerprint,
        created_at=moment,
    ).returning(TEMPLATE.c.id)).scalar_one()
    base_items = conn.execute(
        select(ITEM.c.code, ITEM.c.text, ITEM.c.basis, ITEM.c.category, ITEM.c.grade_if_failed)
        .where(ITEM.c.template_id == base_id).order_by(ITEM.c.position)).mappings().all()
    rows = [{**dict(i), "risk_point_id": None} for i in base_items]
    for risk, n, kind, text in items:
        label = risk_grading.STYLES[risk.grade]
        rows.append({
            "code": f"{risk.code}.{n}", "text": f"【{risk.name}】{text}",
            "basis": f"风险点 {risk.code}（{risk.grade.label}·{label.colour}）{MeasureKind(kind).label}",
            "category": CATEGORY[MeasureKind(kind)], "grade_if_failed": "general",
            "risk_point_id": risk.id,
        })
    conn.execute(insert(ITEM), [{**row, "template_id": template_id, "position": n}
                                for n, row in enumerate(rows)])
    return int(template_id)
