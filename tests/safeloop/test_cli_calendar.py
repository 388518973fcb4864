"""``safeloop calendar status|load``: coverage as a person reads it, and installing next year's
schedule validated whole (a bad or GBK file exits 2 and changes nothing), audited, in effect."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import DEMO_ORG
from tests.safeloop.test_cli import cli
from tests.states.test_calendar_watch import SCHEDULE_2027

__all__ = ["cli"]  # the CLI on the test database, as tests/safeloop/test_cli.py drives it


def _audit_rows(cli) -> int:
    return json.loads(cli("audit", "verify", "--json").output)["count"]


def test_status_names_the_next_uncovered_day(cli) -> None:
    shown = cli("calendar", "status", "--on", "2026-12-01")
    assert shown.exit_code == 0, shown.output
    assert "2004–2026" in shown.output and "2027-01-01（还有 31 天）" in shown.output
    assert "safeloop calendar load" in shown.output
    data = json.loads(cli("calendar", "status", "--on", "2026-12-01", "--json").output)
    assert data["days_left"] == 31 and data["short"] and data["sources"]["official"] == []


def test_load_installs_audits_and_takes_effect(cli, tmp_path: Path) -> None:
    before = _audit_rows(cli)
    file = tmp_path / "2027.yaml"
    file.write_text(SCHEDULE_2027, encoding="utf-8")
    loaded = cli("calendar", "load", str(file), "--as", "wang.zhuren", "--json")
    assert loaded.exit_code == 0, loaded.output
    facts = json.loads(loaded.output)
    assert facts["years"] == [2027] and facts["holidays"] == 8 and facts["working_days"] == 1
    assert _audit_rows(cli) == before + 1
    history = json.loads(cli("audit", "verify", "--json").output)
    assert history["ok"]
    data = json.loads(cli("calendar", "status", "--on", "2026-12-01", "--json").output)
    assert data["first_uncovered"] == "2028-01-01" and data["sources"]["official"] == [2027]
    assert (tmp_path / "store" / "calendar" / "official.yaml").is_file()


@pytest.mark.parametrize("content", [
    SCHEDULE_2027.encode("gbk"),  # GBK, not UTF-8
    b"covered_years: [2027]\nholidays:\n  - {date: 2027-02-30, name: x}\n",  # no such day
    b"covered_years: [2027]\n",  # a year with no holiday
    b"covered_years: [2027]\nholidays: [{date: 2027-01-01, name: a, evil: 1}]\n",  # unknown key
])
def test_a_bad_file_exits_2_and_changes_nothing(cli, tmp_path: Path, content: bytes) -> None:
    before = _audit_rows(cli)
    file = tmp_path / "bad.yaml"
    file.write_bytes(content)
    result = cli("calendar", "load", str(file))
    assert result.exit_code == 2, result.output
    assert "错误" in result.output
    assert _audit_rows(cli) == before
    assert not (tmp_path / "store" / "calendar").exists()


def test_a_directory_or_missing_file_is_refused(cli, tmp_path: Path) -> None:
    assert cli("calendar", "load", str(tmp_path)).exit_code == 2
    assert cli("calendar", "load", str(tmp_path / "none.yaml")).exit_code == 2


@pytest.mark.parametrize("argv", [
    ["calendar", "load", "{file}"],
    ["org", "load", str(DEMO_ORG)],
    ["user", "set-password", "li.anquan", "--generate"],
])
def test_an_operator_act_as_system_is_refused(cli, tmp_path: Path, argv: list[str]) -> None:
    """``system`` is the flows' identity: an operator's act typed as ``--as system`` is refused
    (exit 1) and writes nothing, as every event is."""
    file = tmp_path / "2027.yaml"
    file.write_text(SCHEDULE_2027, encoding="utf-8")
    before = _audit_rows(cli)
    result = cli(*[a.replace("{file}", str(file)) for a in argv], "--as", "system")
    assert result.exit_code == 1, result.output
    assert "系统内部身份" in result.output
    assert _audit_rows(cli) == before
    assert not (tmp_path / "store" / "calendar").exists()
