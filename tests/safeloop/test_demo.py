"""`safeloop demo` runs its whole scenario on a fresh SQLite file and ends verified."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console
from sqlmodel import Session, select

from models import Hazard
from models.db import make_engine
from safeloop.demo import run_demo
from states.audit import verify


def test_demo_runs_and_verifies(tmp_path: Path):
    out = io.StringIO()
    path = tmp_path / "demo.db"
    assert run_demo(path, Console(file=out, width=120), days=0) == 0
    text = out.getvalue()
    assert "审计链校验通过" in text and "回放一致" in text
    assert "职责分离" in text and "缺少：安全措施和应急预案" in text
    assert "一般风险升为较大风险 → 已审批（管控中）" in text
    risk_out = tmp_path / "safeloop-demo-data" / "risk"
    assert {p.name for p in risk_out.iterdir()} == {"四色分布图.svg", "告知卡.html", "风险清单.xlsx"}
    assert (risk_out / "四色分布图.svg").read_text(encoding="utf-8").count('class="area"') == 8
    engine = make_engine(f"sqlite:///{path}")
    with Session(engine) as session:
        states = {h.code: h.state for h in session.exec(select(Hazard)).all()}
        assert sorted(states.values()).count("closed") == 5
        assert "cancelled" in states.values() and "planning" in states.values()
        assert verify(session.connection()).ok
    engine.dispose()
    assert run_demo(path, Console(file=io.StringIO()), days=0) == 0  # rerun starts from a fresh file
