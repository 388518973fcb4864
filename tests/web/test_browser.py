"""One story in a real browser (Debian's chromium through Playwright) on a phone-sized viewport,
against real uvicorn on a free 127.0.0.1 port and a temporary SQLite database with the demo org:
the safety officer logs in, opens a hazard from the inbox, assigns it through the form and sees
the new state and the timeline row. No JavaScript console error on any page; screenshots are
kept in the test's tmp_path."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import uvicorn
from fastapi import FastAPI
from sqlalchemy.engine import Engine

from tests.web.conftest import PASSWORD, in_a_week, report, set_password

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed at "
                                "/usr/bin/chromium (apt-get install chromium; .ci/run does)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def served(app: FastAPI, db_url: str) -> Iterator[str]:
    if not db_url.startswith("sqlite"):
        pytest.skip("the browser story runs on SQLite only")
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_safety_officer_assigns_a_hazard_on_a_phone(served: str, engine: Engine, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    code = report(engine)
    set_password(engine, "li.anquan")
    problems: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            context = browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
            page = context.new_page()
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))

            page.goto(served + "/")
            assert page.url.startswith(served + "/login")
            page.screenshot(path=tmp_path / "login.png", full_page=True)
            page.fill("#person", "li.anquan")
            page.fill("#password", PASSWORD)
            page.click("button:has-text('登录')")
            page.wait_for_url(served + "/")
            assert page.locator("h1").inner_text().startswith("我的待办")
            page.screenshot(path=tmp_path / "inbox.png", full_page=True)
            assert_no_sideways_scroll(page)

            page.click(f"a[href='/hazard/{code}']")
            page.wait_for_url(f"{served}/hazard/{code}")
            assert page.locator("#state").inner_text() == "已上报"
            assert_no_sideways_scroll(page)
            page.click("summary:has-text('分派整改')")
            page.fill("#assign-owner", "sun.banzhang")
            page.fill("#assign-deadline", in_a_week())
            page.fill("#assign-comment", "请一周内更换压力表")
            page.click("#form-assign button[type=submit]")
            # expect() polls without eval: the pages' CSP (script-src 'self') forbids it
            expect(page.locator("#state")).to_have_text("整改中")
            row = page.locator("#timeline li").last
            assert "分派整改" in row.inner_text() and "李安全（安全管理员）" in row.inner_text()
            assert "网页" in row.inner_text() and "请一周内更换压力表" in row.inner_text()
            assert_no_sideways_scroll(page)
            page.screenshot(path=tmp_path / "hazard.png", full_page=True)
            box = page.locator("summary:has-text('提交整改')").bounding_box() if page.locator(
                "summary:has-text('提交整改')").count() else None
            assert box is None or box["height"] >= 44  # large touch targets
        finally:
            browser.close()
    assert problems == [], problems
    assert all((tmp_path / f"{n}.png").stat().st_size > 1000 for n in ("login", "inbox", "hazard"))


def assert_no_sideways_scroll(page: object) -> None:
    wide = page.evaluate("document.documentElement.scrollWidth")  # type: ignore[attr-defined]
    assert wide <= 375, f"the page is {wide}px wide at 375px"
