"""The risk list (xlsx/CSV), the four-colour map (SVG) and the notice cards (HTML), from
hand-made views: no database, each output read back the way a user's tool would read it."""

from __future__ import annotations

import csv
import io
import re
import xml.etree.ElementTree as ET
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest
from openpyxl import load_workbook

from core.errors import InvalidInput
from safeloop.reports.risk_card import render_cards
from safeloop.reports.risk_list import write_risk_list_csv, write_risk_list_xlsx
from safeloop.reports.risk_map import _label_spot, render_risk_map
from safeloop.reports.risk_views import MapArea, Measure, RiskMap, RiskView

ENT = "晋北化工有限公司"
AS_OF = date(2024, 6, 18)
SVG = "{http://www.w3.org/2000/svg}"
GREY = "#E0E0E0"


def risk(code: str, name: str, grade: str | None, *, score: float | None = None, area: str = "液氨储罐区",
         measures: list[Measure] | None = None, kind: str = "facility") -> RiskView:
    return RiskView(
        code=code, name=name, kind=kind, enterprise=ENT, unit="储运车间", area=area,
        hazard_factors=["储罐超压", "阀门泄漏"], accident_types=["中毒和窒息", "容器爆炸"],
        consequences="液氨泄漏致人员中毒。", measures=measures if measures is not None else [],
        grade=grade, method="lec" if grade else None, factors={}, score=score, control_unit="储运车间",
        responsible="王建国", contacts="13903501234", emergency_contacts=["火警 119", "急救 120"],
    )


AMMONIA = risk("FX-000001", "液氨储罐", "major", score=720, measures=[
    Measure("emergency", "立即启动喷淋，人员向上风向撤离"),
    Measure("engineering", "设置液位、压力远传及高低限报警"),
    Measure("ppe", "佩戴防毒面具"),
    Measure("management", "每 2 小时巡检一次"),
    Measure("engineering", "设置氨气泄漏检测报警仪"),
])
RISKS = [
    risk("FX-000004", "办公楼消防", "low", score=21, area="办公楼",
         measures=[Measure("training", "每半年组织一次消防疏散演练")]),
    risk("FX-000009", "新建仓库", None, area="仓库"),
    AMMONIA,
    risk("FX-000002", "槽车装卸作业", "significant", score=270, area="装卸站", kind="operation",
         measures=[Measure("management", "=HYPERLINK(\"http://x\")")]),
]


# --- risk list -------------------------------------------------------------------------------


def test_xlsx_sheets_rows_and_grade_fill(tmp_path: Path) -> None:
    path = tmp_path / "风险清单.xlsx"
    write_risk_list_xlsx(RISKS, path, enterprise=ENT, as_of=AS_OF)
    wb = load_workbook(path)
    assert wb.sheetnames == ["管控责任清单", "管控措施清单"]
    ws = wb["管控责任清单"]
    assert ws["A1"].value == f"{ENT}安全风险管控责任清单"
    assert "2024年6月18日" in ws["A2"].value
    assert [c.value for c in ws[3]] == [
        "序号", "编号", "风险点名称", "类型", "所在单位", "区域", "评价方法", "风险值", "风险等级", "颜色",
        "管控层级", "管控单位", "责任人", "联系方式"]
    first = [c.value for c in ws[4]]
    assert first[:4] == [1, "FX-000001", "液氨储罐", "设备设施/场所区域"]
    assert first[7] == 720 and isinstance(first[7], int)
    assert first[8:11] == ["重大风险", "红色", "公司级"]
    grade = ws.cell(row=4, column=9)
    assert grade.fill.fill_type == "solid"
    assert grade.fill.fgColor.rgb.endswith("E60012")
    assert grade.font.color.rgb.endswith("FFFFFF")
    # sorted by severity then code, unevaluated last
    assert [ws.cell(row=r, column=2).value for r in range(4, 8)] == [
        "FX-000001", "FX-000002", "FX-000004", "FX-000009"]
    assert ws.cell(row=5, column=9).fill.fgColor.rgb.endswith("F39800")
    last = ws.cell(row=7, column=9)
    assert last.value == "未评价" and last.fill.fill_type is None
    assert ws.cell(row=7, column=8).value is None
    assert ws.freeze_panes == "C4"
    assert ws.page_setup.orientation == "landscape"


