"""Usage errors (Click's and Typer's) are shown in zh-CN with the usage line, and exit 2.

No database is needed: every case fails while the command line is parsed, before any command runs.
"""

from __future__ import annotations

import re

import pytest
from typer.testing import CliRunner

from safeloop.cli.main import app

runner = CliRunner()
ENGLISH = re.compile(r"\b(Error|Usage|Invalid|Missing|No such|Try|Got unexpected|requires|"
                     r"Input should|Possible options|Did you mean)\b")
REPORT = ["hazard", "report", "--as", "x", "--unit", "u", "--title", "t"]

CASES = [  # (command line, what the message must say)
    (["hazard", "list", "--limit", "abc"], "选项 --limit 的值无效：「abc」不是整数"),
    (["hazard", "list", "--limit", "0"], "选项 --limit 的值无效：「0」不能小于 1"),
    (["hazard", "list", "--limit", "99999"], "「99999」不能大于 10000"),
    (["hazard", "list", "--grade", "huge"], "「huge」不是可选值，可用：general、major"),
    ([*REPORT, "--category", "c"], "可用：thing、behaviour、management"),
    (["report", "stats", "--period", "2026", "-o", "x", "--format", "pdf"], "可用：xlsx、csv"),
    (["outbox", "show", "abc"], "参数 MESSAGE_ID 的值无效：「abc」不是整数"),
    (["outbox", "retry", "1", "x"], "参数 IDS 的值无效：「x」不是整数"),
    (["demo", "--days", "-1"], "「-1」不能小于 0"),
    (["hazard", "list", "--bogus"], "没有这个选项：--bogus"),
    (["hazard", "list", "--gade", "x"], "没有这个选项：--gade（您是不是要用：--grade"),
    (["hazard", "list", "-z"], "没有这个选项：-z"),
    (["--bogus"], "没有这个选项：--bogus"),
    (["hazard", "lst"], "没有这个命令：「lst」（您是不是要用：list）"),
    (["nosuch"], "没有这个命令：「nosuch」；可用："),
    (["hazard", "report", "--as", "x"], "缺少必填选项 --unit"),
    (["hazard", "show"], "缺少参数 CODE"),
    (["risk", "export", "jinhua"], "缺少必填选项 --out"),
    (["hazard", "show", "a", "b"], "多余的参数：b"),
    (["hazard", "list", "--limit"], "选项 --limit 后面缺少值"),
    (["hazard", "list", "--json=yes"], "选项 --json 不带值"),
    (["hazard", "show", "A" * 201], "参数 CODE 的值无效：编号过长（201 个字符，最多 200 个）"),
    (["risk", "card", "e", "--out", "x.html", "--code", "F" * 300], "选项 --code 的值无效：编号过长"),
]


@pytest.mark.parametrize(("args", "expected"), CASES, ids=[" ".join(c[0])[:40] for c in CASES])
def test_usage_errors_in_chinese(args: list[str], expected: str):
    result = runner.invoke(app, args, prog_name="safeloop")
    assert result.exit_code == 2, result.output
    assert expected in result.output, result.output
    assert result.output.startswith("用法：safeloop"), result.output
    assert "查看帮助：safeloop" in result.output
    assert not ENGLISH.search(result.output), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
