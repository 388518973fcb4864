"""Every command that writes a file checks the path first and writes atomically: a missing
folder, a folder, a device (/dev/full) or a write that fails half-way is bad input in zh-CN
(exit 2), and no file — not even a partial or temporary one — is left behind."""

from __future__ import annotations

import os
import resource
import subprocess
import sys
from pathlib import Path

import pytest
from sqlmodel import Session
from typer.testing import CliRunner

from models.db import make_engine
from safeloop.cli.main import app
from tests.conftest import DEMO_ORG
from tests.helpers import report

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
PAIR = ("管控责任清单", "管控措施清单")
WRITERS = [  # every command with an output file; OUT is replaced by the path under test
    ["audit", "export", "--format", "csv", "-o", "OUT"],
    ["report", "stats", "--period", "2026-Q4", "-o", "OUT"],
    ["report", "bulletin", "--period", "2026-11", "-o", "OUT"],
    ["risk", "export", "jinhua", "--out", "OUT"],
    ["risk", "export", "jinhua", "--format", "csv", "--out", "OUT"],
    ["risk", "map", "jinhua", "--out", "OUT"],
    ["risk", "card", "jinhua", "--out", "OUT"],
]


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SAFELOOP_STORAGE_DIR", str(tmp_path / "store"))

    def invoke(*args: str):
        return runner.invoke(app, ["--db", db_url, *args])

    assert invoke("org", "load", str(DEMO_ORG)).exit_code == 0
    return invoke


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*") if "store" not in p.parts}


def _device_neighbours() -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in Path("/dev").glob("full-*")}


def _with(command: list[str], path: Path | str) -> list[str]:
    return [str(path) if part == "OUT" else part for part in command]


@pytest.mark.parametrize(("kind", "message"), [
    ("missing folder", "输出目录不存在"),
    ("a folder", "是一个目录"),
    ("/dev/full", "不是普通文件"),
])
def test_bad_output_paths_refused_before_writing(cli, tmp_path: Path, kind: str, message: str):
    work = tmp_path / "work"
    work.mkdir()
    target = {"missing folder": work / "nope" / "x.out", "a folder": work,
              "/dev/full": Path("/dev/full")}[kind]
    before = _files(tmp_path)
    beside_device = _device_neighbours()  # /dev is shared: compare, don't demand it empty
    for command in WRITERS:
        result = cli(*_with(command, target))
        assert result.exit_code == 2, (command, result.output)
        assert message in result.output and "Traceback" not in result.output, result.output
        assert _files(tmp_path) == before, command  # nothing written, no temporary file left
    assert _device_neighbours() == beside_device  # no CSV pair written beside a device


def test_outputs_replace_a_file_atomically(cli, tmp_path: Path):
    """The guard for the writer itself: an existing file is replaced whole, keeps its mode, and
    no temporary file stays behind."""
    for n, command in enumerate(WRITERS):
        target = tmp_path / f"out{n}.dat"
        pair = command[:2] == ["risk", "export"] and "csv" in command
        # the CSV list is two files beside the named path
        written = [target.with_name(f"{target.stem}-{name}.csv") for name in PAIR] if pair else [target]
        for path in written:
            path.write_text("old content that must go", encoding="utf-8")
            os.chmod(path, 0o640)
        result = cli(*_with(command, target))
        assert result.exit_code == 0, (command, result.output)
        for path in written:
            assert b"old content" not in path.read_bytes() and path.stat().st_size > 0
            assert oct(path.stat().st_mode & 0o777) == oct(0o640)  # the file's own mode is kept
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]


def test_write_failing_half_way_leaves_the_old_file(cli, db_url: str, tmp_path: Path):
    """A real failure mid-write (the file-size limit, as a full disk would): exit 2 in zh-CN,
    the previous export untouched, no temporary file."""
    engine = make_engine(db_url)
    with Session(engine, expire_on_commit=False) as session:
        for _ in range(120):  # ~65 KB of audit rows, past the 48 KB limit below
            report(session)
    engine.dispose()
    target = tmp_path / "audit.jsonl"
    target.write_text("previous export\n", encoding="utf-8")
    limit = 48 * 1024

    def small_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    env = {**os.environ, "SAFELOOP_STORAGE_DIR": str(tmp_path / "store"),
           "PREFECT_HOME": str(tmp_path / "prefect")}
    result = subprocess.run(
        [sys.executable, "-c", "from safeloop.cli.main import run; run()", "--db", db_url,
         "audit", "export", "-o", str(target)],
        cwd=ROOT, env=env, capture_output=True, timeout=120, preexec_fn=small_files, check=False)
    err = result.stderr.decode("utf-8")
    assert result.returncode == 2, err
    assert "无法写入" in err and "文件过大" in err and "文件未写出" in err and "Traceback" not in err
    assert target.read_text(encoding="utf-8") == "previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    whole = cli("audit", "export", "-o", str(target))  # without the limit it is written whole
    assert whole.exit_code == 0 and len(target.read_text(encoding="utf-8").splitlines()) == 121