def test_xlsx_measure_sheet_one_row_per_measure(tmp_path: Path) -> None:
    path = tmp_path / "list.xlsx"
    write_risk_list_xlsx(RISKS, path, enterprise=ENT, as_of=AS_OF)
    ws = load_workbook(path)["管控措施清单"]
    rows = [[c.value for c in row] for row in ws.iter_rows(min_row=4)]
    # 5 + 1 + 1 measures, plus one row for the risk that has none
    assert len(rows) == 8
    assert "共 7 条管控措施" in ws["A2"].value
    ammonia = [r for r in rows if r[0] == "FX-000001"]
    assert [r[5] for r in ammonia] == [
        "工程技术措施", "工程技术措施", "管理措施", "个体防护措施", "应急处置措施"]
    assert ammonia[0][2] == "储罐超压；阀门泄漏" and ammonia[0][3] == "中毒和窒息、容器爆炸"
    assert ammonia[0][7:] == ["公司级", "王建国"]
    assert rows[-1][0] == "FX-000009" and rows[-1][6] == "未制定管控措施"
    formula = ws.cell(row=4 + rows.index([r for r in rows if r[0] == "FX-000002"][0]), column=7)
    assert formula.data_type == "s"  # user text that looks like a formula stays text


def test_csv_has_bom_and_is_deterministic(tmp_path: Path) -> None:
    paths = write_risk_list_csv(RISKS, tmp_path / "风险清单.csv", enterprise=ENT, as_of=AS_OF)
    assert [p.name for p in paths] == ["风险清单-管控责任清单.csv", "风险清单-管控措施清单.csv"]
    first = [p.read_bytes() for p in paths]
    assert all(b.startswith(b"\xef\xbb\xbf") for b in first)
    again = write_risk_list_csv(list(reversed(RISKS)), tmp_path / "风险清单.csv", enterprise=ENT, as_of=AS_OF)
    assert [p.read_bytes() for p in again] == first
    rows = list(csv.reader(io.StringIO(first[0].decode("utf-8-sig"))))
    assert rows[0] == [f"{ENT}安全风险管控责任清单"]
    assert rows[2][:3] == ["序号", "编号", "风险点名称"]
    assert rows[3][:2] == ["1", "FX-000001"] and rows[3][7:10] == ["720", "重大风险", "红色"]
    assert rows[-1][1] == "FX-000009" and rows[-1][7:9] == ["", "未评价"]
    measures = list(csv.reader(io.StringIO(first[1].decode("utf-8-sig"))))
    assert len(measures) == 3 + 8


# --- four-colour map -------------------------------------------------------------------------

SQUARE = [(0.0, 0.0), (100.0, 0.0), (100.0, 80.0), (0.0, 80.0)]


def shifted(dx: float, dy: float = 0.0) -> list[tuple[float, float]]:
    return [(x + dx, y + dy) for x, y in SQUARE]


AREAS = [
    MapArea("液氨储罐区", SQUARE, [("FX-1", "储罐", "low"), ("FX-2", "装卸", "major"),
                                   ("FX-3", "泵", "general"), ("FX-4", "新", None)]),
    MapArea("办公楼", shifted(120), [("FX-5", "消防", "low")]),
    MapArea("仓库", shifted(240), [("FX-6", "未评", None)]),
    MapArea("空地", shifted(0, 100), []),
    MapArea("A&B<1>", shifted(120, 100), [("FX-7", "x", "significant")]),
]


def areas_of(svg: str) -> dict[str, ET.Element]:
    root = ET.fromstring(svg)
    found = [e for e in root.iter() if e.get("class") == "area"]
    assert all(e.tag == f"{SVG}polygon" for e in found)
    names = [e.get("data-area") for e in found]
    assert len(names) == len(set(names))
    return {e.get("data-area"): e for e in found}  # type: ignore[misc]


def texts(svg: str) -> list[str]:
    return ["".join(e.itertext()) for e in ET.fromstring(svg).iter(f"{SVG}text")]


def test_map_one_polygon_per_area_coloured_by_highest_grade() -> None:
    svg = render_risk_map(RiskMap(ENT, AS_OF, AREAS))
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("viewBox") and root.get("width") and root.get("height")
    shapes = areas_of(svg)
    assert set(shapes) == {a.name for a in AREAS}
    assert shapes["液氨储罐区"].get("fill") == "#E60012"  # mixed grades: red wins
    assert shapes["液氨储罐区"].get("data-grade") == "major"
    assert shapes["办公楼"].get("fill") == "#0068B7"
    assert shapes["A&B<1>"].get("fill") == "#F39800"
    for grey in ("仓库", "空地"):
        assert shapes[grey].get("fill") == GREY and shapes[grey].get("data-grade") == "none"
    assert len(shapes["液氨储罐区"].get("points", "").split()) == 4


