"""The end-to-end story in a real browser (Debian's chromium through Playwright) at 375x812, each
person in their own browser context, against real uvicorn and a SQLite database with the demo org:

an inspector fails a checklist item with a photo → the hazard it opened appears in the safety
officer's inbox → assign → the rectifier submits with a photo → the rectifier sees no accept
button, and a forged POST of accept is refused → the acceptor accepts → the auditor finds the
hazard's timeline on /audit and verifies the chain. Also: a major hazard's plan refused with the
missing parts named on the page.

Every main page is screenshotted (into ``SAFELOOP_SCREENSHOT_DIR`` when set, else tmp_path),
checked for sideways scroll at 375 px, and no page may log a JavaScript console error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.db import utcnow
from models.tables import HAZARD, INSPECTION_TASK
from safeloop import checklists, plans
from states.jobs.materialize import materialize
from states.workflows.hazard import PLAN_PARTS
from tests.web.conftest import PASSWORD, fire, in_a_week, report, set_password
from tests.web.test_browser import CHROMIUM, assert_no_sideways_scroll, served  # noqa: F401 (fixture)
from tests.web.test_report_page import png

pytestmark = pytest.mark.skipif(not CHROMIUM.exists(), reason="Debian chromium is not installed at "
                                "/usr/bin/chromium (apt-get install chromium; .ci/run does)")
REFUSED_STATUS = ("Failed to load resource: the server responded with a status of 403",
                  "Failed to load resource: the server responded with a status of 409",
                  "Failed to load resource: the server responded with a status of 422")
PEOPLE = ("sun.banzhang", "li.anquan", "zhou.weixiu", "zhao.chejian", "he.shenji", "wang.zhuren")


@pytest.fixture
def task(org: Session) -> str:
    """Today's team-a inspection task, assigned to the inspector sun.banzhang."""
    checklists.load_shipped(org)
    plans.add(org, plans.PlanSpec("team-a", "jinhua-team-a", assignee="sun.banzhang",
                                  active_from=date(2026, 1, 1)))
    materialize(org, as_of=utcnow())
    org.commit()
    code = org.connection().execute(select(INSPECTION_TASK.c.code)).scalar_one()
    org.rollback()
    return str(code)


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("SAFELOOP_SCREENSHOT_DIR") or tmp_path / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Story:
    """The browser, the server's address, where screenshots go and every console error seen."""

    def __init__(self, browser: Any, address: str, shots: Path) -> None:
        self.browser, self.served, self.shots = browser, address, shots
        self.problems: list[str] = []
        self.taken: list[str] = []

    def phone(self, person: str) -> Any:
        """A fresh phone-sized browser context with ``person`` logged in through the form."""
        context = self.browser.new_context(viewport={"width": 375, "height": 812}, locale="zh-CN")
        page = context.new_page()
        page.on("console", lambda m: self.note(person, m))
        page.on("pageerror", lambda e: self.problems.append(f"{person}: {e}"))
        page.goto(self.served + "/login")
        page.fill("#person", person)
        page.fill("#password", PASSWORD)
        page.click("button:has-text('登录')")
        page.wait_for_url(self.served + "/")
        return page

    def note(self, person: str, message: Any) -> None:
        """A console error, except the network line a refused form's 4xx answer logs: refusals
        are answered 4xx on purpose, shown inline (the story checks what they say)."""
        if message.type == "error" and not message.text.startswith(REFUSED_STATUS):
            self.problems.append(f"{person}: {message.text} ({message.location.get('url')})")

    def shot(self, page: Any, name: str) -> None:
        assert_no_sideways_scroll(page)
        # caret="initial": hiding the caret leaves style="" on every input, which htmx's settle
        # then copies with setAttribute -- an inline style the CSP refuses (a console error)
        page.screenshot(path=self.shots / f"{name}.png", full_page=True, caret="initial")
        self.taken.append(name)


@pytest.fixture
def story(served: str, shots: Path) -> Iterator[Story]:  # noqa: F811 (the imported fixture)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield Story(browser, served, shots)
        finally:
            browser.close()


def version_of(engine: Engine, code: str) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(HAZARD.c.version).where(HAZARD.c.code == code)).scalar_one())


def state_of(engine: Engine, code: str) -> str:
    with engine.connect() as conn:
        return str(conn.execute(select(HAZARD.c.state).where(HAZARD.c.code == code)).scalar_one())


