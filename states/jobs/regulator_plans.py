"""Turn active annual supervision plans into inspection plans (source = regulator).

Run before each materialisation: it first refreshes each active plan's frequencies through the
engine (so doubling for a new major hazard is an audited event), then upserts one inspection
plan per entry, at the least frequent cadence that meets the entry's frequency.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import insert, select, update
from sqlmodel import Session

from models.db import as_utc, utcnow
from models.tables import ANNUAL_PLAN as ANNUAL
from models.tables import CHECKLIST_TEMPLATE as TEMPLATE
from models.tables import ENTERPRISE, UNIT
from models.tables import INSPECTION_PLAN as PLAN
from states import engine
from states.workflow import Context
from states.workflows.annual_plan import ANNUAL_PLAN, cadence_for, effective_entries

TEMPLATE_BY_INDUSTRY = {"化工": "chem-major-2017-121"}
DEFAULT_TEMPLATE = "general-group"


def sync(session: Session, *, as_of: datetime | None = None,
         flow_run_id: str | None = None) -> int:
    """Refresh active annual plans and upsert their inspection plans; returns plans written."""
    moment = as_utc(as_of) or utcnow()
    conn = session.connection()
    active = conn.execute(select(ANNUAL).where(ANNUAL.c.state == "active")).mappings().all()
    session.rollback()
    written = 0
    for plan in active:
        ctx = Context("system", None, "system", moment, lambda k: 0, session.connection(), {})
        fresh = effective_entries(ctx, plan["jurisdiction_id"], plan["entries"] or [])
        session.rollback()
        if [(e["enterprise"], e["frequency"]) for e in fresh] != [
                (e["enterprise"], e.get("frequency")) for e in plan["entries"] or []]:
            engine.fire(session, ANNUAL_PLAN, plan["id"], "refresh", actor="system",
                        as_of=moment, flow_run_id=flow_run_id)
            fresh = session.connection().execute(
                select(ANNUAL.c.entries).where(ANNUAL.c.id == plan["id"])).scalar() or fresh
        written += _upsert(session, dict(plan), fresh, moment)
    return written


def _upsert(session: Session, plan: dict[str, Any], entries: list[dict[str, Any]],
            moment: datetime) -> int:
    try:
        conn = session.connection()
        templates = {key: conn.execute(select(TEMPLATE.c.id).where(TEMPLATE.c.key == key)
                                       .order_by(TEMPLATE.c.version.desc()).limit(1)).scalar()
                     for key in {*TEMPLATE_BY_INDUSTRY.values(), DEFAULT_TEMPLATE}}
        written = 0
        changed: list[dict[str, Any]] = []  # what each written plan now does, for the audit row
        for entry in entries:
            enterprise = conn.execute(select(ENTERPRISE.c.id).where(
                ENTERPRISE.c.key == entry["enterprise"])).scalar()
            top = conn.execute(select(UNIT.c.id, UNIT.c.tier).where(
                UNIT.c.enterprise_id == enterprise, UNIT.c.parent_id.is_(None))
                .order_by(UNIT.c.id).limit(1)).first()
            template = templates.get(TEMPLATE_BY_INDUSTRY.get(entry.get("industry", ""),
                                                              DEFAULT_TEMPLATE))
            if top is None or template is None:
                continue  # no unit tree or no checklist loaded yet: nothing to inspect against
            values = {
                "name": f"{plan['year']}年监督检查：{entry.get('name', entry['enterprise'])}",
                "unit_id": top[0], "enterprise_id": enterprise, "tier": top[1],
                "cadence": cadence_for(int(entry["frequency"])), "template_id": template,
                "calendar_mode": "working_days", "source": "regulator",
                "annual_plan_id": plan["id"], "active_from": date(plan["year"], 1, 1),
                "active_until": date(plan["year"], 12, 31),
            }
            key = f"{plan['code']}-{entry['enterprise']}"[:64]
            existing = conn.execute(select(PLAN).where(PLAN.c.key == key)).mappings().first()
            if existing is None:
                conn.execute(insert(PLAN).values(key=key, created_at=moment, **values))
            elif any(existing[k] != v for k, v in values.items()):
                conn.execute(update(PLAN).where(PLAN.c.id == existing["id"]).values(values))
            else:
                continue
            written += 1
            changed.append({"plan": key, "enterprise": entry["enterprise"],
                            "frequency": int(entry["frequency"]), "cadence": values["cadence"]})
        if written:
            engine.record(session, entity_type="inspection_plan", entity_code=plan["code"],
                          event="sync_regulator_plans", actor="system", role="system",
                          data={"plans": written, "changed": changed}, as_of=moment)
        session.commit()
    except BaseException:
        session.rollback()
        raise
    return written
