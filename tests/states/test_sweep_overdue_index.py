"""The overdue sweep reads the partial index of hazards it may still escalate, on both databases:
hazards already at the top level are outside that index, so a backlog of them costs the sweep
nothing (issue 16)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import text

from states.jobs.sweep import overdue_query
from tests.helpers import NOW


def test_overdue_query_uses_the_partial_index(engine):
    stmt = overdue_query(NOW, (0, 3, 7))
    with engine.connect() as conn:
        compiled = stmt.compile(dialect=conn.dialect,
                                compile_kwargs={"render_postcompile": True})
        if conn.dialect.name == "sqlite":
            params = tuple(str(compiled.params[k]) for k in compiled.positiontup or ())
            plan = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + str(compiled), params)
            text_plan = " ".join(str(row[-1]) for row in plan)
        else:
            conn.execute(text("SET enable_seqscan = off"))  # an empty table: ask which index fits
            plan = conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params)
            text_plan = " ".join(row[0] for row in plan)
    assert "ix_hazard_overdue" in text_plan, text_plan


def test_top_level_hazards_are_outside_the_index(org):
    from states.jobs.sweep import sweep
    from tests.helpers import assign, report

    hid = report(org, "major").entity_id
    assign(org, hid)
    first = sweep(org, as_of=NOW + timedelta(days=30))
    assert first.escalations == {3: 1}
    conn = org.connection()
    level = conn.execute(text("SELECT escalation_level FROM hazard WHERE id = :i"), {"i": hid})
    assert level.scalar() == 3
    inside = conn.execute(text("SELECT count(*) FROM hazard WHERE escalation_level < 3 "
                               "AND id = :i"), {"i": hid})
    assert inside.scalar() == 0
    org.rollback()
    assert sweep(org, as_of=NOW + timedelta(days=31)).escalations == {}
