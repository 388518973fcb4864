"""`safeloop demo --path X` rebuilds only a database the demo made itself; anything else at X is
refused with exit 2 and left exactly as it was."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from models.db import make_engine
from safeloop.cli.main import app
from safeloop.demo import is_demo_database, run_demo
from safeloop.schema import upgrade
from tests.helpers import is_zh


def _application_database(path: Path) -> None:
    """A real safeloop database that the demo did not make (an operator's own)."""
    eng = make_engine(f"sqlite:///{path}")
    upgrade(eng)
    eng.dispose()


@pytest.mark.parametrize("kind", ["text", "safeloop database", "folder"])
def test_demo_refuses_a_path_it_did_not_make(tmp_path: Path, kind: str) -> None:
    target = tmp_path / "precious.db"
    if kind == "text":
        target.write_text("年度安全台账，请勿删除", encoding="utf-8")
    elif kind == "folder":
        target.mkdir()
    else:
        _application_database(target)
    before = target.read_bytes() if target.is_file() else None
    result = CliRunner().invoke(app, ["demo", "--path", str(target), "--days", "0"])
    assert result.exit_code == 2, result.output
    assert "不是演示程序创建的数据库" in result.output and is_zh(result.output)
    assert target.exists() and (before is None or target.read_bytes() == before)
    assert not (tmp_path / "safeloop-demo-data").exists()  # nothing was started


def test_demo_marks_and_rebuilds_its_own_database(tmp_path: Path) -> None:
    path = tmp_path / "demo.db"
    assert run_demo(path, Console(file=io.StringIO()), days=0) == 0
    assert is_demo_database(path)
    assert run_demo(path, Console(file=io.StringIO()), days=0) == 0  # its own: rebuilt
    assert is_demo_database(path)