def test_from_a_failed_checklist_item_to_a_verified_trail(story: Story, engine: Engine, task: str,
                                                         shots: Path) -> None:
    from playwright.sync_api import expect

    for person in PEOPLE:
        set_password(engine, person)
    base = story.served

    # the inspector: 今日排查 → the checklist, item by item (T03 fails, with a photo) → submit
    inspector = story.phone("sun.banzhang")
    story.shot(inspector, "inbox-inspector")
    inspector.click("nav a[href='/inspection/today']")
    inspector.wait_for_url(base + "/inspection/today")
    story.shot(inspector, "inspection-today")
    inspector.click(f"a[href='/inspection/{task}']")
    inspector.wait_for_url(f"{base}/inspection/{task}")
    expect(inspector.locator("#state")).to_have_text("待检查")
    story.shot(inspector, "checklist")
    codes = inspector.locator("input[name=item]").evaluate_all("els => els.map(e => e.value)")
    assert len(codes) == 12 and "T03" in codes
    box = inspector.locator(f"#item-{codes[0]} label.outcome").first.bounding_box()
    assert box is not None and box["height"] >= 44  # large touch targets
    for code in codes:
        item = inspector.locator(f"#item-{code}")
        if code == "T03":
            item.locator("input[value=fail]").check()
            item.locator("textarea[name=note]").fill("二号泵联轴器防护罩缺失")
            item.locator("input[type=file]").set_input_files(
                files=[{"name": "pump.png", "mimeType": "image/png", "buffer": png(40, 30)}])
        else:
            item.locator("input[value=pass]").check()
        item.locator("button[type=submit]").click()
        expect(inspector.locator(f"#item-{code} .saved")).to_have_text("已保存")  # swapped by htmx
    expect(inspector.locator("#state")).to_have_text("检查中")  # the first save started the task
    expect(inspector.locator("#progress")).to_have_text("已填 12 / 12 项")
    assert inspector.locator("#item-T03 img.thumb").evaluate("img => img.naturalWidth") == 40
    inspector.reload()  # the drafts are on the server
    expect(inspector.locator("#progress")).to_have_text("已填 12 / 12 项")
    expect(inspector.locator("#item-T03 textarea")).to_have_value("二号泵联轴器防护罩缺失")
    story.shot(inspector, "checklist-filled")
    inspector.click("#submit-form button[type=submit]")
    expect(inspector.locator("#state")).to_have_text("已提交")
    link = inspector.locator("#result-T03 a.hazard-link")
    hazard = link.inner_text()
    assert hazard.startswith("YH-") and link.get_attribute("href") == f"/hazard/{hazard}"
    assert inspector.locator("#result-T03 img.thumb").evaluate("img => img.naturalWidth") == 40
    story.shot(inspector, "inspection-results")

    # the safety officer: the hazard in the inbox → assign; and the task's review page
    officer = story.phone("li.anquan")
    expect(officer.locator(f"a[href='/hazard/{hazard}']")).to_be_visible()
    story.shot(officer, "inbox-officer")
    officer.click(f"a[href='/hazard/{hazard}']")
    officer.wait_for_url(f"{base}/hazard/{hazard}")
    expect(officer.locator("#state")).to_have_text("已上报")
    assert "pump.png" in officer.locator("body").inner_text()  # the item's photo is the hazard's
    officer.click("summary:has-text('分派整改')")
    officer.fill("#assign-owner", "zhou.weixiu")
    officer.fill("#assign-acceptor", "zhao.chejian")
    officer.fill("#assign-deadline", in_a_week())
    officer.fill("#assign-comment", "请三日内加装防护罩")
    officer.click("#form-assign button[type=submit]")
    expect(officer.locator("#state")).to_have_text("整改中")
    story.shot(officer, "hazard-assigned")
    officer.goto(f"{base}/inspection/{task}")
    expect(officer.locator("#result-T03 a.hazard-link")).to_have_text(hazard)
    story.shot(officer, "inspection-review")
    officer.click("summary:has-text('审核')")
    officer.click("#form-review button[type=submit]")
    expect(officer.locator("#state")).to_have_text("已审核")

    # the rectifier: submit with a photo; no accept button, and a forged accept is refused
    rectifier = story.phone("zhou.weixiu")
    rectifier.click(f"a[href='/hazard/{hazard}']")
    rectifier.wait_for_url(f"{base}/hazard/{hazard}")
    rectifier.click("summary:has-text('提交验收')")
    rectifier.fill("#submit-measures", "已加装联轴器防护罩并紧固")
    rectifier.set_input_files("#submit-photo", files=[
        {"name": "guard-fixed.png", "mimeType": "image/png", "buffer": png(32, 32)}])
    rectifier.click("#form-submit button[type=submit]")
    expect(rectifier.locator("#state")).to_have_text("待验收")
    assert "guard-fixed.png" in rectifier.locator("body").inner_text()
    thumb = rectifier.locator("ul.evidence img[alt='guard-fixed.png']")  # the hazard page's thumbnail
    assert thumb.evaluate("img => img.complete && img.naturalWidth ? img.naturalWidth : new Promise("
                          "done => { img.onload = () => done(img.naturalWidth); })") == 32
    assert rectifier.locator("summary:has-text('验收销号')").count() == 0
    story.shot(rectifier, "hazard-submitted")
    csrf = rectifier.locator("input[name=csrf]").first.get_attribute("value")
    forged = rectifier.request.post(f"{base}/hazard/{hazard}/events/accept", max_redirects=0,
                                    form={"csrf": csrf or "", "version": str(version_of(engine, hazard))})
    assert forged.status == 403 and 'role="alert"' in forged.text(), forged.text()
    assert state_of(engine, hazard) == "pending_acceptance"

    # the acceptor accepts
    acceptor = story.phone("zhao.chejian")
    acceptor.goto(f"{base}/hazard/{hazard}")
    acceptor.click("summary:has-text('验收销号')")
    acceptor.click("#form-accept button[type=submit]")
    expect(acceptor.locator("#state")).to_have_text("已销号")
    story.shot(acceptor, "hazard-accepted")

    # the auditor: the hazard's timeline on /audit, and the chain verified
    auditor = story.phone("he.shenji")
    auditor.click("#audit-link")
    auditor.wait_for_url(base + "/audit")
    auditor.fill("#entity", hazard)
    auditor.click("#audit-search button[type=submit]")
    auditor.wait_for_url(f"{base}/audit?entity={hazard}*")  # /audit itself lists the same link
    auditor.click(f"a[href='/audit/entity/hazard/{hazard}']")
    auditor.wait_for_url(f"{base}/audit/entity/hazard/{hazard}")
    timeline = auditor.locator("#audit-rows").inner_text()
    for label in ("上报隐患", "分派整改", "提交验收", "验收销号"):
        assert label in timeline, label
    story.shot(auditor, "audit-timeline")
    auditor.goto(base + "/audit")
    auditor.click("button:has-text('校验审计链')")
    expect(auditor.locator("#verdict")).to_contain_text("校验通过")
    assert int(auditor.locator("#checked-rows").inner_text().split()[0]) >= 8
    story.shot(auditor, "audit-verify")

    # a major hazard's plan, approved with parts missing: refused, the missing parts named
    major = report(engine, grade="major", title="液氯储罐区可燃气体报警器失效")
    fire(engine, major, "assign", "li.anquan", owner="zhou.weixiu", deadline=utcnow() + timedelta(days=30))
    principal = story.phone("wang.zhuren")
    principal.goto(f"{base}/hazard/{major}")
    expect(principal.locator("#state")).to_have_text("制定治理方案")
    principal.click("summary:has-text('批准治理方案')")
    principal.fill("#approve_plan-objectives", "消除报警器失效隐患")
    principal.fill("#approve_plan-methods", "更换报警器并联动切断阀")
    principal.click("#form-approve_plan button[type=submit]")
    refusal = principal.locator("#refusal")
    expect(refusal).to_contain_text("重大隐患治理方案不完整，缺少")
    for key in ("funds_and_materials", "organisation", "time_limit", "safety_and_contingency"):
        assert PLAN_PARTS[key] in refusal.inner_text()
    assert PLAN_PARTS["objectives"] not in refusal.inner_text()
    assert state_of(engine, major) == "planning"
    story.shot(principal, "plan-refused")

    assert story.problems == [], "\n".join(story.problems)
    for name in story.taken:
        assert (shots / f"{name}.png").stat().st_size > 1000, name
