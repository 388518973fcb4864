"""Bad settings, database URLs, dates, numbers and keys: a zh-CN message naming what was wrong,
exit 2 (or 1), no traceback and nothing written -- on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine
from sqlmodel import Session
from typer.testing import CliRunner

from core.errors import InvalidInput
from core.settings import get_settings
from safeloop.cli.main import app
from safeloop.database import NOT_INITIALISED, require_ready
from tests.helpers import CJK, table_counts
from tests.safeloop.test_cli import cli  # noqa: F401  (fixture)

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_settings() -> object:
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def _refused(result: object, *needles: str, code: int = 2) -> None:
    out = result.output  # type: ignore[attr-defined]
    assert result.exit_code == code, out  # type: ignore[attr-defined]
    assert "Traceback" not in out and CJK.search(out), out
    for needle in needles:
        assert needle in out, (needle, out)


# ---- settings and URLs ----------------------------------------------------------------------

BAD_SETTINGS = [
    ("SAFELOOP_RISK_BANDS", "{x", "JSON"),
    ("SAFELOOP_RISK_BANDS", '{"zz": {"major": 1}}', "zz"),
    ("SAFELOOP_STORAGE_DIR", "__FILE__", "不是目录"),
    ("SAFELOOP_STORAGE_DIR", "__FILE__/evidence", "不是目录"),
    ("SAFELOOP_SQLITE_BUSY_TIMEOUT_S", "-1", "> 0"),
    ("SAFELOOP_SQLITE_BUSY_TIMEOUT_S", "inf", "有限"),
    ("SAFELOOP_TIMEZONE", "Mars/Olympus", "时区"),
    ("SAFELOOP_ESCALATION_DAYS", "[7, 3, 0]", "递增"),
    ("SAFELOOP_SWEEP_BATCH_SIZE", "0", "≥ 1"),
    ("SAFELOOP_DUE_SOON_HOURS", "lots", "整数"),
    ("SAFELOOP_NOTIFY_DIGEST_TIME", "25:61", "HH:MM"),
    ("SAFELOOP_LISTING_RULES", '{"file_days": -5}', "file_days"),
    ("SAFELOOP_DATABASE_URL", "mysql://root:pw@localhost/safeloop", "mysql"),
    ("SAFELOOP_DATABASE_URL", "garbage", "garbage"),
]


@pytest.mark.parametrize(("name", "value", "needle"), BAD_SETTINGS)
def test_bad_setting_refused_at_start(name: str, value: str, needle: str, tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch,
                                      fresh_settings: None) -> None:
    if value.startswith("__FILE__"):
        (tmp_path / "a-file").write_text("not a folder", encoding="utf-8")
        value = value.replace("__FILE__", str(tmp_path / "a-file"))
    monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    result = runner.invoke(app, ["--db", f"sqlite:///{tmp_path / 'x.db'}", "plan", "list"]
                           if name != "SAFELOOP_DATABASE_URL" else ["plan", "list"])
    _refused(result, name, needle)
    assert not (tmp_path / "x.db").exists()


@pytest.mark.parametrize(("name", "value"), [("SAFELOOP_RISK_BANDS", "{x"),
                                             ("SAFELOOP_LISTING_RULES", '{"nonsense_days": 3}')])
def test_bad_setting_through_the_console_entry(name: str, value: str, tmp_path: Path) -> None:
    """The installed entry point: settings some modules read when imported are refused too."""
    env = {**os.environ, name: value, "SAFELOOP_DATABASE_URL": f"sqlite:///{tmp_path / 'x.db'}"}
    done = subprocess.run([sys.executable, "-c", "from safeloop.cli import run; run()",
                           "plan", "list"], env=env, cwd=tmp_path, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr and name in done.stderr


@pytest.mark.parametrize(("url", "needle"), [
    ("garbage", "不是有效的数据库 URL"),
    ("mysql+pymysql://root:hunter2@localhost/safeloop", "不支持的数据库"),
    ("oracle://scott:tiger@db/orcl", "不支持的数据库"),
    ("sqlite://", "须指明数据库文件"),
    ("sqlite:////no/such/folder/safeloop.db", "不存在"),
])
def test_bad_db_option(url: str, needle: str, fresh_settings: None) -> None:
    result = runner.invoke(app, ["--db", url, "hazard", "list"])
    _refused(result, "--db", needle)
    assert "hunter2" not in result.output and "tiger" not in result.output


def test_uninitialised_database_is_refused(tmp_path: Path) -> None:
    """``require_ready`` (for open_session): no file, or a file without a schema: exit 2."""
    missing = create_engine(f"sqlite:///{tmp_path / 'none.db'}")
    with pytest.raises(InvalidInput, match=NOT_INITIALISED):
        require_ready(missing)
    assert not (tmp_path / "none.db").exists()  # looking did not create it
    empty = tmp_path / "empty.db"
    empty.write_bytes(b"")
    with pytest.raises(InvalidInput, match=NOT_INITIALISED):
        require_ready(create_engine(f"sqlite:///{empty}"))
    unreachable = create_engine("postgresql+psycopg://u:hunter2@127.0.0.1:1/x")
    with pytest.raises(InvalidInput, match="无法连接数据库") as caught:
        require_ready(unreachable)
    assert "hunter2" not in caught.value.message


def test_initialised_database_is_ready(db_url: str) -> None:
    from models.db import make_engine

    engine = make_engine(db_url)
    try:
        require_ready(engine)  # no error
    finally:
        engine.dispose()


# ---- dates and numbers ----------------------------------------------------------------------

def _report(cli) -> str:  # noqa: F811
    out = cli("hazard", "report", "--as", "sun.banzhang", "--unit", "jinhua-team-a", "--title",
              "压力表失效", "--category", "thing", "--json")
    assert out.exit_code == 0, out.output
    return json.loads(out.output)["code"]


@pytest.mark.parametrize("args", [
    ("hazard", "report", "--as", "sun.banzhang", "--unit", "jinhua-team-a", "--title", "x",
     "--category", "thing", "--found-at", "0001-01-01"),
    ("hazard", "report", "--as", "sun.banzhang", "--unit", "jinhua-team-a", "--title", "x",
     "--category", "thing", "--as-of", "9999-12-31 23:59"),
    ("hazard", "fire", "YH-000001", "assign", "--as", "li.anquan", "--owner", "sun.banzhang",
     "--deadline", "2101-01-01"),
    ("hazard", "fire", "YH-000001", "assign", "--as", "li.anquan", "--owner", "sun.banzhang",
     "--deadline", "1969-12-31"),
    ("flows", "run", "sweep-deadlines", "--as-of", "9999-12-31 23:59"),
    ("flows", "run", "materialize-inspections", "--as-of", "0001-01-01"),
    ("plan", "add", "p-old", "--unit", "jinhua-team-a", "--from", "0001-01-01"),
    ("plan", "add", "p-far", "--unit", "jinhua-team-a", "--until", "9999-12-31"),
])
def test_dates_out_of_range(cli, args: tuple[str, ...], db_url: str) -> None:  # noqa: F811
    _report(cli)
    before = counts(db_url)
    result = cli(*args)
    _refused(result, "超出支持的范围", "1970-01-01", "2100-12-31")
    assert counts(db_url) == before


@pytest.mark.parametrize("args", [
    ("report", "bulletin", "--period", "0001-01"),
    ("report", "bulletin", "--period", "2026-11", "--issued-on", "0001-01-01"),
    ("report", "stats", "--period", "2101"),
    ("report", "stats", "--period", "1969-Q4"),
])
def test_report_periods_out_of_range(cli, args: tuple[str, ...], tmp_path: Path) -> None:  # noqa: F811
    output = tmp_path / ("out.md" if "bulletin" in args else "out.csv")
    _refused(cli(*args, "-o", str(output)), "超出支持的范围", "2100-12-31")
    assert not output.exists()


def test_flow_as_of_out_of_range() -> None:
    """A flow given an ``as_of`` directly (a deployment parameter) refuses it up front."""
    from datetime import datetime

    from flows.common import resolve_as_of

    for moment in (datetime(1, 1, 1), datetime(9999, 12, 31, 23, 59)):
        with pytest.raises(InvalidInput, match="超出支持的范围"):
            resolve_as_of(moment)


@pytest.mark.parametrize("funds", ["1e400", "inf", "-Infinity", "nan", "1000000000000", "-1",
                                   "abc"])
def test_funds_refused(cli, funds: str) -> None:  # noqa: F811
    code = _report(cli)
    result = cli("hazard", "fire", code, "assign", "--as", "li.anquan", "--owner",
                 "sun.banzhang", "--deadline", "2099-12-31", "--funds", funds)
    _refused(result, "--funds", funds)
    shown = json.loads(cli("hazard", "show", code, "--json").output)
    assert shown["state"] == "reported" and shown["funds"] is None


def test_funds_in_range_accepted(cli) -> None:  # noqa: F811
    code = _report(cli)
    ok = cli("hazard", "fire", code, "assign", "--as", "li.anquan", "--owner", "sun.banzhang",
             "--deadline", "2099-12-31", "--funds", "999999999999.99")
    assert ok.exit_code == 0, ok.output
    assert json.loads(cli("hazard", "show", code, "--json").output)["funds"] == "999999999999.99"


@pytest.mark.parametrize("args", [("outbox", "show", "99999999999999999999999"),
                                  ("outbox", "retry", "99999999999999999999999")])
def test_huge_ids(cli, args: tuple[str, ...]) -> None:  # noqa: F811
    _refused(cli(*args), "编号超出范围")


# ---- plan keys and constraint refusals ------------------------------------------------------

@pytest.mark.parametrize(("key", "needle"), [
    ("", "不能为空"), ("   ", "不能为空"), ("a/b", "/"), ("tab\tkey", "控制字符"),
    ("bell\x07", "控制字符"), (" lead", "空白"), ("x" * 65, "过长"),
])
def test_bad_plan_keys(cli, key: str, needle: str, db_url: str) -> None:  # noqa: F811
    result = cli("plan", "add", key, "--unit", "jinhua-team-a")
    _refused(result, needle)
    assert json.loads(cli("plan", "list", "--json").output) == []


def test_duplicate_plan_key(cli) -> None:  # noqa: F811
    assert cli("checklist", "load", "--shipped").exit_code == 0
    assert cli("plan", "add", "team-a", "--unit", "jinhua-team-a").exit_code == 0
    _refused(cli("plan", "add", "team-a", "--unit", "jinhua-team-b"), "已存在")


def test_annual_plan_drafted_twice(cli, tmp_path: Path, db_url: str) -> None:  # noqa: F811
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text("jurisdiction: xz-edz\nyear: 2020\ndepartment: edz-yjj\nentries:\n"
                         "  - {enterprise: jinhua, frequency: 4}\n", encoding="utf-8")
    at = ["--as", "qian.jianguan", "--as-of", "2020-09-28 10:00"]
    assert cli("plan", "annual", "draft", str(plan_file), *at).exit_code == 0
    before = counts(db_url)
    again = cli("plan", "annual", "draft", str(plan_file), *at)
    _refused(again, "年度监督检查计划已存在")
    assert counts(db_url) == before


def counts(url: str) -> dict[str, int]:
    """Row counts of every table, read on an engine of its own."""
    from models.db import make_engine

    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return table_counts(session)
    finally:
        engine.dispose()
