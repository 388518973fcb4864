"""The Prefect flows as real flow runs under the test harness (and through ``.fn()`` and the CLI):
materialise, sweep and checkpoint, each audit row naming the flow run that caused it.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from prefect.client.orchestration import get_client
from sqlalchemy import func, select, text
from sqlmodel import Session
from typer.testing import CliRunner

from core.settings import get_settings
from flows.audit_checkpoint import audit_checkpoint
from flows.materialize_inspections import materialize_inspections
from flows.sweep_deadlines import sweep_deadlines
from models import AuditEntry, Enterprise, InspectionTask, OutboxMessage
from models.tables import AUDIT_CHECKPOINT, AUDIT_ENTRY
from safeloop import checklists, plans
from safeloop.cli.main import app
from states import audit
from states.audit import STORED_FIELDS, entry_hash
from states.jobs import checkpoint
from states.jobs.materialize import BATCH_ENTITY
from tests.helpers import NOW, assign, fire, report

AS_OF = datetime(2026, 11, 2, 0, 0, tzinfo=UTC)  # Monday 08:00 in Asia/Shanghai
PLANS = [  # (key, unit, cadence): team daily, workshop weekly, plant monthly, in both enterprises
    ("jh-team-a-daily", "jinhua-team-a", None),
    ("jh-synth-weekly", "jinhua-ws-synth", None),
    ("xf-plant-monthly", "xinfeng-plant", None),
    ("xf-weld-daily", "xinfeng-team-weld", None),
]
SWEEP_AT = NOW + timedelta(days=8)  # hazard A is 1 day overdue, hazard B 7 days
ESCALATIONS = {1: 2, 2: 1, 3: 1}  # A: level 1; B: levels 1, 2 and 3


# ---- setup ----------------------------------------------------------------------------------


def core(result: dict) -> dict:
    """The hazard and task parts of a sweep result (listings and reports are tested elsewhere)."""
    return {k: result[k] for k in ("reminders", "escalations", "missed", "refused")}


@pytest.fixture
def world(org: Session, db_url: str, tmp_path: Path,
          monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    """The demo org, the shipped checklists, four plans from 2026-11-01; storage under tmp_path."""
    monkeypatch.setenv("SAFELOOP_STORAGE_DIR", str(tmp_path / "store"))
    monkeypatch.setenv("SAFELOOP_DATABASE_URL", db_url)  # flows read it; never a flow parameter
    get_settings.cache_clear()
    checklists.load_shipped(org)
    for key, unit, cadence in PLANS:
        plans.add(org, plans.PlanSpec(key=key, unit=unit, cadence=cadence,
                                      active_from=date(2026, 11, 1)))
    org.rollback()
    yield org
    get_settings.cache_clear()


def enterprise_ids(session: Session) -> dict[str, int]:
    rows = session.connection().execute(select(Enterprise.key, Enterprise.id)).all()  # type: ignore[call-overload]
    session.rollback()
    return {key: int(i) for key, i in rows}


def audit_rows(session: Session, **where: Any) -> list[dict[str, Any]]:
    stmt = select(AUDIT_ENTRY).order_by(AuditEntry.seq)
    for column, value in where.items():
        stmt = stmt.where(getattr(AuditEntry, column) == value)
    rows = [dict(r) for r in session.connection().execute(stmt).mappings()]
    session.rollback()
    return rows


def count(session: Session, model: Any) -> int:
    n = session.connection().execute(select(func.count()).select_from(model)).scalar_one()
    session.rollback()
    return int(n)


def run_id_of(state: Any, flow_name: str) -> str:
    """The flow run's id, checked against the server: that flow, COMPLETED."""
    run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(run_id)
        assert run.state is not None and run.state.is_completed(), run.state
        assert client.read_flow(run.flow_id).name == flow_name
    return str(run_id)


def overdue_hazards(session: Session) -> tuple[int, int]:
    """A (jinhua, deadline NOW+7d) and B (xinfeng, deadline NOW+1d), both rectifying."""
    a = report(session).entity_id
    assign(session, a)
    b = report(session, unit="xinfeng-team-weld", actor="feng.hanjie").entity_id
    fire(session, b, "assign", "chen.anyuan",
         data={"owner": "feng.hanjie", "deadline": NOW + timedelta(days=1)})
    return a, b


def hazard_levels(session: Session) -> dict[int, int]:
    rows = session.connection().execute(text("SELECT id, escalation_level FROM hazard")).all()
    session.rollback()
    return {int(i): int(level) for i, level in rows}


# ---- materialize-inspections ----------------------------------------------------------------


