"""A regulator's story in a real browser (Debian's chromium through Playwright, 375x812), against
real uvicorn on a temporary SQLite database with the demo org: the regulator proposes a major
hazard from the 监管 page, lists it with a deadline, sees its duty clocks, and -- once the
enterprise has rectified and asked -- delists it; an enterprise user of another enterprise who
opens the copied addresses gets 404. No JavaScript console error, no sideways scroll; screenshots
go to ``SAFELOOP_SCREENSHOT_DIR`` when set, else the test's tmp_path."""

from __future__ import annotations

import os
import re
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from states import engine as state_engine
from states.registry import WORKFLOWS
from tests.web.conftest import PASSWORD, in_a_week, set_password
from tests.web.test_browser import CHROMIUM, assert_no_sideways_scroll, pytestmark, served  # noqa: F401
from tests.web.test_regulator_pages import REPORT, major_hazard

EXPECTED_STATUS = re.compile(r"^Failed to load resource: the server responded with a status of 40[34]")


def log_in(page: object, base: str, person: str) -> None:
    page.goto(base + "/login")  # type: ignore[attr-defined]
    page.fill("#person", person)  # type: ignore[attr-defined]
    page.fill("#password", PASSWORD)  # type: ignore[attr-defined]
    page.click("button:has-text('登录')")  # type: ignore[attr-defined]
    page.wait_for_url(base + "/")  # type: ignore[attr-defined]


def test_a_regulator_lists_and_delists_on_a_phone(served: str, engine: Engine,  # noqa: F811
                                                  tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = Path(os.environ.get("SAFELOOP_SCREENSHOT_DIR") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    hazard = major_hazard(engine)
    for person in ("qian.jianguan", "zheng.changzhang"):
        set_password(engine, person)
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            context = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
            page = context.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            log_in(page, served, "qian.jianguan")

            page.goto(served + "/regulator")
            assert page.locator("h1").inner_text() == "监管"
            assert_no_sideways_scroll(page)
            page.screenshot(path=shots / "regulator.png", full_page=True)
            page.click(f"#propose-{hazard}")
            expect(page.locator("#state")).to_have_text("拟挂牌")
            found = re.search(r"GP-\d{6}", page.locator("h1").inner_text())
            assert found
            listing = found.group(0)
            page.locator("details:has(#form-list) > summary").click()
            page.fill("#list-deadline", in_a_week())
            page.fill("#list-comment", "限期整改，按期报送进展")
            page.click("#form-list button[type=submit]")
            expect(page.locator("#state")).to_have_text("挂牌督办中")
            assert_no_sideways_scroll(page)
            page.screenshot(path=shots / "listed.png", full_page=True)

            page.goto(served + "/regulator")
            clocks = page.locator(f"#listing-{listing} table.clocks")
            expect(clocks).to_contain_text("报备")
            assert "个工作日" in clocks.inner_text() and "公示" in clocks.inner_text()
            assert_no_sideways_scroll(page)
            page.screenshot(path=shots / "clocks.png", full_page=True)

            with Session(engine, expire_on_commit=False) as session:  # the enterprise's part
                state_engine.fire(session, WORKFLOWS["hazard"], hazard, "submit", actor="wu.chuyun")
                state_engine.fire(session, WORKFLOWS["hazard"], hazard, "accept", actor="wang.zhuren")
                state_engine.fire(session, WORKFLOWS["listing"], listing, "request_delisting",
                                  actor="wang.zhuren", data={"evaluation": REPORT})
            page.goto(served + "/regulator")
            page.click(f"#listing-{listing} a:has-text('核查摘牌销号')")
            page.wait_for_url(re.compile(rf".*/listing/{listing}.*"))
            expect(page.locator("#state")).to_have_text("销号核查中")
            page.locator("details:has(#form-delist) > summary").click()
            page.fill("#delist-comment", "现场核查合格")
            page.click("#form-delist button[type=submit]")
            expect(page.locator("#state")).to_have_text("已摘牌销号")
            assert "核查通过摘牌销号" in page.locator("#timeline").inner_text()
            page.screenshot(path=shots / "delisted.png", full_page=True)

            page.goto(served + "/dashboard")
            expect(page.locator("#figures")).to_contain_text("在办隐患")
            assert_no_sideways_scroll(page)
            page.screenshot(path=shots / "dashboard.png", full_page=True)
            context.close()

            other = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
            page = other.new_page()
            # the browser logs the expected 404/403 answers themselves; anything else is a problem
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" and
                    not EXPECTED_STATUS.search(m.text) else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            log_in(page, served, "zheng.changzhang")  # principal of xinfeng, not jinhua
            for path in (f"/listing/{listing}", f"/hazard/{hazard}"):
                answer = page.goto(served + path)
                assert answer is not None and answer.status == 404, path
                assert page.locator("h1").inner_text() == "未找到"
                assert_no_sideways_scroll(page)
            page.screenshot(path=shots / "not-found.png", full_page=True)
            assert page.goto(served + "/regulator").status == 403  # type: ignore[union-attr]
        finally:
            browser.close()
    assert problems == [], problems
    for name in ("regulator", "listed", "clocks", "delisted", "dashboard", "not-found"):
        assert (shots / f"{name}.png").stat().st_size > 1000
