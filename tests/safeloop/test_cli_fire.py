"""One way to fire from the CLI: ``safeloop <group> fire CODE EVENT --as ID [--set k=v] [--evidence F]``
for every workflow, parsed against the event's params model, with bad input refused in zh-CN
(exit 2) and nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from safeloop.cli.event_catalogue import GROUPS
from safeloop.cli.event_fields import fields_of
from safeloop.cli.main import app
from states.registry import WORKFLOWS
from tests.safeloop.test_cli import cli  # noqa: F401  (fixture)

runner = CliRunner()
REGISTER = Path(__file__).resolve().parents[2] / "safeloop" / "data" / "demo_risks.yaml"
AT = ["--as-of", "2020-09-28 10:00"]


def _report(cli, *extra: str) -> str:  # noqa: F811
    out = cli("hazard", "report", "--as", "sun.banzhang", "--unit", "jinhua-team-a", "--title",
              "压力表失效", "--category", "thing", "--json", *extra)
    assert out.exit_code == 0, out.output
    return str(json.loads(out.output)["code"])


def _audit_count(cli) -> int:  # noqa: F811
    verify = cli("audit", "verify", "--json")
    assert verify.exit_code == 0, verify.output
    return int(json.loads(verify.output)["count"])


def _stored(store: Path) -> list[Path]:
    return sorted(p for p in (store / "evidence").rglob("*") if p.is_file()) if store.exists() else []


# ---- successful generic fires ------------------------------------------------------------------


def test_hazard_generic_fire_with_set_and_evidence(cli, tmp_path: Path):  # noqa: F811
    code = _report(cli)
    assigned = cli("hazard", "fire", code, "assign", "--as", "li.anquan", "--set", "owner=sun.banzhang",
                   "--set", "deadline=2099-12-31", "--set", "funds=1200.5",
                   "--set", "measures=[/bold]更换[red]压力表")
    assert assigned.exit_code == 0, assigned.output
    assert "分派整改 完成" in assigned.output and "整改中" in assigned.output
    photo = tmp_path / "photo.jpg"
    photo.write_bytes(b"\xff\xd8 generic photo")
    submitted = cli("hazard", "fire", code, "submit", "--as", "sun.banzhang", "--set", "measures=已更换",
                    "--evidence", str(photo), "--json")
    assert submitted.exit_code == 0, submitted.output
    assert json.loads(submitted.output)["to_state"] == "pending_acceptance"
    shown = json.loads(cli("hazard", "show", code, "--json").output)
    assert shown["funds"] == "1200.50"
    assert shown["deadline"].startswith("2099-12-31 23:59")
    assign_data = shown["history"][1]["data"]
    assert assign_data["owner"] == "sun.banzhang" and assign_data["measures"] == "[/bold]更换[red]压力表"
    assert shown["history"][2]["data"]["evidence"][0]["name"] == "photo.jpg"
    assert _stored(tmp_path / "store")


def test_inspection_generic_fire(cli, db_url: str):  # noqa: F811
    from sqlmodel import Session

    from models.db import make_engine
    from states.jobs.materialize import materialize

    assert cli("checklist", "load", "--shipped").exit_code == 0
    assert cli("plan", "add", "p-team-a", "--unit", "jinhua-team-a", "--assignee", "sun.banzhang",
               "--cadence", "yearly", "--from", "2020-01-01").exit_code == 0
    engine = make_engine(db_url)
    try:
        with Session(engine, expire_on_commit=False) as session:
            materialize(session)
    finally:
        engine.dispose()
    task = json.loads(cli("inspect", "list", "--json").output)["items"][0]["code"]
    started = cli("inspect", "fire", task, "start", "--as", "sun.banzhang")
    assert started.exit_code == 0 and "检查中" in started.output, started.output
    items = [i["code"] for i in json.loads(cli("inspect", "show", task, "--json").output)["items"]]
    results = [{"item": items[0], "outcome": "fail", "note": "压力表失效"},
               *({"item": c, "outcome": "pass"} for c in items[1:])]
    no_files = cli("inspect", "fire", task, "submit", "--as", "sun.banzhang", "--evidence",
                   str(REGISTER), "--set", f"results={json.dumps(results, ensure_ascii=False)}")
    assert no_files.exit_code == 2 and "不接受证据文件" in no_files.output
    submitted = cli("inspect", "fire", task, "submit", "--as", "sun.banzhang",
                    "--set", f"results={json.dumps(results, ensure_ascii=False)}")
    assert submitted.exit_code == 0, submitted.output
    hazards = json.loads(cli("hazard", "list", "--json").output)
    assert hazards["total"] == 1  # the failed item opened a hazard, as `inspect submit` does
    shown = json.loads(cli("inspect", "show", task, "--json").output)
    assert shown["state"] == "submitted"


def test_risk_generic_fire_lists_json_and_resync(cli):  # noqa: F811
    assert cli("risk", "load", str(REGISTER), "--as", "li.anquan").exit_code == 0
    approved = cli("risk", "fire", "FX-000001", "approve", "--as", "wang.zhuren")
    assert approved.exit_code == 0 and "已审批" in approved.output, approved.output
    changed = cli("risk", "fire", "FX-000001", "report_change", "--as", "li.anquan",
                  "--set", "trigger=accident", "--reason", "压缩机房泄漏着火")
    assert changed.exit_code == 0, changed.output
    revised = cli("risk", "fire", "FX-000001", "revise", "--as", "li.anquan",
                  "--set", "hazard_factors=高温", "--set", "hazard_factors=高压",
                  "--set", 'measures=[{"kind": "engineering", "text": "联锁投用"}]',
                  "--set", "emergency_contacts=[\"0351-1234567\"]")
    assert revised.exit_code == 0, revised.output
    evaluated = cli("risk", "fire", "FX-000001", "evaluate", "--as", "li.anquan",
                    "--set", "method=lec", "--set", 'factors={"L": 3, "E": 6, "C": 15}')
    assert evaluated.exit_code == 0, evaluated.output
    shown = json.loads(cli("risk", "show", "FX-000001", "--json").output)
    assert shown["hazard_factors"] == ["高温", "高压"]
    assert shown["emergency_contacts"] == ["0351-1234567"]
    assert shown["score"] == 270 and shown["state"] == "evaluated"
    bad_method = cli("risk", "fire", "FX-000001", "evaluate", "--as", "li.anquan",
                     "--set", "method=abc", "--set", 'factors={"L": 3}')
    assert bad_method.exit_code == 2 and "参数 method" in bad_method.output
    assert "lec" in bad_method.output


def test_supervision_generic_fire_with_evidence(cli, tmp_path: Path):  # noqa: F811
    made = cli("order", "create", "--as", "qian.jianguan", "--unit", "xinfeng-plant",
               "--reason", "焊接车间除尘系统失效", "--json", *AT)
    order = json.loads(made.output)["code"]
    assert cli("order", "fire", order, "start_rectification", "--as", "zheng.changzhang",
               *AT).exit_code == 0
    report = tmp_path / "整改报告.pdf"
    report.write_bytes(b"%PDF-1.4 rectification report")
    requested = cli("order", "fire", order, "request_resumption", "--as", "zheng.changzhang",
                    "--evidence", str(report), "--set", "summary=除尘系统已更换", *AT)
    assert requested.exit_code == 0, requested.output
    shown = json.loads(cli("order", "list", "--json").output)[0]
    assert shown["state"] == "resumption_requested"
    data = json.loads(cli("audit", "show", order, "--json").output)[-1]["data"]
    assert data["report"][0]["name"] == "整改报告.pdf" and data["summary"] == "除尘系统已更换"
    # the same files may be named by their field with --set key=file
    again = cli("order", "fire", order, "reject_resumption", "--as", "qian.jianguan",
                "--reason", "粉尘浓度仍超标", *AT)
    assert again.exit_code == 0, again.output
    by_set = cli("order", "fire", order, "request_resumption", "--as", "zheng.changzhang",
                 "--set", f"report={report}", *AT)
    assert by_set.exit_code == 0, by_set.output


def test_listing_generic_fire_bool_and_computed(cli):  # noqa: F811
    code = _report(cli, "--grade", "major", *AT)
    assert cli("hazard", "fire", code, "assign", "--as", "li.anquan", "--owner", "sun.banzhang",
               "--deadline", "2020-12-31", *AT).exit_code == 0
    made = cli("listing", "propose", code, "--as", "qian.jianguan", "--department", "edz-yjj",
               "--json", *AT)
    assert made.exit_code == 0, made.output
    listing = json.loads(made.output)["code"]
    forged = cli("listing", "fire", listing, "list", "--as", "qian.jianguan",
                 "--set", "deadline=2021-03-31", "--set", "file_due=2030-01-01", *AT)
    assert forged.exit_code == 2 and "由系统计算" in forged.output, forged.output
    listed = cli("listing", "fire", listing, "list", "--as", "qian.jianguan",
                 "--set", "deadline=2021-03-31", "--set", "progress_every_days=15", *AT)
    assert listed.exit_code == 0, listed.output
    not_bool = cli("listing", "fire", listing, "decide_extension", "--as", "qian.jianguan",
                   "--set", "approve=maybe", *AT)
    assert not_bool.exit_code == 2
    assert "参数 approve" in not_bool.output and "是/否" in not_bool.output


# ---- bad input: a clear zh-CN message, exit 2, nothing changed ----------------------------------

BAD = [  # (arguments after CODE, what the message must say)
    (["fly", "--as", "li.anquan"], ["未知操作「fly」", "当前状态为「已上报」", "分派整改(assign)"]),
    (["assign", "--as", "li.anquan", "--set", "colour=red"],
     ["没有参数「colour」", "可用参数：owner、deadline、acceptor、measures、funds"]),
    (["accept", "--as", "li.anquan", "--set", "x=1"], ["没有参数「x」", "此操作不接受参数"]),
    (["escalate", "--as", "li.anquan", "--set", "level=high"],
     ["--set level 的值「high」不是整数", "参数 level 应为整数"]),
    (["regrade", "--as", "li.anquan", "--reason", "r", "--set", "grade=huge"],
     ["「huge」不是可选值", "general（一般隐患）、major（重大隐患）"]),
    (["assign", "--as", "li.anquan", "--set", "owner=sun.banzhang", "--set", "deadline=next week"],
     ["--set deadline「next week」格式不对", "参数 deadline 应为日期时间"]),
    (["assign", "--as", "li.anquan", "--set", "owner=sun.banzhang", "--set", "deadline=2099-12-31",
      "--set", "funds=many"], ["--set funds「many」应为数字", "参数 funds 应为金额"]),
    (["assign", "--as", "li.anquan", "--set", "owner"], ["--set 应为 键=值，收到「owner」"]),
    (["assign", "--as", "li.anquan", "--set", "=x"], ["--set 应为 键=值"]),
    (["assign", "--as", "li.anquan", "--set", "owner=a", "--set", "owner=b"],
     ["参数 owner 给出了两次（--set owner 与 --set owner）"]),
    (["assign", "--as", "li.anquan", "--owner", "a", "--set", "owner=b"],
     ["参数 owner 给出了两次（--owner 与 --set owner）"]),
    (["assign", "--as", "li.anquan", "--set", "owner=sun.banzhang", "--set", "deadline=2099-12-31",
      "--set", "measures=" + "长" * 100_000], ["--set measures 的值过长（100000 个字符，最多 4000 个）"]),
    (["assign", "--as", "li.anquan", "--set", "[/red]x[bold]=1"], ["没有参数「[/red]x[bold]」"]),
    (["accept", "--as", "li.anquan", "--evidence", str(REGISTER)], ["不接受证据文件（--evidence）"]),
    (["cancel", "--as", "li.anquan", "--set", "owner=a", "--evidence", str(REGISTER)],
     ["没有参数「owner」"]),
]


@pytest.mark.parametrize(("args", "expected"), BAD, ids=[" ".join(a)[:50] for a, _ in BAD])
def test_bad_input_refused_in_chinese(cli, tmp_path: Path, args: list[str],  # noqa: F811
                                      expected: list[str]):
    code = _report(cli)
    before = _audit_count(cli)
    result = cli("hazard", "fire", code, *args)
    assert result.exit_code == 2, result.output
    for text in expected:
        assert text in result.output, result.output
    assert result.output.startswith("错误："), result.output
    assert "Traceback" not in result.output and len(result.output) < 3000
    assert _audit_count(cli) == before
    shown = json.loads(cli("hazard", "show", code, "--json").output)
    assert shown["state"] == "reported" and shown["version"] == 1
    assert _stored(tmp_path / "store") == []


def test_unknown_event_without_the_entity_names_every_event(cli):  # noqa: F811
    result = cli("listing", "fire", "GP-999999", "fly", "--as", "qian.jianguan")
    assert result.exit_code == 2
    assert "未知操作「fly」，可用操作：挂牌(list)" in result.output, result.output


def test_refused_evidence_is_not_kept(cli, tmp_path: Path):  # noqa: F811
    """Refused by the engine after the file was copied: the copy goes with the rollback."""
    code = _report(cli)
    photo = tmp_path / "p.jpg"
    photo.write_bytes(b"\xff\xd8 refused")
    refused = cli("hazard", "fire", code, "fix_on_spot", "--as", "qian.jianguan",
                  "--evidence", str(photo), "--set", "measures=已紧固")
    assert refused.exit_code == 1 and "无权" in refused.output, refused.output
    over = cli("hazard", "fire", code, "escalate", "--as", "wang.zhuren", "--set", "level=9")
    assert over.exit_code == 2 and "level" in over.output
    assert _stored(tmp_path / "store") == []
    done = cli("hazard", "fire", code, "fix_on_spot", "--as", "sun.banzhang",
               "--set", f"evidence={photo}", "--set", "measures=已紧固")
    assert done.exit_code == 0, done.output
    assert len(_stored(tmp_path / "store")) == 1


# ---- discovery -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(WORKFLOWS))
def test_every_workflow_has_a_fire_that_lists_its_events(name: str):
    workflow = WORKFLOWS[name]
    shown = runner.invoke(app, [*GROUPS[name].split(), "fire", "--help"], prog_name="safeloop")
    assert shown.exit_code == 0, shown.output
    for rule in workflow.events.values():
        assert f"{rule.name}  {rule.label}" in shown.output, (rule.name, shown.output)
    assert "角色：" in shown.output
    listed = runner.invoke(app, [*GROUPS[name].split(), "events", "--json"])
    assert listed.exit_code == 0, listed.output
    assert [e["event"] for e in json.loads(listed.output)] == list(workflow.events)


def test_fire_help_shows_fields_in_chinese_and_one_event():
    shown = runner.invoke(app, ["hazard", "fire", "--help"])
    text = shown.output
    assert "assign  分派整改" in text and "主要负责人、单位负责人、安全管理员" in text
    assert "owner" in text and "必填" in text and "整改责任人编号" in text
    assert "cancel  撤销（误报）  [须填写原因 --reason]" in text
    one = runner.invoke(app, ["hazard", "fire", "YH-000001", "regrade", "--as", "x", "--help"])
    assert one.exit_code == 0
    assert "regrade  变更等级" in one.output and "assign  分派整改" not in one.output
    assert "general（一般隐患）" in one.output
    by_name = runner.invoke(app, ["listing", "fire", "request_delisting", "--help"])
    assert "evaluation" in by_name.output and "评估报告" in by_name.output
    assert "list  挂牌" not in by_name.output


def test_events_catalogue_and_now(cli):  # noqa: F811
    catalogue = json.loads(cli("risk", "events", "--json").output)
    evaluate = next(e for e in catalogue if e["event"] == "evaluate")
    assert [f["name"] for f in evaluate["fields"]] == ["method", "factors", "note"]  # computed left out
    assert evaluate["fields"][0]["required"] and "lec" in evaluate["fields"][0]["description"]
    code = _report(cli)
    no_actor = cli("hazard", "events", code)
    assert no_actor.exit_code == 2 and "--as" in no_actor.output
    now = json.loads(cli("hazard", "events", code, "--as", "li.anquan", "--json").output)
    assert "assign" in {e["event"] for e in now}


def test_the_cli_shows_the_models_descriptions() -> None:
    """The CLI's fields are the model's, with the model's words (no second list to drift)."""
    checked = 0
    for workflow in WORKFLOWS.values():
        for rule in workflow.events.values():
            for name, spec in fields_of(rule).items():
                assert rule.params is not None and name not in rule.computed
                assert spec.description == rule.params.model_fields[name].description
                checked += 1
    assert checked > 50
