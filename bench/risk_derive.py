"""``states.jobs.risk_checklists.sync``: risk measures into the inspection checklists of a region.

Seeded set-wise with Core: ``enterprises`` enterprises, each a group → plant → 2 workshops → 2
teams each (7 units) with one plan per unit on the shipped general checklist of its tier, and 10
approved risk points spread over its units with grades cycling red → blue, 3 measures each, all
marked ``checklist_dirty`` (the day a region first approves its risk register: the worst case).
The measured side runs ``sync`` (coverage per plan, one new template version per changed plan,
its items, the plan update and an audit row each). The baseline, on an identical copy in the same
process, is raw sqlite3 writing exactly the same rows with the statements a hand-written
implementation would use (per plan: template insert, items executemany, plan update), with the
coverage precomputed outside the timed part and no audit rows. Afterwards (untimed) both files
must hold the same checklist items per plan.
Target: ≤ 10 s for 1,000 enterprises and ≤ 3× the baseline's time.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert, select, update
from sqlmodel import Session

from bench.common import Result, Stopwatch, check_chain, copy_database, new_database, raw_connect, scratch_dir
from bench.rawsql import db_time
from models import Jurisdiction
from models.db import make_engine
from models.enums import MeasureKind, RiskGrade, Tier
from models.tables import ENTERPRISE as ENT
from models.tables import INSPECTION_PLAN as PLAN
from models.tables import RISK_POINT as RISK
from models.tables import UNIT
from safeloop import checklists
from states.jobs import risk_checklists

NAME = "risk_derive"
MAX_SLOWDOWN = 3.0
MAX_SECONDS = 10.0
AS_OF = datetime(2026, 11, 2, 1, 0, tzinfo=UTC)
GRADES = list(RiskGrade)
KINDS = [MeasureKind.engineering, MeasureKind.management, MeasureKind.ppe]
TREE = [("g", Tier.group, None), ("p", Tier.plant, "g"), ("w1", Tier.workshop, "p"),
        ("w2", Tier.workshop, "p"), ("t1", Tier.team, "w1"), ("t2", Tier.team, "w1"),
        ("t3", Tier.team, "w2")]


def seed(path: Path, enterprises: int) -> int:
    """Returns the number of plans."""
    engine = new_database(path)
    now = AS_OF
    try:
        with Session(engine, expire_on_commit=False) as session:
            checklists.load_shipped(session)
            conn = session.connection()
            jur = conn.execute(select(Jurisdiction.id).where(Jurisdiction.key == "xz-edz")).scalar_one()  # type: ignore[call-overload]
            templates = {t: checklists.latest(session, f"general-{t.value}") for t in Tier}
            conn.execute(insert(ENT), [{"key": f"b-ent-{e}", "name": f"基准企业{e}", "industry": "化工",
                                        "jurisdiction_id": jur} for e in range(enterprises)])
            ent_ids = dict(conn.execute(select(ENT.c.key, ENT.c.id).where(ENT.c.key.like("b-ent-%"))).all())
            plans = 0
            for e in range(enterprises):
                eid = ent_ids[f"b-ent-{e}"]
                ids: dict[str, tuple[int, str]] = {}
                for short, tier, parent in TREE:
                    uid = conn.execute(insert(UNIT).values(
                        key=f"b-{e}-{short}", name=f"单位{short}", tier=tier.value, enterprise_id=eid,
                        parent_id=ids[parent][0] if parent else None).returning(UNIT.c.id)).scalar_one()
                    path_ = (ids[parent][1] if parent else "/") + f"{uid}/"
                    conn.execute(update(UNIT).where(UNIT.c.id == uid).values(path=path_))
                    ids[short] = (uid, path_)
                conn.execute(insert(PLAN), [{
                    "key": f"b-{e}-{short}-plan", "name": "基准计划", "unit_id": ids[short][0],
                    "enterprise_id": eid, "tier": tier.value, "cadence": "daily",
                    "template_id": templates[tier], "calendar_mode": "all_days",
                    "active_from": datetime(2026, 1, 1).date(), "created_at": now,
                } for short, tier, _p in TREE])
                plans += len(TREE)
                conn.execute(insert(RISK), [{
                    "code": f"FX-B{e:05d}{r:02d}", "enterprise_id": eid,
                    "unit_id": ids[TREE[r % len(TREE)][0]][0], "name": f"风险点{r}", "kind": "facility",
                    "hazard_factors": ["泄漏"], "accident_types": ["火灾"], "consequences": "",
                    "measures": [{"kind": k.value, "text": f"管控措施{r}-{n}"} for n, k in enumerate(KINDS)],
                    "state": "approved", "version": 3, "grade": GRADES[r % 4].value,
                    "approved_grade": GRADES[r % 4].value, "checklist_dirty": True, "contacts": "",
                    "created_at": now, "updated_at": now,
                } for r in range(10)])
            session.commit()
    finally:
        engine.dispose()
    return plans


def precompute(path: Path) -> list[tuple[int, str, int, list[tuple[str, str, str, str, str, int | None]]]]:
    """(plan id, tier, base template id, items) per plan that gets risk items: untimed input of
    the baseline, computed with the same coverage rule."""
    conn = raw_connect(path)
    try:
        risks = [(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in conn.execute(
            "SELECT r.id, r.code, r.name, u.path || '', r.measures FROM risk_point r "
            "JOIN unit u ON u.id = r.unit_id WHERE r.state = 'approved' ORDER BY r.id")]
        grades = dict(conn.execute("SELECT id, approved_grade FROM risk_point").fetchall())
        base_items = {}
        out = []
        for plan_id, tier, template_id, path_ in conn.execute(
                "SELECT p.id, p.tier, p.template_id, u.path FROM inspection_plan p "
                "JOIN unit u ON u.id = p.unit_id WHERE p.key LIKE 'b-%' ORDER BY p.id").fetchall():
            if template_id not in base_items:
                base_items[template_id] = conn.execute(
                    "SELECT code, text, basis, category, grade_if_failed FROM checklist_item "
                    "WHERE template_id = ? ORDER BY position", (template_id,)).fetchall()
            items = [(*i, None) for i in base_items[template_id]]
            covered = False
            for rid, code, name, rpath, measures in risks:
                grade = RiskGrade(grades[rid])
                if risk_checklists.covers(path_, Tier(tier), rpath, grade):
                    covered = True
                    for n, m in enumerate(measures, 1):
                        item = risk_checklists.risk_item(code, name, grade, n, m["kind"], m["text"])
                        items.append((*item.values(), rid))
            if covered:
                out.append((plan_id, tier, template_id, items))
        return out
    finally:
        conn.close()


def baseline(path: Path, work: list, watch: Stopwatch) -> int:
    conn = raw_connect(path)
    moment = db_time(AS_OF)
    try:
        with watch.lap():
            conn.execute("BEGIN IMMEDIATE")
            for plan_id, tier, base_id, items in work:
                template_id = conn.execute(
                    "INSERT INTO checklist_template (key, version, name, tier, source, sha256, created_at) "
                    "VALUES (?, 1, ?, ?, '', ?, ?) RETURNING id",
                    (f"risk-plan-{plan_id}", "基准检查表（含风险点管控措施）", tier,
                     hashlib.sha256(repr(items).encode()).hexdigest(), moment)).fetchone()[0]
                conn.executemany(
                    "INSERT INTO checklist_item (template_id, position, code, text, basis, category, "
                    "grade_if_failed, risk_point_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    [(template_id, n, *item) for n, item in enumerate(items)])
                conn.execute("UPDATE inspection_plan SET template_id = ?, base_template_id = ? WHERE id = ?",
                             (template_id, base_id, plan_id))
            conn.execute("UPDATE risk_point SET checklist_dirty = 0 WHERE checklist_dirty = 1")
            conn.execute("COMMIT")
    finally:
        conn.close()
    return len(work)


def audit_rows(path: Path) -> int:
    conn = raw_connect(path)
    try:
        return int(conn.execute("SELECT count(*) FROM audit_entry").fetchone()[0])
    finally:
        conn.close()


def items_by_plan(path: Path) -> list[tuple[str, str]]:
    conn = raw_connect(path)
    try:
        return conn.execute(
            "SELECT p.key, group_concat(i.code, ',') FROM inspection_plan p JOIN checklist_item i "
            "ON i.template_id = p.template_id WHERE p.key LIKE 'b-%' GROUP BY p.key ORDER BY p.key"
        ).fetchall()
    finally:
        conn.close()


def run(quick: bool = False, profile: bool = False) -> Result:
    enterprises = 100 if quick else 1_000
    with scratch_dir(NAME) as tmp:
        seed_path = tmp / "seed.db"
        seed(seed_path, enterprises)
        seeded_seq = audit_rows(seed_path)
        ours, theirs = tmp / "engine.db", tmp / "baseline.db"
        copy_database(seed_path, ours)
        copy_database(seed_path, theirs)
        work = precompute(theirs)
        measured, reference = Stopwatch(profile), Stopwatch()
        engine = make_engine(f"sqlite:///{ours}")
        try:
            with Session(engine, expire_on_commit=False) as session, measured.lap():
                report = risk_checklists.sync(session, as_of=AS_OF)
        finally:
            engine.dispose()
        changed = baseline(theirs, work, reference)
        if report.plans_changed != changed:
            raise AssertionError(f"sync changed {report.plans_changed} plans, baseline {changed}")
        if items_by_plan(ours) != items_by_plan(theirs):
            raise AssertionError("sync and baseline disagree on the checklist items")
        check_chain(ours, seeded_seq + report.plans_changed)  # one derive_checklist row per plan
        measured.print_profile(NAME)
    return Result.of(f"{NAME} ({enterprises:,} enterprises)", changed, measured, reference, 0.0,
                     1 / MAX_SLOWDOWN, max_seconds=MAX_SECONDS,
                     notes=f"{changed:,} plans re-derived, {len(report.templates):,} templates")