def test_map_title_date_legend_and_labels() -> None:
    svg = render_risk_map(RiskMap(ENT, AS_OF, AREAS))
    shown = texts(svg)
    assert f"{ENT}安全风险四色分布图" in shown
    assert "绘制日期：2024年6月18日" in shown
    legend = " ".join(shown)
    for label in ("红色　重大风险", "橙色　较大风险", "黄色　一般风险", "蓝色　低风险", "未评价"):
        assert label in legend
    assert "液氨储罐区" in shown and "4 个风险点" in shown
    # white text on red, black on yellow/orange (STYLES ink)
    root = ET.fromstring(svg)
    label = next(e for e in root.iter(f"{SVG}text") if e.text == "液氨储罐区")
    assert label.get("fill") == "#FFFFFF"


def test_map_escapes_text_and_is_deterministic() -> None:
    m = RiskMap("测试<企业>&\"", AS_OF, AREAS)
    svg = render_risk_map(m)
    assert "A&amp;B&lt;1&gt;" in svg and "A&B<1>" not in svg
    assert "A&B<1>" in texts(svg)
    assert "测试<企业>&\"安全风险四色分布图" in texts(svg)
    assert render_risk_map(m) == svg


def test_map_without_areas_is_still_a_map() -> None:
    svg = render_risk_map(RiskMap(ENT, AS_OF, []))
    assert "未登记区域坐标" in texts(svg)
    assert areas_of(svg) == {}


@pytest.mark.parametrize("polygon", [[], [(0.0, 0.0)], [(0.0, 0.0), (1.0, 1.0)]])
def test_map_refuses_polygon_of_fewer_than_three_points(polygon: list[tuple[float, float]]) -> None:
    with pytest.raises(InvalidInput, match="配电室"):
        render_risk_map(RiskMap(ENT, AS_OF, [MapArea("配电室", polygon, [])]))


def test_map_refuses_unknown_grade() -> None:
    with pytest.raises(InvalidInput, match="FX-1"):
        render_risk_map(RiskMap(ENT, AS_OF, [MapArea("配电室", SQUARE, [("FX-1", "柜", "red")])]))


def test_label_of_u_shaped_area_is_inside_it() -> None:
    u_shape = [(0.0, 0.0), (300.0, 0.0), (300.0, 200.0), (220.0, 200.0), (220.0, 60.0), (80.0, 60.0),
               (80.0, 200.0), (0.0, 200.0)]
    (x, y), (width, height) = _label_spot(u_shape, "U形厂房", 18.0)
    assert width > 0 and height > 0
    assert 0 < y < 60  # the centroid (y ≈ 84) is in the notch; the label goes to the top bar


# --- notice cards ----------------------------------------------------------------------------


class Cards(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.cards: list[dict[str, str | None]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and a.get("class") == "card":
            self.cards.append(a)


def parse_cards(page: str) -> list[dict[str, str | None]]:
    parser = Cards()
    parser.feed(page)
    return parser.cards


def test_cards_one_per_risk_with_colour_and_texts() -> None:
    page = render_cards(RISKS, enterprise=ENT, as_of=AS_OF)
    cards = parse_cards(page)
    assert [c["data-code"] for c in cards] == ["FX-000001", "FX-000002", "FX-000004", "FX-000009"]
    assert [c["data-grade"] for c in cards] == ["major", "significant", "low", "none"]
    assert '<meta charset="utf-8">' in page and 'lang="zh-CN"' in page
    assert "@page { size: A4; margin: 12mm; }" in page and "break-after: page" in page
    first = page[page.index('data-code="FX-000001"'):page.index('data-code="FX-000002"')]
    assert "#E60012" in first and "安全风险告知卡" in first and "重大风险（红色）" in first
    assert "公司级" in first and "王建国" in first and "13903501234" in first
    assert "火警 119" in first and "急救 120" in first and "液氨泄漏致人员中毒。" in first
    groups = re.findall(r"<h3>(.+?)</h3>", first)
    assert groups == ["工程技术措施", "管理措施", "个体防护措施"]  # emergency measures have their own row
    assert first.index("应急处置措施") < first.index("立即启动喷淋")
    assert f"{ENT}" in first and "2024年6月18日" in first
    unrated = page[page.index('data-code="FX-000009"'):]
    assert "未评价" in unrated and "未制定管控措施" in unrated


def test_cards_escape_data() -> None:
    evil = risk("FX-<1>", "<script>alert(1)</script>", "general",
                measures=[Measure("management", "A&B <b>")])
    page = render_cards([evil], enterprise="厂<&>", as_of=AS_OF)
    assert "<script>" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "A&amp;B &lt;b&gt;" in page and "厂&lt;&amp;&gt;" in page
    assert [c["data-code"] for c in parse_cards(page)] == ["FX-<1>"]


def test_cards_without_risks() -> None:
    page = render_cards([], enterprise=ENT, as_of=AS_OF)
    assert parse_cards(page) == [] and "尚无风险点" in page
