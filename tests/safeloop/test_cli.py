"""The CLI as a user drives it: exit codes 0/1/2, zh-CN messages, --json output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from safeloop.cli.main import app
from tests.conftest import DEMO_ORG

runner = CliRunner()


@pytest.fixture
def cli(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Invoke ``safeloop --db URL ...`` on the test database, storing evidence under tmp_path."""
    monkeypatch.setenv("SAFELOOP_STORAGE_DIR", str(tmp_path / "store"))
    from core.settings import get_settings

    get_settings.cache_clear()

    def invoke(*args: str):
        return runner.invoke(app, ["--db", db_url, *args])

    assert invoke("org", "load", str(DEMO_ORG)).exit_code == 0
    yield invoke
    get_settings.cache_clear()


def _report(cli) -> str:
    result = cli("hazard", "report", "--as", "sun.banzhang", "--unit", "jinhua-team-a",
                 "--title", "压力表失效", "--category", "thing", "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)["code"]


def test_closed_loop_through_cli(cli, tmp_path: Path):
    code = _report(cli)
    ok = cli("hazard", "fire", code, "assign", "--as", "li.anquan", "--owner", "sun.banzhang",
             "--deadline", "2099-12-31", "--acceptor", "zhao.chejian")
    assert ok.exit_code == 0 and "整改中" in ok.output
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8 photo")
    ok = cli("hazard", "fire", code, "submit", "--as", "sun.banzhang", "--measures", "已更换",
             "--evidence", str(photo))
    assert ok.exit_code == 0, ok.output
    assert list((tmp_path / "store" / "evidence").rglob("*"))  # stored by content hash
    events = json.loads(cli("hazard", "events", code, "--as", "zhao.chejian", "--json").output)
    assert {e["event"] for e in events} >= {"accept", "reject"}
    assert cli("hazard", "fire", code, "accept", "--as", "zhao.chejian").exit_code == 0
    shown = json.loads(cli("hazard", "show", code, "--json").output)
    assert shown["state"] == "closed"
    assert [h["event"] for h in shown["history"]] == ["report", "assign", "submit", "accept"]
    assert shown["history"][2]["data"]["evidence"][0]["name"] == "photo.jpg"
    listed = json.loads(cli("hazard", "list", "--state", "closed", "--json").output)
    assert listed["total"] == 1 and listed["items"][0]["code"] == code
    verify = json.loads(cli("audit", "verify", "--json").output)
    assert verify["ok"] and verify["count"] == 5  # org load + four hazard events
    assert cli("audit", "replay").exit_code == 0


def test_exit_codes(cli):
    code = _report(cli)
    refused = cli("hazard", "fire", code, "accept", "--as", "li.anquan")
    assert refused.exit_code == 1
    assert "已上报" in refused.output and "分派整改(assign)" in refused.output
    assert cli("hazard", "fire", "YH-999999", "assign", "--as", "li.anquan").exit_code == 2
    assert cli("hazard", "fire", code, "fly", "--as", "li.anquan").exit_code == 2
    bad_date = cli("hazard", "fire", code, "assign", "--as", "li.anquan", "--owner",
                   "sun.banzhang", "--deadline", "next week")
    assert bad_date.exit_code == 2 and "--deadline" in bad_date.output
    denied = cli("hazard", "fire", code, "cancel", "--as", "sun.banzhang", "--reason", "误报")
    assert denied.exit_code == 1 and "无权" in denied.output
    assert cli("hazard", "list", "--state", "nonsense").exit_code == 2


def test_audit_export_and_diagram(cli, tmp_path: Path):
    _report(cli)
    out = tmp_path / "audit.jsonl"
    assert cli("audit", "export", "--format", "jsonl", "-o", str(out)).exit_code == 0
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["seq"] for r in rows] == [1, 2] and rows[1]["event"] == "report"
    csv_out = tmp_path / "audit.csv"
    assert cli("audit", "export", "--format", "csv", "-o", str(csv_out)).exit_code == 0
    assert csv_out.read_text(encoding="utf-8").splitlines()[0].startswith("seq,entity_type")
    assert cli("audit", "export", "--format", "xml").exit_code == 2
    diagram = runner.invoke(app, ["diagram", "hazard"])
    assert diagram.output.startswith("stateDiagram-v2")
    assert "pending_acceptance --> closed: accept 验收销号" in diagram.output
    assert "planning --> rectifying: approve_plan" in diagram.output
