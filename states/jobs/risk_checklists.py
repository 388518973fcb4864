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
measures) are recomputed, so the pass is cheap when nothing changed. Set-wise: a chunk of
enterprises is one transaction with a fixed number of statements (the plans, risks, current
templates and base items read once; templates, items, plan updates and audit rows written as
executemany), whatever the number of plans (``bench/risk_derive.py``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, func, insert, or_, select, update
from sqlmodel import Session

from core.calendar import local_date
from models.db import as_utc, utcnow
from models.enums import MeasureKind, RiskGrade, Tier
from models.tables import CHECKLIST_ITEM as ITEM
from models.tables import CHECKLIST_TEMPLATE as TEMPLATE
from models.tables import INSPECTION_PLAN as PLAN
from models.tables import RISK_POINT as RISK
from models.tables import UNIT
from states import engine, risk_grading
from states.workflows.risk import CONTROLLED

# The hazard category a failed measure implies (DOMAIN.md: things, behaviour, management).
CATEGORY = {MeasureKind.engineering: "thing", MeasureKind.management: "management",
            MeasureKind.training: "management", MeasureKind.ppe: "behaviour",
            MeasureKind.emergency: "management"}
CHUNK = 500  # enterprises per transaction
ITEM_COLUMNS = ("template_id", "position", "code", "text", "basis", "category", "grade_if_failed",
                "risk_point_id")


@dataclass
class DeriveReport:
    enterprises: int = 0
    plans_changed: int = 0
    templates: list[int] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        return {"enterprises": self.enterprises, "plans_changed": self.plans_changed,
                "templates": len(self.templates)}


@dataclass(frozen=True)
class _Risk:
    id: int
    code: str
    name: str
    path: str
    grade: RiskGrade
    measures: tuple[tuple[str, str], ...]


@dataclass
class _Change:
    """One plan whose checklist must move: to a new template (``items``) or back to its base."""

    plan: Any
    base_id: int
    risks: list[_Risk]
    items: list[tuple[_Risk, int, str, str]]
    fingerprint: str
    target: int | None = None


def sync(session: Session, *, as_of: datetime | None = None, zone: str = "Asia/Shanghai",
         enterprise_ids: Sequence[int] | None = None, actor: str = engine.SYSTEM_ACTOR,
         flow_run_id: str | None = None, chunk: int = CHUNK) -> DeriveReport:
    """Re-derive the risk items of every plan in enterprises with changed risks; one
    transaction per chunk of enterprises."""
    moment = as_utc(as_of) or utcnow()
    today = local_date(moment, zone)
    report = DeriveReport()
    dirty = select(RISK.c.enterprise_id).where(RISK.c.checklist_dirty.is_(True)).distinct()
    if enterprise_ids is not None:
        dirty = dirty.where(RISK.c.enterprise_id.in_(list(enterprise_ids)))
    todo = sorted(session.connection().execute(dirty).scalars())
    session.rollback()
    bases: dict[int, tuple[Any, list[tuple[Any, ...]]]] = {}  # immutable: cached across chunks
    for start in range(0, len(todo), chunk):
        ids = todo[start:start + chunk]
        try:
            changed = _chunk(session, ids, today, moment, actor, flow_run_id, report, bases)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        report.enterprises += len(ids)
        report.plans_changed += changed
    return report


def _chunk(session: Session, enterprise_ids: list[int], today: date, moment: datetime,
           actor: str, flow_run_id: str | None, report: DeriveReport,
           bases: dict[int, tuple[Any, list[tuple[Any, ...]]]]) -> int:
    conn = session.connection()
    # The plans first, locked (PostgreSQL; SQLite's BEGIN IMMEDIATE already serialises writers):
    # a second sync of the same enterprises waits here, then finds their checklists current.
    plans = conn.execute(
        select(PLAN.c.id, PLAN.c.key, PLAN.c.tier, PLAN.c.template_id, PLAN.c.base_template_id,
               PLAN.c.enterprise_id, UNIT.c.path)
        .join(UNIT, UNIT.c.id == PLAN.c.unit_id)
        .where(PLAN.c.enterprise_id.in_(enterprise_ids),
               or_(PLAN.c.active_until.is_(None), PLAN.c.active_until >= today))
        .order_by(PLAN.c.id).with_for_update(of=PLAN)).all()
    seen = conn.execute(select(RISK.c.id, RISK.c.version).where(
        RISK.c.enterprise_id.in_(enterprise_ids), RISK.c.checklist_dirty.is_(True))).all()
    risks: dict[int, list[_Risk]] = {}
    for r in conn.execute(
            select(RISK.c.enterprise_id, RISK.c.id, RISK.c.code, RISK.c.name, RISK.c.approved_grade,
                   RISK.c.measures, UNIT.c.path)
            .join(UNIT, UNIT.c.id == RISK.c.unit_id)
            .where(RISK.c.enterprise_id.in_(enterprise_ids), RISK.c.state.in_(CONTROLLED),
                   RISK.c.approved_grade.is_not(None))
            .order_by(RISK.c.id)):
        risks.setdefault(r.enterprise_id, []).append(_Risk(
            r.id, r.code, r.name, r.path, RiskGrade(r.approved_grade),
            tuple((m["kind"], m["text"]) for m in (r.measures or []))))
    current = dict(conn.execute(select(TEMPLATE.c.id, TEMPLATE.c.sha256).where(
        TEMPLATE.c.id.in_({p.template_id for p in plans}))).all()) if plans else {}
    changes = []
    for plan in plans:
        covered = [r for r in risks.get(plan.enterprise_id, [])
                   if covers(plan.path, Tier(plan.tier), r.path, r.grade)]
        change = _decide(plan, covered, current)
        if change is not None:
            changes.append(change)
    if changes:
        _write(session, changes, moment, actor, flow_run_id, bases)
        report.templates += [c.target for c in changes if c.items and c.target is not None]
    if seen:
        conn.execute(
            update(RISK).where(RISK.c.id == bindparam("b_id"),
                               RISK.c.version == bindparam("b_version"))
            .values(checklist_dirty=False),
            [{"b_id": i, "b_version": v} for i, v in seen])
    return len(changes)


def _decide(plan: Any, risks: list[_Risk], current: dict[int, str]) -> _Change | None:
    """The change a plan needs to carry exactly ``risks``' items, or None if it already does."""
    base_id = plan.base_template_id or plan.template_id
    items = [(r, n, kind, text) for r in risks for n, (kind, text) in enumerate(r.measures, 1)]
    fingerprint = hashlib.sha256(json.dumps(
        [base_id, [[r.id, r.grade.value, kind, text] for r, _n, kind, text in items]],
        ensure_ascii=False).encode()).hexdigest()
    if current.get(plan.template_id) == fingerprint or (not items and plan.template_id == base_id):
        return None
    return _Change(plan, base_id, risks, items, fingerprint, None if items else base_id)


def covers(plan_path: str, tier: Tier, risk_path: str, grade: RiskGrade) -> bool:
    """The risk's own unit always checks it; the units above it do when their tier checks
    the risk's grade. Units below the risk's unit are not assumed to operate it: register a
    risk on the team that does."""
    if plan_path == risk_path:
        return True
    return risk_path.startswith(plan_path) and tier in risk_grading.tiers_checking(grade)


def risk_item(code: str, name: str, grade: RiskGrade, n: int, kind: str, text: str) -> dict[str, Any]:
    """The checklist item for measure ``n`` of a risk point (without template and position)."""
    grade_text, kind_text, category = _labels(grade, kind)
    return {"code": f"{code}.{n}", "text": f"【{name}】{text}",
            "basis": f"风险点 {code}（{grade_text}）{kind_text}",
            "category": category, "grade_if_failed": "general"}


@cache
def _labels(grade: RiskGrade, kind: str) -> tuple[str, str, str]:
    measure = MeasureKind(kind)
    return (f"{grade.label}·{risk_grading.STYLES[grade].colour}", measure.label, CATEGORY[measure])


def _write(session: Session, changes: list[_Change], moment: datetime, actor: str,
           flow_run_id: str | None, bases: dict[int, tuple[Any, list[tuple[Any, ...]]]]) -> None:
    """New templates and their items, plan updates and one audit row per plan, set-wise."""
    conn = session.connection()
    _load_bases(conn, {c.base_id for c in changes if c.items}, bases)
    creating = [c for c in changes if c.items]
    keys = [f"risk-plan-{c.plan.id}" for c in creating]
    versions = dict(conn.execute(select(TEMPLATE.c.key, func.max(TEMPLATE.c.version)).where(
        TEMPLATE.c.key.in_(keys)).group_by(TEMPLATE.c.key)).all()) if keys else {}
    if creating:
        rows = [{"key": key, "version": versions.get(key, 0) + 1,
                 "name": f"{bases[c.base_id][0].name}（含风险点管控措施）", "tier": c.plan.tier,
                 "source": f"{bases[c.base_id][0].source}；风险点管控措施（对表检查）".lstrip("；"),
                 "sha256": c.fingerprint, "created_at": moment}
                for key, c in zip(keys, creating, strict=True)]
        ids = conn.execute(insert(TEMPLATE).returning(TEMPLATE.c.id, sort_by_parameter_order=True),
                           rows).scalars().all()
        items: list[tuple[Any, ...]] = []
        for change, template_id in zip(creating, ids, strict=True):
            change.target = int(template_id)
            own = [*bases[change.base_id][1], *(
                (*risk_item(r.code, r.name, r.grade, n, kind, text).values(), r.id)
                for r, n, kind, text in change.items)]
            items += [(template_id, n, *row) for n, row in enumerate(own)]
        # Driver-level executemany: tens of thousands of item rows per chunk, where building
        # SQLAlchemy parameter dicts would cost more than the inserts themselves.
        mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
        conn.exec_driver_sql(
            f"INSERT INTO checklist_item ({', '.join(ITEM_COLUMNS)}) "
            f"VALUES ({', '.join([mark] * len(ITEM_COLUMNS))})", items)
    conn.execute(
        update(PLAN).where(PLAN.c.id == bindparam("b_id"))
        .values(template_id=bindparam("b_target"), base_template_id=bindparam("b_base")),
        [{"b_id": c.plan.id, "b_target": c.target,
          "b_base": c.base_id if c.target != c.base_id else None} for c in changes])
    _audit(session, changes, moment, actor, flow_run_id)


def _load_bases(conn: Any, wanted: set[int], bases: dict[int, tuple[Any, list[tuple[Any, ...]]]]) -> None:
    missing = sorted(wanted - set(bases))
    if not missing:
        return
    heads = {t.id: t for t in conn.execute(select(TEMPLATE.c.id, TEMPLATE.c.name, TEMPLATE.c.source)
                                           .where(TEMPLATE.c.id.in_(missing)))}
    items: dict[int, list[tuple[Any, ...]]] = {i: [] for i in missing}
    for template_id, *item in conn.execute(
            select(ITEM.c.template_id, *(ITEM.c[c] for c in ITEM_COLUMNS[2:-1]))
            .where(ITEM.c.template_id.in_(missing)).order_by(ITEM.c.template_id, ITEM.c.position)):
        items[template_id].append((*item, None))
    for template_id in missing:
        bases[template_id] = (heads[template_id], items[template_id])


def _audit(session: Session, changes: list[_Change], moment: datetime, actor: str,
           flow_run_id: str | None) -> None:
    """One ``derive_checklist`` row per plan naming the risks added and removed."""
    conn = session.connection()
    old = {c.plan.template_id for c in changes}
    before: dict[int, set[int]] = {t: set() for t in old}
    for template_id, risk_id in conn.execute(
            select(ITEM.c.template_id, ITEM.c.risk_point_id).where(
                ITEM.c.template_id.in_(old), ITEM.c.risk_point_id.is_not(None)).distinct()):
        before[template_id].add(risk_id)
    codes = {r.id: r.code for c in changes for r in c.risks}
    gone = {i for c in changes for i in before[c.plan.template_id]} - set(codes)
    if gone:
        codes.update(dict(conn.execute(select(RISK.c.id, RISK.c.code).where(
            RISK.c.id.in_(sorted(gone)))).all()))
    acts = []
    for c in changes:
        now, was = {r.id for r in c.risks}, before[c.plan.template_id]
        data = {"template_from": c.plan.template_id, "template_to": c.target,
                "risks": sorted(codes[i] for i in now),
                "risks_added": sorted(codes[i] for i in now - was),
                "risks_removed": sorted(codes[i] for i in was - now),
                "risk_items": len(c.items)}
        acts.append(engine.Act("inspection_plan", c.plan.key, "derive_checklist", data,
                               "风险点管控措施纳入排查表（自下一周期起生效）"))
    engine.record_many(session, acts, actor=actor, role="system", as_of=moment,
                       flow_run_id=flow_run_id)
