"""What the CLI prints is data, never markup: ``[/x]`` typed by one user must not break ``list``
and ``show`` for everyone; a 100 KB id is refused before any layout; bytes that are not UTF-8
are refused before anything is saved; and a failure to print after a commit says the change was
saved (exit 0) instead of looking like a failed command."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.text import Text
from typer.testing import CliRunner

from safeloop.cli.main import app
from safeloop.cli.output import cell, clip, plain, safe
from tests.conftest import DEMO_ORG

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
MARKUP = "[/x]"
REPORT = ("hazard", "report", "--as", "sun.banzhang", "--unit", "jinhua-team-a",
          "--category", "thing")


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """``safeloop --db URL ...`` in-process, on the demo organisation with shipped checklists."""
    monkeypatch.setenv("SAFELOOP_STORAGE_DIR", str(tmp_path / "store"))
    from core.settings import get_settings

    get_settings.cache_clear()

    def invoke(*args: str):
        return runner.invoke(app, ["--db", db_url, *args])

    assert invoke("org", "load", str(DEMO_ORG)).exit_code == 0
    assert invoke("checklist", "load", "--shipped").exit_code == 0
    yield invoke
    get_settings.cache_clear()


def run_cli(db_url: str, tmp_path: Path, *args: str | bytes, stdout: int | None = None,
            **kw) -> subprocess.CompletedProcess[bytes]:
    """The real program in a child process: argv bytes, stdout a device or a closed pipe."""
    env = {**os.environ, "SAFELOOP_STORAGE_DIR": str(tmp_path / "store"), "LC_ALL": "C.UTF-8",
           "PREFECT_HOME": str(tmp_path / "prefect")}
    command = [sys.executable, "-c", "from safeloop.cli.main import run; run()", "--db", db_url,
               *args]
    return subprocess.run(command, cwd=ROOT, env=env, stdout=stdout if stdout is not None
                          else subprocess.PIPE, stderr=subprocess.PIPE, timeout=120, check=False,
                          **kw)


# ---- the helpers ------------------------------------------------------------------------------


def test_safe_escapes_cuts_and_shows_bad_bytes():
    assert safe(MARKUP) == "\\[/x]"
    assert plain("a\udcff\udcfeb") == "a\\xff\\xfeb"  # how argv carries bytes that are not UTF-8
    assert plain("x" * 10, 4) == "xxxx…"
    cut = clip("隐患「" + "A" * 1000 + "」不存在", 100, middle=True)
    assert cut.startswith("隐患「AAA") and cut.endswith("」不存在") and "…" in cut and len(cut) < 130
    shown = cell(MARKUP)
    assert isinstance(shown, Text) and shown.plain == MARKUP


# ---- markup in stored text --------------------------------------------------------------------


def test_markup_in_user_text_is_shown_literally_everywhere(cli):
    reported = cli(*REPORT, "--title", MARKUP, "--description", "[bold]x[/bold]",
                   "--location", "[link=file:///etc/passwd]点我[/link]", "--json")
    assert reported.exit_code == 0, reported.output
    code = json.loads(reported.output)["code"]
    for args in (("hazard", "list"), ("hazard", "show", code), ("audit", "show", code)):
        shown = cli(*args)
        assert shown.exit_code == 0, (args, shown.output)
        assert "Traceback" not in shown.output and "MarkupError" not in shown.output
    assert MARKUP in cli("hazard", "list").output
    detail = cli("hazard", "show", code).output
    assert MARKUP in detail and "[link=file:///etc/passwd]点我[/link]" in detail


def test_commands_that_save_then_print_user_text_exit_0(cli):
    slash = cli("plan", "add", MARKUP, "--unit", "jinhua-team-a")  # keys hold no "/"
    assert slash.exit_code == 2 and MARKUP in slash.output
    key = "[b]甲"
    added = cli("plan", "add", key, "--unit", "jinhua-team-a")
    assert added.exit_code == 0 and f"排查计划 {key} 已新增" in added.output
    keys = [p["key"] for p in json.loads(cli("plan", "list", "--json").output)]
    assert keys == [key]
    listed = cli("plan", "list")
    assert listed.exit_code == 0 and key in listed.output
    area = cli("risk", "area", "jinhua", MARKUP, "--polygon", "0,0 10,0 10,10", "--as", "li.anquan")
    assert area.exit_code == 0, area.output
    assert f"区域「{MARKUP}」已登记" in area.output


def test_refusal_quoting_markup_is_printed(cli):
    missing = cli("hazard", "show", MARKUP)
    assert missing.exit_code == 2 and f"隐患「{MARKUP}」不存在" in missing.output
    unit = cli("hazard", "list", "--unit", "[red]x")
    assert unit.exit_code == 2 and "单位「[red]x」不存在" in unit.output


# ---- long values ------------------------------------------------------------------------------


def test_100kb_id_refused_quickly(cli):
    started = time.perf_counter()
    shown = cli("hazard", "show", "A" * 100_000)
    elapsed = time.perf_counter() - started
    assert shown.exit_code == 2 and "编号过长" in shown.output, shown.output[:500]
    assert elapsed < 2, elapsed
    added = cli("plan", "add", "K" * 100_000, "--unit", "jinhua-team-a")
    assert added.exit_code == 2 and "编号过长" in added.output
    assert json.loads(cli("plan", "list", "--json").output) == []  # nothing half-done


def test_100kb_value_in_a_message_is_cut(cli):
    started = time.perf_counter()
    result = cli("hazard", "list", "--unit", "U" * 100_000)
    elapsed = time.perf_counter() - started
    assert result.exit_code == 2 and elapsed < 2, elapsed
    assert "省略" in result.output and result.output.rstrip().endswith("」不存在")
    assert len(result.output) < 2000


# ---- bytes that are not UTF-8 -----------------------------------------------------------------


def test_invalid_utf8_arguments_refused_before_anything_is_saved(cli, db_url: str, tmp_path: Path):
    cases = [
        ("hazard", "show", b"YH-\xff\xfe"),
        (*REPORT, "--title", b"\xe5\x8e\x8b\xff"),
        ("plan", "add", b"k\xff", "--unit", "jinhua-team-a"),
        ("org", "load", b"/tmp/\xff.yaml"),
    ]
    for args in cases:
        result = run_cli(db_url, tmp_path, *args)
        err = result.stderr.decode("utf-8")
        assert result.returncode == 2, (args, err)
        assert "Traceback" not in err and "无效的 UTF-8" in err, err
        assert "\\xff" in err
    assert json.loads(cli("hazard", "list", "--json").output)["total"] == 0
    assert json.loads(cli("plan", "list", "--json").output) == []


# ---- printing fails after the change was saved -----------------------------------------------


def test_output_failure_after_commit_says_saved(cli, db_url: str, tmp_path: Path):
    with open("/dev/full", "wb") as full:
        added = run_cli(db_url, tmp_path, "plan", "add", "p-full", "--unit", "jinhua-team-a",
                        stdout=full.fileno())
        err = added.stderr.decode("utf-8")
        assert added.returncode == 0, err
        assert "操作已保存，但输出失败" in err and "磁盘空间不足" in err and "Traceback" not in err
        listed = run_cli(db_url, tmp_path, "plan", "list", stdout=full.fileno())
        err = listed.stderr.decode("utf-8")
        assert listed.returncode == 1 and "输出失败" in err and "已保存" not in err
    read, write = os.pipe()
    os.close(read)  # the reader went away, as with ``| head -0``
    try:
        reported = run_cli(db_url, tmp_path, *REPORT, "--title", "管道", "--json", stdout=write)
    finally:
        os.close(write)
    err = reported.stderr.decode("utf-8")
    assert reported.returncode == 0 and "操作已保存" in err and "Traceback" not in err, err
    assert [p["key"] for p in json.loads(cli("plan", "list", "--json").output)] == ["p-full"]
    hazards = json.loads(cli("hazard", "list", "--json").output)["items"]
    assert [h["title"] for h in hazards] == ["管道"]