def test_materialize_real_run_records_flow_run_id(world: Session, db_url: str) -> None:
    state = materialize_inspections(as_of=AS_OF, return_state=True)
    result = state.result()
    run_id = run_id_of(state, "materialize-inspections")
    assert result["total"] == len(PLANS) and result["warnings"] == []
    assert count(world, InspectionTask) == len(PLANS)

    batches = audit_rows(world, entity_type=BATCH_ENTITY)
    assert len(batches) == result["batches"] == 3  # the daily, weekly and monthly windows
    assert {row["flow_run_id"] for row in batches} == {run_id}
    assert uuid.UUID(run_id)  # a Prefect flow-run id, not a placeholder
    assert sum(json.loads(row["data"])["count"] for row in batches) == len(PLANS)

    again = materialize_inspections(as_of=AS_OF + timedelta(hours=3))
    assert again["total"] == 0 and again["created"] == {} and again["batches"] == 0
    assert count(world, InspectionTask) == len(PLANS)
    assert len(audit_rows(world, entity_type=BATCH_ENTITY)) == 3
    assert audit.verify(world.connection()).ok
    world.rollback()


def test_materialize_by_enterprise(world: Session, db_url: str) -> None:
    ids = enterprise_ids(world)
    result = materialize_inspections(as_of=AS_OF,
                                     enterprise_ids=[ids["xinfeng"]])
    assert result["total"] == 2  # xinfeng's monthly and daily plans only
    rest = materialize_inspections(as_of=AS_OF)
    assert rest["total"] == 2 and count(world, InspectionTask) == len(PLANS)


# ---- sweep-deadlines ------------------------------------------------------------------------


def test_sweep_real_run_escalates_and_records_flow_run_id(world: Session, db_url: str) -> None:
    a, b = overdue_hazards(world)
    materialize_inspections.fn(as_of=AS_OF)  # tasks that end before SWEEP_AT
    state = sweep_deadlines(as_of=SWEEP_AT, return_state=True)
    result = state.result()
    run_id = run_id_of(state, "sweep-deadlines")
    assert result["escalations"] == ESCALATIONS
    assert result["missed"] == 3  # both daily tasks and the weekly one; November is not over
    assert result["reminders"] == 0 and result["refused"] == 0
    assert hazard_levels(world) == {a: 1, b: 3}

    escalated = audit_rows(world, event="escalate", entity_type="hazard")  # duties have their own
    assert len(escalated) == sum(ESCALATIONS.values())
    assert {row["flow_run_id"] for row in escalated} == {run_id}
    assert {json.loads(row["data"])["level"] for row in escalated if row["entity_id"] == b} == {1, 2, 3}
    missed = audit_rows(world, event="miss", entity_type="inspection")
    assert len(missed) == 3 and {row["flow_run_id"] for row in missed} == {run_id}

    again = sweep_deadlines(as_of=SWEEP_AT + timedelta(minutes=15))
    assert core(again) == {"reminders": 0, "escalations": {}, "missed": 0, "refused": 0}


def test_sweep_partitions_merge_counts(world: Session, db_url: str) -> None:
    a, b = overdue_hazards(world)
    ids = enterprise_ids(world)
    state = sweep_deadlines(as_of=SWEEP_AT,
                            partitions=[[ids["jinhua"]], [ids["xinfeng"]]], return_state=True)
    result = state.result()
    run_id = run_id_of(state, "sweep-deadlines")
    assert core(result) == {"reminders": 0, "escalations": ESCALATIONS, "missed": 0,
                            "refused": 0}
    assert hazard_levels(world) == {a: 1, b: 3}
    assert {row["flow_run_id"] for row in audit_rows(world, event="escalate")} == {run_id}
    assert audit.verify(world.connection()).ok  # two concurrent writers, one unbroken chain
    world.rollback()


def test_sweep_partition_touches_only_its_enterprises(world: Session, db_url: str) -> None:
    a, b = overdue_hazards(world)
    ids = enterprise_ids(world)
    result = sweep_deadlines(as_of=SWEEP_AT, partitions=[[ids["jinhua"]]])
    assert result["escalations"] == {1: 1}
    assert hazard_levels(world) == {a: 1, b: 0}


def test_sweep_empty_partition_sweeps_nothing(world: Session, db_url: str) -> None:
    overdue_hazards(world)
    result = sweep_deadlines(as_of=SWEEP_AT, partitions=[[]])
    assert result["escalations"] == {}


# ---- audit-checkpoint -----------------------------------------------------------------------


def rewrite_chain_consistently(session: Session, from_seq: int) -> None:
    """An attacker with DDL rights: edit a row and recompute every later hash and the head."""
    conn = session.connection()
    if session.get_bind().dialect.name == "sqlite":
        conn.exec_driver_sql("DROP TRIGGER audit_entry_no_update")
        conn.exec_driver_sql("DROP TRIGGER audit_head_forward_only")
    else:
        conn.exec_driver_sql("ALTER TABLE audit_entry DISABLE TRIGGER USER")
        conn.exec_driver_sql("ALTER TABLE audit_head DISABLE TRIGGER USER")
    cols = ", ".join(STORED_FIELDS)
    rows = [dict(r) for r in conn.execute(
        text(f"SELECT {cols} FROM audit_entry ORDER BY seq")).mappings()]
    prev = audit.GENESIS
    for row in rows:
        if row["seq"] == from_seq:
            row["actor"] = "mallory"
        if row["seq"] >= from_seq:
            row["prev_hash"] = prev
            new_hash = entry_hash(row)
            conn.execute(text("UPDATE audit_entry SET actor = :actor, prev_hash = :prev_hash, "
                              "hash = :hash WHERE seq = :seq"), {**row, "hash": new_hash})
            row["hash"] = new_hash
        prev = row["hash"]
    conn.execute(text("UPDATE audit_head SET seq = :seq, hash = :hash WHERE id = 1"),
                 {"seq": rows[-1]["seq"], "hash": prev})
    session.commit()


