"""``safeloop risk`` as a user drives it: register, evaluate, approve, then the risk list, the
four-colour map (one coloured area per area, in the colour of its highest grade) and the cards."""

from __future__ import annotations

import csv
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from safeloop.cli.main import app
from tests.conftest import DEMO_ORG

runner = CliRunner()
REGISTER = Path(__file__).resolve().parents[2] / "safeloop" / "data" / "demo_risks.yaml"
SVG = "{http://www.w3.org/2000/svg}"
EXPECTED_FILLS = {  # the demo register's areas and the colour of their highest grade
    "液氨储罐区": "#E60012", "液氨装卸站": "#F39800", "合成装置区": "#F39800", "压缩机房": "#FFE100",
    "配电室": "#FFE100", "循环水站": "#0068B7", "综合办公楼": "#0068B7", "成品仓库": "#E0E0E0",
}


@pytest.fixture
def cli(db_url: str):
    def invoke(*args: str):
        return runner.invoke(app, ["--db", db_url, *args])

    assert invoke("org", "load", str(DEMO_ORG)).exit_code == 0
    assert invoke("checklist", "load", "--shipped").exit_code == 0
    added = invoke("plan", "add", "p-tank", "--unit", "jinhua-team-tank", "--from", "2026-01-01")
    assert added.exit_code == 0
    return invoke


def test_register_grade_and_outputs(cli, tmp_path: Path):
    loaded = cli("risk", "load", str(REGISTER), "--as", "li.anquan", "--json")
    assert loaded.exit_code == 0, loaded.output
    assert json.loads(loaded.output)["evaluated"] == 8
    refused = cli("risk", "approve", "FX-000001", "--as", "li.anquan")
    assert refused.exit_code == 1 and "无权" in refused.output
    approved = cli("risk", "approve", "FX-000001", "--as", "wang.zhuren")
    assert approved.exit_code == 0 and "已审批" in approved.output
    assert "排查计划的检查表" in approved.output  # the tank team's checklist now carries it
    for n in range(2, 9):
        assert cli("risk", "approve", f"FX-00000{n}", "--as", "wang.zhuren").exit_code == 0
    listed = cli("risk", "list", "--enterprise", "jinhua", "--grade", "major", "--json")
    assert [r["code"] for r in json.loads(listed.output)] == ["FX-000001"]
    assert cli("risk", "show", "FX-000001").exit_code == 0
    shown = json.loads(cli("risk", "show", "FX-000001", "--json").output)
    assert shown["approved_grade"] == "major" and shown["control_unit_id"] is not None
    assert [h["event"] for h in shown["history"]] == ["identify", "evaluate", "approve"]

    xlsx = tmp_path / "风险清单.xlsx"
    assert cli("risk", "export", "jinhua", "--out", str(xlsx)).exit_code == 0
    book = load_workbook(xlsx)
    assert book.sheetnames == ["管控责任清单", "管控措施清单"]
    assert any(c.value == "液氨储罐" for row in book["管控责任清单"].iter_rows() for c in row)
    out = cli("risk", "export", "jinhua", "--out", str(tmp_path / "list.csv"), "--format", "csv")
    assert out.exit_code == 0, out.output
    with (tmp_path / "list-管控措施清单.csv").open(encoding="utf-8-sig") as handle:
        measures = list(csv.reader(handle))
    assert sum(1 for row in measures if "储罐液位、压力远传及高低液位报警、联锁切断有效" in row) == 1

    svg = tmp_path / "map.svg"
    assert cli("risk", "map", "jinhua", "--out", str(svg), "--as-of", "2026-11-02").exit_code == 0
    root = ET.parse(svg).getroot()
    areas = [e for e in root.iter() if e.get("class") == "area"]
    assert {a.get("data-area"): a.get("fill") for a in areas} == EXPECTED_FILLS
    assert len(areas) == len(EXPECTED_FILLS)
    text = "".join(root.itertext())
    assert "安全风险四色分布图" in text and "2026年11月2日" in text
    for label in ("重大风险", "较大风险", "一般风险", "低风险"):
        assert label in text

    cards = tmp_path / "cards.html"
    assert cli("risk", "card", "jinhua", "--out", str(cards), "--code", "FX-000001").exit_code == 0
    html = cards.read_text(encoding="utf-8")
    assert html.count('data-code="FX-') == 1 and "安全风险告知卡" in html and "吴储运" in html
    unknown = cli("risk", "card", "jinhua", "--out", str(cards), "--code", "FX-999999")
    assert unknown.exit_code == 2 and "FX-999999" in unknown.output


