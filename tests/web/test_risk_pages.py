"""The risk pages through httpx on a real database: the four-colour map inline (our SVG, names
escaped, no inline style for the CSP), the risk list as an .xlsx that openpyxl opens with the
right rows for the reader's scope, the notice cards in the page and as a download -- and another
enterprise's or jurisdiction's address answers 404."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy.engine import Engine
from sqlmodel import Session

from safeloop import risks
from safeloop.reports.risk_list import DUTY_SHEET, MEASURE_SHEET
from safeloop.web.risk import XLSX
from states import engine as state_engine
from states.registry import WORKFLOWS
from tests.web.conftest import signed_in
from tests.web.test_regulator_pages import other_jurisdiction

RISK = WORKFLOWS["risk"]
EVIL = '<img src=x onerror="alert(1)">'
AREA = "罐区<script>alert('area')</script>"
CODE = re.compile(r"^FX-\d{6}$")


def point(unit: str, name: str, area: str | None = None) -> dict:
    return {"unit": unit, "name": name, "kind": "facility", "hazard_factors": ["液氨泄漏"],
            "accident_types": ["中毒和窒息"], "consequences": "人员中毒",
            "measures": [{"kind": "engineering", "text": "氨气泄漏报警仪完好"},
                         {"kind": "emergency", "text": "启动应急预案"}],
            "emergency_contacts": ["急救 120"], **({"area": area} if area else {})}


@pytest.fixture
def registered(engine: Engine, org: Session) -> dict[str, str]:
    """jinhua: a graded point with markup in its name in an area with markup in its name, an
    unrated point in team-a; xinfeng: one point. Codes by role."""
    with Session(engine, expire_on_commit=False) as s:
        risks.set_area(s, "jinhua", AREA, [[0, 0], [120, 0], [120, 80], [0, 80]], actor="wang.zhuren")
        risks.set_area(s, "jinhua", "合成区", [[130, 0], [220, 0], [220, 80], [130, 80]], actor="wang.zhuren")
        tank = state_engine.create(s, RISK, actor="li.anquan",
                                   data=point("jinhua-team-tank", f"液氨储罐{EVIL}", AREA)).code
        state_engine.fire(s, RISK, tank, "evaluate", actor="li.anquan",
                          data={"method": "lec", "factors": {"L": 6, "E": 6, "C": 40}})
        state_engine.fire(s, RISK, tank, "approve", actor="wang.zhuren")
        team = state_engine.create(s, RISK, actor="li.anquan",
                                   data=point("jinhua-team-a", "合成塔", "合成区")).code
        weld = state_engine.create(s, RISK, actor="chen.anyuan",
                                   data=point("xinfeng-team-weld", "焊接烟尘")).code
    return {"tank": tank, "team": team, "weld": weld}


def codes_in(sheet) -> list[str]:  # noqa: ANN001 - an openpyxl worksheet
    return [str(c.value) for row in sheet.iter_rows() for c in row
            if isinstance(c.value, str) and CODE.match(c.value)]


def test_the_map_list_and_cards_escape_markup(client: TestClient, engine: Engine,
                                              registered: dict[str, str]) -> None:
    signed_in(client, engine, "wang.zhuren")
    assert client.get("/risks").headers["location"] == "/risks/jinhua"  # his one enterprise
    page = client.get("/risks/jinhua")
    assert page.status_code == 200
    html = page.text
    svg = html[html.index("<svg"):html.index("</svg>")]
    assert 'class="area"' in svg and 'data-grade="' in svg
    assert "<script" not in html.split("</head>")[1] and "<img" not in html
    assert "&lt;script&gt;alert(" in svg and "&lt;img src=x" in svg  # the renderer escaped them
    assert "<?xml" not in html and "<style>" not in html  # CSP: no inline style element
    assert "&lt;img src=x onerror=&#34;alert(1)&#34;&gt;" in html or "&lt;img src=x onerror=&quot;" in html
    assert f'id="card-{registered["tank"]}"' in html and f'id="card-{registered["team"]}"' in html
    assert registered["weld"] not in html  # another enterprise's point
    graded = rf'<li class="risk-card grade-(major|significant|general|low)" id="card-{registered["tank"]}"'
    assert re.search(graded, html)
    assert f'<li class="risk-card grade-none" id="card-{registered["team"]}"' in html
    assert "启动应急预案" in html and "急救 120" in html


def test_the_excel_download_opens_with_the_right_rows(client: TestClient, engine: Engine,
                                                      registered: dict[str, str]) -> None:
    signed_in(client, engine, "wang.zhuren")
    answer = client.get("/risks/jinhua/list.xlsx")
    assert answer.status_code == 200 and answer.headers["content-type"] == XLSX
    assert answer.headers["content-disposition"].startswith("attachment;")
    book = load_workbook(io.BytesIO(answer.content))
    assert book.sheetnames == [DUTY_SHEET, MEASURE_SHEET]
    assert sorted(codes_in(book[DUTY_SHEET])) == sorted([registered["tank"], registered["team"]])
    assert sorted(codes_in(book[MEASURE_SHEET])) == sorted([registered["tank"], registered["team"]] * 2)
    names = [c.value for row in book[DUTY_SHEET].iter_rows() for c in row]
    assert f"液氨储罐{EVIL}" in names  # a cell holds text as typed; Excel does not run markup
    client.cookies.clear()
    signed_in(client, engine, "sun.banzhang")  # team-a only: his one point
    book = load_workbook(io.BytesIO(client.get("/risks/jinhua/list.xlsx").content))
    assert codes_in(book[DUTY_SHEET]) == [registered["team"]]


def test_cards_download(client: TestClient, engine: Engine, registered: dict[str, str]) -> None:
    signed_in(client, engine, "qian.jianguan")
    answer = client.get("/risks/xinfeng/cards.html")
    assert answer.status_code == 200 and answer.headers["content-disposition"].startswith("attachment;")
    assert registered["weld"] in answer.text and registered["tank"] not in answer.text
    jinhua = client.get("/risks/jinhua/cards.html").text
    assert "&lt;img src=x" in jinhua and "<img src=x" not in jinhua


def test_other_enterprises_and_jurisdictions_get_404(client: TestClient, engine: Engine,
                                                     registered: dict[str, str], tmp_path: Path) -> None:
    signed_in(client, engine, "wang.zhuren")
    for path in ("/risks/xinfeng", "/risks/xinfeng/list.xlsx", "/risks/xinfeng/cards.html",
                 "/risks/no-such-enterprise"):
        answer = client.get(path)
        assert answer.status_code == 404, path
        assert "焊接烟尘" not in answer.text
    other_jurisdiction(engine, tmp_path)
    client.cookies.clear()
    signed_in(client, engine, "zhou.datong")
    assert client.get("/risks/jinhua").status_code == 404
    assert client.get("/risks/jinhua/list.xlsx").status_code == 404
    assert "山西晋华" not in client.get("/risks").text