def test_checkpoint_real_run_then_consistent_rewrite_is_caught(
        world: Session, db_url: str, tmp_path: Path) -> None:
    seq, head = audit.lock_head(world.connection())
    world.rollback()
    state = audit_checkpoint(as_of=AS_OF, return_state=True)
    point = state.result()
    run_id = run_id_of(state, "audit-checkpoint")
    file = tmp_path / "store" / checkpoint.CHECKPOINT_FILE
    assert point["seq"] == seq and point["hash"] == head and point["file"] == str(file)

    rows = world.connection().execute(select(AUDIT_CHECKPOINT)).mappings().all()
    world.rollback()
    assert [(r["seq"], r["hash"], r["flow_run_id"]) for r in rows] == [(seq, head, run_id)]
    assert [(p.seq, p.hash, p.flow_run_id) for p in checkpoint.read_file(file)] == [(seq, head, run_id)]
    assert count(world, OutboxMessage) >= 1
    assert checkpoint.verify_checkpoints(world, file) == []

    rewrite_chain_consistently(world, from_seq=2)
    assert audit.verify(world.connection()).ok  # the chain alone no longer shows the rewrite
    world.rollback()
    problems = checkpoint.verify_checkpoints(world, file)
    assert len(problems) == 2  # the table's checkpoint and the file's
    assert all(f"第 {seq} 条" in p and "被改写" in p for p in problems)


def test_checkpoint_after_single_hash_edit(world: Session, db_url: str, tmp_path: Path) -> None:
    audit_checkpoint(as_of=AS_OF)
    seq, _ = audit.lock_head(world.connection())
    world.rollback()
    if world.get_bind().dialect.name == "sqlite":
        world.connection().exec_driver_sql("DROP TRIGGER audit_entry_no_update")
    else:
        world.connection().exec_driver_sql("ALTER TABLE audit_entry DISABLE TRIGGER USER")
    world.connection().execute(text("UPDATE audit_entry SET hash = :h WHERE seq = :s"),
                               {"h": "f" * 64, "s": seq})
    world.commit()
    file = tmp_path / "store" / checkpoint.CHECKPOINT_FILE
    assert len(checkpoint.verify_checkpoints(world, file)) == 2
    assert len(checkpoint.verify_checkpoints(world)) == 1  # the table's alone


# ---- the same logic through .fn(), no flow run ----------------------------------------------


def test_flows_through_fn(world: Session, db_url: str, tmp_path: Path) -> None:
    created = materialize_inspections.fn(as_of=AS_OF)
    assert created["total"] == len(PLANS)
    assert materialize_inspections.fn(as_of=AS_OF)["total"] == 0

    a, b = overdue_hazards(world)
    swept = sweep_deadlines.fn(as_of=SWEEP_AT)
    assert core(swept) == {"reminders": 0, "escalations": ESCALATIONS, "missed": 3,
                           "refused": 0}
    assert hazard_levels(world) == {a: 1, b: 3}

    point = audit_checkpoint.fn(as_of=SWEEP_AT)
    assert point["flow_run_id"] is None
    file = tmp_path / "store" / checkpoint.CHECKPOINT_FILE
    assert checkpoint.verify_checkpoints(world, file) == []

    # outside a flow run no audit row names one
    for event in ("materialize", "escalate", "miss"):
        rows = audit_rows(world, event=event)
        assert rows and {row["flow_run_id"] for row in rows} == {None}, event


def test_sweep_partitions_through_fn(world: Session, db_url: str) -> None:
    overdue_hazards(world)
    ids = enterprise_ids(world)
    result = sweep_deadlines.fn(as_of=SWEEP_AT, partitions=[[ids["jinhua"]], [ids["xinfeng"]]])
    assert result["escalations"] == ESCALATIONS


# ---- the CLI --------------------------------------------------------------------------------


def test_cli_flows_run(world: Session, db_url: str) -> None:
    runner = CliRunner()
    listed = runner.invoke(app, ["--db", db_url, "flows", "list"])
    assert listed.exit_code == 0 and "materialize-inspections" in listed.output
    result = runner.invoke(app, ["--db", db_url, "flows", "run", "materialize-inspections",
                                 "--as-of", "2026-11-02 08:00", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["total"] == len(PLANS)  # stderr says which Prefect server ran it
    assert count(world, InspectionTask) == len(PLANS)
    unknown = runner.invoke(app, ["--db", db_url, "flows", "run", "nonsense"])
    assert unknown.exit_code == 2 and "未知流程" in unknown.output
