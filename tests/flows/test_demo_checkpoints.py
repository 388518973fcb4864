"""The demo keeps its checkpoints in its own folder; run twice in one folder, `audit verify`
passes (the first run's checkpoints are named as another chain's, not as a rewrite)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from safeloop.cli.main import app
from safeloop.demo import run_demo
from states.jobs import checkpoint


def test_demo_twice_in_one_folder_then_verify(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "safeloop-demo.db"
    file = tmp_path / "safeloop-demo-data" / checkpoint.CHECKPOINT_FILE
    for _ in range(2):
        out = io.StringIO()
        assert run_demo(path, Console(file=out, width=160), days=1) == 0, out.getvalue()
    points = checkpoint.read_file(file)
    assert len(points) == 2 and len({p.chain_id for p in points}) == 2  # one per run

    monkeypatch.setenv("SAFELOOP_STORAGE_DIR", str(tmp_path / "elsewhere"))
    from core.settings import get_settings

    get_settings.cache_clear()
    try:
        runner, db = CliRunner(), f"sqlite:///{path}"
        for extra in ([], ["--checkpoint-file", str(file)]):
            result = runner.invoke(app, ["--db", db, "audit", "verify", "--json", *extra])
            assert result.exit_code == 0, result.output
            report = json.loads(result.output)
            assert report["ok"] and report["checkpoint_problems"] == []
            assert any("另一条链" in w and points[0].chain_id in w
                       for w in report["checkpoint_warnings"]), report
            assert report["checked"] == 2  # the second run's checkpoint: in its table and file
    finally:
        get_settings.cache_clear()
