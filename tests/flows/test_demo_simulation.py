"""`safeloop demo` with its day-by-day simulation: the real flows run under the Prefect harness."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from sqlalchemy import func, select
from sqlmodel import Session

from models import AuditEntry, InspectionTask
from models.db import make_engine
from safeloop.demo import run_demo


def test_three_simulated_days_materialise_sweep_and_verify(tmp_path: Path) -> None:
    out = io.StringIO()
    path = tmp_path / "demo.db"
    assert run_demo(path, Console(file=out, width=140), days=3) == 0
    text = out.getvalue()
    assert "分级排查完成情况" in text and "审计链校验通过" in text and "回放一致" in text
    engine = make_engine(f"sqlite:///{path}")
    with Session(engine) as session:
        conn = session.connection()
        days = conn.execute(select(func.count(func.distinct(InspectionTask.period_key)))
                            .where(InspectionTask.period_key.like("2026-11-0%"))).scalar_one()
        assert days == 3  # one daily period per simulated day
        flow_rows = conn.execute(select(func.count()).where(
            AuditEntry.flow_run_id.is_not(None))).scalar_one()  # type: ignore[union-attr]
        assert flow_rows > 0  # materialisation batches carry their flow run id
    engine.dispose()
