"""The regulator's CLI: listing, suspension orders and annual plans end to end."""

from __future__ import annotations

import json
from pathlib import Path

from tests.safeloop.test_cli import cli  # noqa: F401  (fixture)

AT = ["--as-of", "2020-09-28 10:00"]


def _major(cli) -> str:  # noqa: F811
    out = cli("hazard", "report", "--as", "wu.chuyun", "--unit", "jinhua-team-tank", "--title",
              "液氨储罐安全阀失效", "--category", "thing", "--grade", "major", "--json", *AT)
    code = json.loads(out.output)["code"]
    assert cli("hazard", "fire", code, "assign", "--as", "li.anquan", "--owner", "wu.chuyun",
               "--deadline", "2020-12-31", *AT).exit_code == 0
    return code


def test_listing_through_cli(cli, tmp_path: Path):  # noqa: F811
    code = _major(cli)
    denied = cli("listing", "propose", code, "--as", "wang.zhuren", *AT)
    assert denied.exit_code == 1 and "无权" in denied.output
    made = cli("listing", "propose", code, "--as", "qian.jianguan", "--department", "edz-yjj",
               "--json", *AT)
    assert made.exit_code == 0, made.output
    listing = json.loads(made.output)["code"]
    too_late = cli("listing", "fire", listing, "list", "--as", "qian.jianguan",
                   "--set", "deadline=2022-01-01", *AT)
    assert too_late.exit_code == 1 and "一年" in too_late.output
    ok = cli("listing", "fire", listing, "list", "--as", "qian.jianguan",
             "--set", "deadline=2021-03-31", *AT)
    assert ok.exit_code == 0 and "挂牌督办中" in ok.output
    shown = json.loads(cli("listing", "show", listing, "--json").output)
    assert shown["file_due"].startswith("2020-10-09")
    bad = cli("listing", "fire", listing, "escalate", "--as", "qian.jianguan", "--set", "level=9")
    assert bad.exit_code == 2
    assert cli("listing", "list").exit_code == 0


def test_order_and_annual_plan_through_cli(cli, tmp_path: Path):  # noqa: F811
    made = cli("order", "create", "--as", "qian.jianguan", "--unit", "xinfeng-plant",
               "--reason", "焊接车间除尘系统失效，粉尘爆炸风险", "--json", *AT)
    assert made.exit_code == 0, made.output
    order = json.loads(made.output)["code"]
    assert cli("order", "fire", order, "start_rectification", "--as", "zheng.changzhang",
               *AT).exit_code == 0
    report = tmp_path / "report.pdf"
    report.write_bytes(b"%PDF-1.4 rectification report")
    assert cli("order", "fire", order, "request_resumption", "--as", "zheng.changzhang",
               "--evidence", str(report), *AT).exit_code == 0
    listed = json.loads(cli("order", "list", "--enterprise", "xinfeng", "--json").output)
    assert [o["state"] for o in listed] == ["resumption_requested"]
    assert json.loads(cli("order", "list", "--enterprise", "jinhua", "--json").output) == []
    assert cli("order", "list", "--enterprise", "nobody").exit_code == 2
    assert cli("order", "fire", order, "approve_resumption", "--as", "qian.jianguan",
               *AT).exit_code == 0
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text("jurisdiction: xz-edz\nyear: 2020\ndepartment: edz-yjj\nentries:\n"
                         "  - {enterprise: jinhua, frequency: 4}\n"
                         "  - {enterprise: xinfeng, frequency: 2}\n", encoding="utf-8")
    made = cli("plan", "annual", "draft", str(plan_file), "--as", "qian.jianguan", "--json", *AT)
    assert made.exit_code == 0, made.output
    plan = json.loads(made.output)["code"]
    for event in ("file", "activate"):
        assert cli("plan", "annual", "fire", plan, event, "--as", "qian.jianguan",
                   *AT).exit_code == 0
    shown = json.loads(cli("plan", "annual", "show", plan, "--json").output)
    assert {e["enterprise"]: e["frequency"] for e in shown["entries"]} == {
        "jinhua": 4, "xinfeng": 2}
