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


def test_demo_database_opens_in_the_web_app(tmp_path: Path):
    """The README's demo leaves a database the web app opens: its accounts file (owner-only)
    signs the safety officer in, and the inbox shows the demo's open hazards."""
    import re
    import stat

    from fastapi.testclient import TestClient

    from core.settings import Settings
    from safeloop.api.app import create_app
    from safeloop.demo import ACCOUNTS_FILE

    out = io.StringIO()
    path = tmp_path / "demo.db"
    assert run_demo(path, Console(file=out, width=400), days=0) == 0
    accounts = tmp_path / "safeloop-demo-data" / ACCOUNTS_FILE
    assert stat.S_IMODE(accounts.stat().st_mode) == 0o600
    assert f"sqlite:///{path} web" in out.getvalue() and str(accounts) in out.getvalue()
    lines = [line.split("\t") for line in accounts.read_text(encoding="utf-8").splitlines()
             if not line.startswith("#")]
    password = dict((key, pw) for key, pw, _role in lines)["li.anquan"]
    app = create_app(Settings(database_url=f"sqlite:///{path}",
                              storage_dir=tmp_path / "safeloop-demo-data"))
    with TestClient(app, follow_redirects=False) as client:
        page = client.get("/login").text
        token = re.search(r'name="csrf" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        done = client.post("/login", data={"person": "li.anquan", "password": password,
                                           "csrf": token, "next": "/"})
        assert done.status_code == 303, done.text
        inbox = client.get("/")
        assert inbox.status_code == 200 and "YH-" in inbox.text
