"""``--as`` on the CLI's read commands: only what that person sees; out of scope reads exactly as
a code that does not exist (same message, same exit code); without ``--as`` everything."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from safeloop.cli.main import app
from tests.conftest import DEMO_ORG

runner = CliRunner()


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SAFELOOP_STORAGE_DIR", str(tmp_path / "store"))
    from core.settings import get_settings

    get_settings.cache_clear()

    def invoke(*args: str):
        return runner.invoke(app, ["--db", db_url, *args])

    assert invoke("org", "load", str(DEMO_ORG)).exit_code == 0
    yield invoke
    get_settings.cache_clear()


def _report(cli, actor: str, unit: str) -> str:
    result = cli("hazard", "report", "--as", actor, "--unit", unit, "--title", "压力表失效",
                 "--category", "thing", "--as-of", "2026-11-02 09:00", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["code"]


@pytest.fixture
def two(cli):
    """A hazard in each demo enterprise: 晋华 (化工) and 忻丰 (工贸)."""
    return _report(cli, "sun.banzhang", "jinhua-team-a"), _report(cli, "feng.hanjie", "xinfeng-team-weld")


def _same_as_missing(cli, command: list[str], hidden: str, viewer: str) -> None:
    shown = cli(*command, hidden, "--as", viewer)
    missing = cli(*command, "YH-999999", "--as", viewer)
    assert shown.exit_code == missing.exit_code != 0
    assert shown.output.replace(hidden, "CODE") == missing.output.replace("YH-999999", "CODE")
    assert "不存在" in shown.output


def test_show_outside_scope_is_not_found(cli, two) -> None:
    jinhua, xinfeng = two
    for command in (["hazard", "show"], ["audit", "show"]):
        _same_as_missing(cli, command, jinhua, "zheng.changzhang")  # enterprise B's principal
        _same_as_missing(cli, command, xinfeng, "nobody.here")  # unknown person
        assert cli(*command, jinhua, "--as", "wang.zhuren").exit_code == 0
        assert cli(*command, jinhua).exit_code == 0  # the operator
    shown = json.loads(cli("hazard", "show", xinfeng, "--as", "zheng.changzhang", "--json").output)
    assert shown["code"] == xinfeng and shown["history"]


def test_lists_hold_only_what_the_person_sees(cli, two) -> None:
    jinhua, xinfeng = two

    def listed(*viewer: str) -> set[str]:
        result = cli("hazard", "list", "--json", *viewer)
        assert result.exit_code == 0, result.output
        data = json.loads(result.output)
        assert data["total"] == len(data["items"])
        return {item["code"] for item in data["items"]}

    assert listed() == {jinhua, xinfeng}
    assert listed("--as", "qian.jianguan") == {jinhua, xinfeng}
    assert listed("--as", "he.shenji") == {jinhua, xinfeng}
    assert listed("--as", "wang.zhuren") == {jinhua}
    assert listed("--as", "zheng.changzhang") == {xinfeng}
    assert listed("--as", "wu.chuyun") == set()  # another workshop of the same enterprise
    assert listed("--as", "nobody.here") == set()
    for command in (["inspect", "list", "--json"], ["risk", "list", "--json"],
                    ["listing", "list", "--json"], ["order", "list", "--json"],
                    ["stat-report", "list", "--json"]):
        result = cli(*command, "--as", "nobody.here")
        assert result.exit_code == 0, (command, result.output)
        data = json.loads(result.output)
        assert (data["total"] if isinstance(data, dict) else len(data)) == 0, command


def test_enterprise_outside_scope_is_not_found(cli, two, tmp_path: Path) -> None:
    hidden = cli("risk", "export", "jinhua", "--format", "csv", "--out", str(tmp_path / "r.csv"),
                 "--as", "zheng.changzhang")
    missing = cli("risk", "export", "nosuch", "--format", "csv", "--out", str(tmp_path / "r.csv"),
                  "--as", "zheng.changzhang")
    assert hidden.exit_code == missing.exit_code != 0
    assert hidden.output.replace("jinhua", "X") == missing.output.replace("nosuch", "X")
    assert cli("risk", "export", "jinhua", "--format", "csv", "--out", str(tmp_path / "r.csv"),
               "--as", "wang.zhuren").exit_code == 0


def test_audit_export_for_an_auditor(cli, two, tmp_path: Path) -> None:
    jinhua, xinfeng = two
    every, mine = tmp_path / "all.csv", tmp_path / "mine.csv"
    assert cli("audit", "export", "--format", "csv", "-o", str(every)).exit_code == 0
    assert cli("audit", "export", "--format", "csv", "-o", str(mine), "--as", "he.shenji").exit_code == 0
    assert cli("audit", "export", "--format", "csv", "-o", str(tmp_path / "b.csv"),
               "--as", "zheng.changzhang").exit_code == 0

    def codes(path: Path) -> list[tuple[str, str]]:
        return [(r["entity_type"], r["entity_code"]) for r in csv.DictReader(path.open(encoding="utf-8"))]

    assert ("org", "demo_org.yaml") in codes(every)
    assert ("hazard", jinhua) in codes(mine) and ("hazard", xinfeng) in codes(mine)
    assert all(kind == "hazard" for kind, _ in codes(mine))  # no administrative rows (not a top auditor)
    assert codes(tmp_path / "b.csv") == [("hazard", xinfeng)]


def test_reports_read_through_the_scope(cli, two, tmp_path: Path) -> None:
    def enterprises(*viewer: str) -> int:
        result = cli("report", "stats", "--period", "2026-Q4", "-o", str(tmp_path / "s.csv"),
                     "--as-of", "2026-11-30 12:00", "--json", *viewer)
        assert result.exit_code == 0, result.output
        return int(json.loads(result.output)["enterprises"])

    assert enterprises() == 2
    assert enterprises("--as", "qian.jianguan") == 2
    assert enterprises("--as", "zheng.changzhang") == 1
    assert enterprises("--as", "nobody.here") == 0
    result = cli("report", "bulletin", "--period", "2026-11", "-o", str(tmp_path / "b.md"),
                 "--as", "zheng.changzhang")
    assert result.exit_code == 0, result.output
