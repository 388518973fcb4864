"""``states.visibility``: counting what a person sees among 100,000 hazards.

Seeded set-wise with Core: the demo org plus 200 enterprises (group → plant → 2 workshops →
teams, 7 units each) in the development zone, half 化工 half 冶金, and the hazards spread over
every unit (the regulator's department covers 化工 and 工贸, so it sees the demo enterprises and
the 化工 half). The measured side is what a list command does for ``--as``: ``visibility_for`` (the
person's grants), ``where(HAZARD)`` and a ``SELECT count(*)`` with it through SQLAlchemy Core; for
a regulator (a department covering two industries: enterprises via their jurisdiction path) and a
unit head (a workshop subtree via the unit path). The baseline, in the same process on the same
file, is raw sqlite3 running the count a person would hand-write with the same filter (the
person's unit or jurisdiction path and industries known). Both must count the same rows.
Target: the regulator's count (tens of thousands of rows) within 2x the hand-written SQL (ratio
>= 50%); the unit head's count is sub-millisecond, so there the target is the fixed cost of
building the condition (the grants query and compiling the statement): <= 2 ms over the baseline.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bench.common import Result, Stopwatch, new_database, raw_connect, scratch_dir
from models.db import make_engine
from models.enums import Tier
from models.tables import ENTERPRISE as ENT
from models.tables import HAZARD as HAZARD_TABLE
from models.tables import JURISDICTION, PERSON, UNIT
from states.visibility import visibility_for
from states.workflows.hazard import HAZARD

NAME = "visibility"
TARGET_RATIO = 0.5
MAX_EXTRA_SECONDS = 0.002
AT = datetime(2026, 11, 2, 2, 0, tzinfo=UTC)
TREE = [("g", Tier.group, None), ("p", Tier.plant, "g"), ("w1", Tier.workshop, "p"),
        ("w2", Tier.workshop, "p"), ("t1", Tier.team, "w1"), ("t2", Tier.team, "w1"),
        ("t3", Tier.team, "w2")]
PEOPLE = {"regulator": "qian.jianguan", "unit_head": "zhao.chejian"}


def seed(path: Path, hazards: int, enterprises: int) -> None:
    engine = new_database(path)
    try:
        seed_into(engine, hazards, enterprises)
    finally:
        engine.dispose()


def seed_into(engine: Engine, hazards: int, enterprises: int) -> None:
    """The benchmark's enterprises and hazards on a migrated database holding the demo org
    (SQLite or PostgreSQL: bench/api.py seeds both)."""
    with Session(engine, expire_on_commit=False) as session:
        conn = session.connection()
        jur = conn.execute(select(JURISDICTION.c.id).where(JURISDICTION.c.key == "xz-edz")).scalar_one()
        conn.execute(insert(ENT), [{"key": f"b-ent-{e}", "name": f"基准企业{e}",
                                    "industry": "化工" if e % 2 else "冶金", "jurisdiction_id": jur}
                                   for e in range(enterprises)])
        for e, eid in conn.execute(select(ENT.c.key, ENT.c.id).where(ENT.c.key.like("b-ent-%"))).all():
            ids: dict[str, tuple[int, str]] = {}
            for short, tier, parent in TREE:
                uid = conn.execute(insert(UNIT).values(
                    key=f"{e}-{short}", name=f"单位{short}", tier=tier.value, enterprise_id=eid,
                    parent_id=ids[parent][0] if parent else None).returning(UNIT.c.id)).scalar_one()
                unit_path = (ids[parent][1] if parent else "/") + f"{uid}/"
                conn.execute(update(UNIT).where(UNIT.c.id == uid).values(path=unit_path))
                ids[short] = (uid, unit_path)
        units = conn.execute(select(UNIT.c.id, UNIT.c.enterprise_id).order_by(UNIT.c.id)).all()
        finder = conn.execute(select(PERSON.c.id).where(PERSON.c.key == "sun.banzhang")).scalar_one()
        for start in range(0, hazards, 10_000):
            conn.execute(insert(HAZARD_TABLE), [{
                "code": f"YH-{i + 1:06d}", "enterprise_id": units[i % len(units)][1],
                "unit_id": units[i % len(units)][0], "title": "压力表失效", "description": "",
                "category": "thing", "grade": "general", "location": "", "source": "ad_hoc",
                "state": "reported", "version": 1, "found_at": AT, "finder_id": finder,
                "measures": "", "escalation_level": 0, "created_at": AT, "updated_at": AT,
            } for i in range(start, min(start + 10_000, hazards))])
        session.commit()


def _hand_written(raw: object, who: str) -> tuple[str, tuple[object, ...]]:
    """The count a person would write knowing the filter: the unit head's workshop path, or the
    regulator's jurisdiction path and department's industries."""
    cur = raw.cursor()  # type: ignore[attr-defined]
    if who == "unit_head":
        (unit_path,) = cur.execute(
            "SELECT unit.path FROM unit JOIN role_grant ON role_grant.unit_id = unit.id "
            "JOIN person ON person.id = role_grant.person_id WHERE person.key = ?",
            (PEOPLE[who],)).fetchone()
        return ("SELECT count(*) FROM hazard WHERE unit_id IN "
                "(SELECT id FROM unit WHERE path LIKE ?)", (f"{unit_path}%",))
    jur_path, industries = cur.execute(
        "SELECT jurisdiction.path, department.industries FROM role_grant "
        "JOIN jurisdiction ON jurisdiction.id = role_grant.jurisdiction_id "
        "JOIN department ON department.id = role_grant.department_id "
        "JOIN person ON person.id = role_grant.person_id WHERE person.key = ?",
        (PEOPLE[who],)).fetchone()
    listed = industries.split(",")
    return ("SELECT count(*) FROM hazard WHERE enterprise_id IN (SELECT enterprise.id FROM enterprise "
            "JOIN jurisdiction ON jurisdiction.id = enterprise.jurisdiction_id "
            f"WHERE jurisdiction.path LIKE ? AND enterprise.industry IN ({','.join('?' * len(listed))}))",
            (f"{jur_path}%", *listed))


def run(quick: bool, profile: bool) -> list[Result]:
    hazards, enterprises, runs = (20_000, 50, 10) if quick else (100_000, 200, 20)
    results = []
    with scratch_dir(NAME) as folder:
        path = folder / "visibility.db"
        seed(path, hazards, enterprises)
        engine = make_engine(f"sqlite:///{path}")
        raw = raw_connect(path)
        try:
            for who in PEOPLE:
                measured, baseline = Stopwatch(profile), Stopwatch()
                sql, params = _hand_written(raw, who)
                counts: set[int] = set()
                with engine.connect() as conn:
                    for _ in range(runs):  # alternate laps: both see the same machine load
                        with measured.lap():
                            condition = visibility_for(conn, PEOPLE[who]).where(HAZARD)
                            got = conn.execute(select(func.count()).select_from(HAZARD_TABLE)
                                               .where(condition)).scalar_one()
                        with baseline.lap():
                            want = raw.execute(sql, params).fetchone()[0]
                        counts.update((got, want))
                if len(counts) != 1:
                    raise AssertionError(f"{who}: visibility counted {got}, the hand-written SQL {want}")
                if profile:
                    measured.print_profile(f"{NAME}/{who}")
                results.append(Result.of(
                    f"{NAME}/{who}", hazards, measured, baseline, target_rate=0,
                    target_ratio=TARGET_RATIO if who == "regulator" else None, runs=runs,
                    max_extra_seconds=None if who == "regulator" else MAX_EXTRA_SECONDS,
                    notes=f"count(*) of what {PEOPLE[who]} sees: {got:,} of {hazards:,} hazards "
                          f"(visibility_for + where() + count, mean of {runs})"))
        finally:
            raw.close()
            engine.dispose()
    return results