def test_evaluate_and_bad_input_exit_codes(cli):
    added = cli("risk", "add", "--as", "li.anquan", "--unit", "jinhua-team-a", "--name", "氨合成塔",
                "--kind", "facility", "--hazard-factor", "高温高压", "--accident", "容器爆炸",
                "--measure", "engineering:温度压力联锁投用", "--json")
    assert added.exit_code == 0, added.output
    code = json.loads(added.output)["code"]
    bad = cli("risk", "evaluate", code, "--as", "li.anquan", "--method", "lec", "-f", "L=7", "-f", "E=6",
              "-f", "C=15")
    assert bad.exit_code == 2 and "10、6、3、1、0.5、0.2、0.1" in bad.output
    ok = cli("risk", "evaluate", code, "--as", "li.anquan", "--method", "ls", "-f", "L=3", "-f", "S=5")
    assert ok.exit_code == 0 and "较大风险（橙色）" in ok.output and "厂（部门）级" in ok.output
    wrong = cli("risk", "add", "--as", "li.anquan", "--unit", "jinhua-team-a", "--name", "x",
                "--kind", "facility", "--hazard-factor", "h", "--accident", "火灾", "--measure", "luck:x")
    assert wrong.exit_code == 2 and "engineering" in wrong.output
    polygon = cli("risk", "area", "jinhua", "罐区", "--polygon", "0,0 1,1", "--as", "li.anquan")
    assert polygon.exit_code == 2 and "3 个顶点" in polygon.output
    bands = cli("risk", "bands", "--json")
    assert json.loads(bands.output)["lec"]["major"] == 320


def test_cards_as_pdf_one_page_per_card(cli, tmp_path: Path):
    """With WeasyPrint and a CJK font: one A4 page per card with a Chinese font embedded;
    without the font: refused, naming the fix, and no file written."""
    from safeloop.reports.pdf import FONT_HINT, has_cjk_font

    assert cli("risk", "load", str(REGISTER), "--as", "li.anquan").exit_code == 0
    pdf = tmp_path / "告知卡.pdf"
    result = cli("risk", "card", "jinhua", "--out", str(pdf), "--code", "FX-000001", "--code", "FX-000002")
    if not has_cjk_font():
        assert result.exit_code == 2 and FONT_HINT[:8] in result.output and not pdf.exists()
        return
    assert result.exit_code == 0, result.output
    assert "PDF 2 页" in result.output
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF-") and data.rstrip().endswith(b"%%EOF")
    assert "CJK" in result.output or "Hei" in result.output  # a Chinese font is embedded


def test_cards_pdf_without_a_chinese_font_is_refused(cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """A fontconfig that knows no fonts (a fresh server): refused with the fix, nothing written."""
    conf = tmp_path / "fonts.conf"
    conf.write_text('<?xml version="1.0"?><!DOCTYPE fontconfig SYSTEM "fonts.dtd"><fontconfig>'
                    f"<cachedir>{tmp_path / 'fc-cache'}</cachedir></fontconfig>", encoding="utf-8")
    monkeypatch.setenv("FONTCONFIG_FILE", str(conf))
    assert cli("risk", "load", str(REGISTER), "--as", "li.anquan").exit_code == 0
    pdf = tmp_path / "告知卡.pdf"
    result = cli("risk", "card", "jinhua", "--out", str(pdf))
    assert result.exit_code == 2 and "fonts-noto-cjk" in result.output and not pdf.exists()
