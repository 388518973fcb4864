"""The README's canonical encoding is true: its recomputation script, run on a real
``safeloop audit export`` of a chain holding version 1 and version 2 rows, agrees with every hash."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from models.db import make_engine
from safeloop.cli.main import app
from safeloop.schema import upgrade
from states import audit
from tests.conftest import BACKENDS
from tests.reliability.test_audit_chain import database_at, entry, write_v1_trail

README = Path(__file__).resolve().parents[2] / "README.md"
TRICKY = ['引号"与\\反斜杠', "换行\n制表\t回车\r", "控制\x01\x1f\x7f", "分隔\u2028\u2029", "emoji 😀"]


def readme_script() -> str:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"<!-- audit-recompute.*?-->\s*```python\n(.*?)```", text, re.S)
    assert match, "README lost its audit recomputation block"
    return match.group(1)


@pytest.mark.parametrize("backend", BACKENDS)
def test_readme_recomputes_an_exported_chain(backend: str, tmp_path: Path) -> None:
    with database_at(backend, tmp_path, "0005") as url:
        write_v1_trail(url)
        eng = make_engine(url)
        upgrade(eng)
        with Session(eng) as session:
            conn = session.connection()
            audit.append(conn, [entry(20 + i, channel="cli", simulated=i % 2 == 0)
                                for i in range(len(TRICKY))])
            for i, comment in enumerate(TRICKY):
                pending = entry(30 + i, channel="web", credential=f"session-{i}")
                pending.comment, pending.data = comment, audit.canonical_data({"备注": comment, "n": i})
                audit.append(conn, [pending])
            session.commit()
            seq, digest = audit.lock_head(session.connection())
            session.rollback()
        eng.dispose()
        exported = tmp_path / "audit.jsonl"
        result = CliRunner().invoke(app, ["--db", url, "audit", "export", "--format", "jsonl",
                                          "-o", str(exported)])
        assert result.exit_code == 0, result.output
    run = subprocess.run([sys.executable, "-c", readme_script(), str(exported)],
                         capture_output=True, text=True, encoding="utf-8", timeout=60)
    assert run.returncode == 0, run.stderr
    assert f"{seq} 条记录复算一致，链头 {seq}:{digest}" in run.stdout
