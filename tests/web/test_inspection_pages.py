"""Inspection on a phone through the pages (httpx, real database, real engine): a checklist saved
item by item as drafts (the first save starts the task through the engine), submitted once, failed
items opening hazards shown with their links, the reviewer's review and return; drafts scoped to
the task's assignee, photos checked as on /hazard/new, CSRF, an oversized note and markup."""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from models.db import utcnow
from models.tables import AUDIT_ENTRY, HAZARD, INSPECTION_DRAFT, INSPECTION_TASK
from safeloop import checklists, plans
from safeloop.web.pages import CSRF_REFUSED
from states.jobs.materialize import materialize
from tests.web.conftest import VERSION, counts, csrf_of, signed_in
from tests.web.test_report_page import EXE, png, stored_files

GBK_TEXT = "现场检查记录：一切正常。".encode("gbk") * 20
PDF = b"%PDF-1.4\n" + b"0" * 100


@pytest.fixture
def task(org: Session) -> str:
    """Today's team-a task (assigned to sun.banzhang), and one of the other enterprise's."""
    checklists.load_shipped(org)
    start = date(2026, 1, 1)
    plans.add(org, plans.PlanSpec("team-a", "jinhua-team-a", assignee="sun.banzhang", active_from=start))
    plans.add(org, plans.PlanSpec("weld", "xinfeng-team-weld", assignee="feng.hanjie", active_from=start))
    materialize(org, as_of=utcnow())
    org.commit()
    code = org.connection().execute(select(INSPECTION_TASK.c.code).where(
        INSPECTION_TASK.c.code.like("team-a/%"))).scalar_one()
    org.rollback()
    return str(code)


def items_of(html: str) -> list[str]:
    import re

    return re.findall(r'name="item" value="([^"]+)"', html)


def save(client: TestClient, csrf: str, code: str, item: str, outcome: str = "pass", note: str = "",
         photo: tuple[str, bytes, str] | None = None, **headers: str) -> Any:
    data = {"csrf": csrf, "task": code, "item": item, "outcome": outcome, "note": note}
    return client.post("/inspection/item", data=data, files={"photo": photo} if photo else None,
                       headers=headers or None)


def task_row(engine: Engine, code: str) -> dict[str, Any]:
    with engine.connect() as conn:
        found = conn.execute(select(INSPECTION_TASK).where(INSPECTION_TASK.c.code == code))
        return dict(found.mappings().one())


def submit(client: TestClient, code: str, page: str, version: str | None = None) -> Any:
    """Post the page's submit form (its CSRF token and, unless given, its version)."""
    shown = VERSION.search(page)
    assert shown or version
    return client.post(f"/inspection/{code}/submit",
                       data={"csrf": csrf_of(page), "version": version or shown.group(1)})  # type: ignore[union-attr]


def trail(engine: Engine, code: str) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(select(AUDIT_ENTRY.c.event).where(
            AUDIT_ENTRY.c.entity_type == "inspection", AUDIT_ENTRY.c.entity_code == code)
            .order_by(AUDIT_ENTRY.c.seq)).scalars())


def fill_all(client: TestClient, code: str, fails: dict[str, str] | None = None,
             photo: tuple[str, bytes, str] | None = None) -> str:
    """Every item saved (those in ``fails`` as failed, with the photo); the page after."""
    page = client.get(f"/inspection/{code}").text
    csrf = csrf_of(page)
    for item in items_of(page):
        failed = item in (fails or {})
        answer = save(client, csrf, code, item, "fail" if failed else "pass",
                      (fails or {}).get(item, ""), photo if failed else None)
        assert answer.status_code == 303, answer.text
    return client.get(f"/inspection/{code}").text


def test_today_lists_the_task_and_drafts_survive_a_reload(client: TestClient, engine: Engine,
                                                          task: str) -> None:
    signed_in(client, engine, "sun.banzhang")
    inbox = client.get("/").text
    assert 'href="/inspection/today"' in inbox and f'href="/inspection/{task}"' in inbox
    today = client.get("/inspection/today")
    assert today.status_code == 200 and f'href="/inspection/{task}"' in today.text
    assert "weld/" not in today.text  # the other enterprise's task is not his
    page = client.get(f"/inspection/{task}")
    assert page.status_code == 200 and "待检查" in page.text and "已填 0 / 12 项" in page.text
    assert 'capture="environment"' in page.text and "合格" in page.text and "不适用" in page.text
    csrf = csrf_of(page.text)
    first = save(client, csrf, task, "T01", "pass", "交接记录齐全")
    assert first.status_code == 303 and first.headers["location"] == f"/inspection/{task}#item-T01"
    assert task_row(engine, task)["state"] == "in_progress"  # the first save started the task
    again = save(client, csrf, task, "T01", "na", "今日无交接")  # overwritten, not added
    assert again.status_code == 303
    fragment = save(client, csrf, task, "T02", "pass", "", **{"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text and "已保存" in fragment.text
    assert 'id="item-T02"' in fragment.text and 'hx-swap-oob="true">已填 2 / 12 项' in fragment.text
    version = VERSION.search(fragment.text)  # the submit form's version, updated out of band
    assert version and version.group(1) == str(task_row(engine, task)["version"])
    reloaded = client.get(f"/inspection/{task}").text
    assert "已填 2 / 12 项" in reloaded and "今日无交接" in reloaded and "检查中" in reloaded
    assert 'value="na" checked' in reloaded
    assert trail(engine, task) == ["start"]  # drafts are no facts in the trail; start once
    with engine.connect() as conn:
        drafts = conn.execute(select(INSPECTION_DRAFT.c.item, INSPECTION_DRAFT.c.outcome)
                              .order_by(INSPECTION_DRAFT.c.item)).all()
        start = conn.execute(select(AUDIT_ENTRY.c.channel, AUDIT_ENTRY.c.actor).where(
            AUDIT_ENTRY.c.event == "start")).one()
    assert [tuple(d) for d in drafts] == [("T01", "na"), ("T02", "pass")]
    assert tuple(start) == ("web", "sun.banzhang")


def test_drafts_are_scoped_to_the_tasks_assignee(client: TestClient, engine: Engine, task: str) -> None:
    signed_in(client, engine, "feng.hanjie")  # another enterprise's inspector
    assert client.get(f"/inspection/{task}").status_code == 404
    csrf = csrf_of(client.get("/inspection/today").text)
    before = counts(engine)
    answer = save(client, csrf, task, "T01", "fail", "篡改", ("a.png", png(), "image/png"))
    assert answer.status_code == 404 and "不存在" in answer.text
    assert counts(engine) == before
    client.cookies.clear()
    signed_in(client, engine, "li.anquan")  # may see and review it, but it is assigned to another
    page = client.get(f"/inspection/{task}")
    assert page.status_code == 200 and 'action="/inspection/item"' not in page.text
    before = counts(engine)
    answer = save(client, csrf_of(page.text), task, "T01", "pass", photo=("a.png", png(), "image/png"))
    assert answer.status_code == 403 and "已指定检查人" in answer.text
    assert counts(engine) == before and task_row(engine, task)["state"] == "scheduled"
    client.cookies.clear()
    signed_in(client, engine, "he.shenji")  # an auditor looks, and writes nothing
    page = client.get(f"/inspection/{task}")
    assert page.status_code == 200 and 'action="/inspection/item"' not in page.text
    before = counts(engine)
    answer = save(client, csrf_of(page.text), task, "T01", "pass")
    assert answer.status_code == 403 and "只读" in answer.text and counts(engine) == before


def test_submit_once_and_each_failed_item_shows_its_hazard(client: TestClient, engine: Engine,
                                                           app: FastAPI, task: str) -> None:
    signed_in(client, engine, "sun.banzhang")
    page = client.get(f"/inspection/{task}").text
    save(client, csrf_of(page), task, "T01")
    early = client.post(f"/inspection/{task}/submit",
                        data={"csrf": csrf_of(page), "version": str(task_row(engine, task)["version"])})
    assert early.status_code == 403 and "检查表还有 11 项未填写" in early.text  # the engine's guard
    image = png(3, 3)
    page = fill_all(client, task, {"T03": "二号泵联轴器防护罩缺失"}, ("pump.png", image, "image/png"))
    assert "已填 12 / 12 项" in page and 'id="submit-form"' in page
    done = submit(client, task, page)
    assert done.status_code == 303 and done.headers["location"] == f"/inspection/{task}"
    with engine.connect() as conn:
        opened = select(HAZARD).where(HAZARD.c.inspection_task_id == task_row(engine, task)["id"])
        hazard = conn.execute(opened).mappings().one()
    assert hazard["checklist_item"] == "T03" and hazard["description"] == "二号泵联轴器防护罩缺失"
    shown = client.get(f"/inspection/{task}").text
    assert "已提交" in shown and f'href="/hazard/{hazard["code"]}"' in shown and 'id="result-T03"' in shown
    assert 'action="/inspection/item"' not in shown  # no more editing
    digest = hashlib.sha256(image).hexdigest()
    assert f"/photos/{digest}" in shown
    photo = client.get(f"/inspection/{task}/photos/{digest}")
    assert photo.status_code == 200 and photo.content == image
    assert photo.headers["content-type"] == "image/png"
    assert client.get(f"/inspection/{task}/photos/{'0' * 64}").status_code == 404
    assert digest[:12] in client.get(f"/hazard/{hazard['code']}").text  # the photo went with the hazard
    before = counts(engine)
    current = str(task_row(engine, task)["version"])
    twice = submit(client, task, page, current)
    assert twice.status_code == 403 and "当前状态为「已提交」" in twice.text
    assert "不能执行「提交检查结果」" in twice.text  # the engine's own message
    stale = submit(client, task, page)  # the version the filled page showed
    assert stale.status_code == 409 and "已被他人修改" in stale.text and "重新加载" in stale.text
    late_draft = save(client, csrf_of(page), task, "T01", "fail", "改口")
    assert late_draft.status_code == 403 and "不能再修改" in late_draft.text
    assert counts(engine) == before and trail(engine, task) == ["start", "submit"]


def test_reviewer_returns_with_a_reason_then_reviews(client: TestClient, engine: Engine, task: str) -> None:
    signed_in(client, engine, "sun.banzhang")
    page = fill_all(client, task)
    assert submit(client, task, page).status_code == 303
    mine = client.get(f"/inspection/{task}").text
    assert "确认审核" not in mine  # the inspector does not review his own task
    client.cookies.clear()
    signed_in(client, engine, "li.anquan")
    review = client.get(f"/inspection/{task}")
    assert review.status_code == 200 and 'id="form-review"' in review.text
    assert 'id="form-return_task"' in review.text
    assert 'id="result-T01"' in review.text and "合格" in review.text
    csrf, version = csrf_of(review.text), VERSION.search(review.text).group(1)
    before = counts(engine)
    no_reason = client.post(f"/inspection/{task}/events/return_task", data={"csrf": csrf, "version": version})
    assert no_reason.status_code == 422 and 'role="alert"' in no_reason.text
    assert counts(engine) == before
    back = client.post(f"/inspection/{task}/events/return_task",
                       data={"csrf": csrf, "version": version, "comment": "T05 未拍照，请补查"})
    assert back.status_code == 303 and task_row(engine, task)["state"] == "in_progress"
    assert "T05 未拍照，请补查" in client.get(f"/inspection/{task}").text
    client.cookies.clear()
    signed_in(client, engine, "sun.banzhang")
    again = client.get(f"/inspection/{task}").text
    assert "已填 12 / 12 项" in again  # the drafts are kept for the second round
    assert submit(client, task, again).status_code == 303
    client.cookies.clear()
    signed_in(client, engine, "li.anquan")
    review = client.get(f"/inspection/{task}").text
    done = client.post(f"/inspection/{task}/events/review",
                       data={"csrf": csrf_of(review), "version": VERSION.search(review).group(1)})
    assert done.status_code == 303 and task_row(engine, task)["state"] == "reviewed"
    assert trail(engine, task) == ["start", "submit", "return_task", "submit", "review"]
    assert "已审核" in client.get(f"/inspection/{task}").text


@pytest.mark.parametrize("upload", [("photo.jpg", EXE, "image/jpeg"), ("记录.png", GBK_TEXT, "image/png"),
                                    ("scan.png", PDF, "image/png")], ids=["exe", "gbk-text", "pdf"])
def test_a_bad_photo_is_refused_and_nothing_written(client: TestClient, engine: Engine, app: FastAPI,
                                                    task: str, upload: tuple[str, bytes, str]) -> None:
    signed_in(client, engine, "sun.banzhang")
    csrf = csrf_of(client.get(f"/inspection/{task}").text)
    before = counts(engine)
    answer = save(client, csrf, task, "T03", "fail", "防护罩缺失", upload)
    assert answer.status_code == 415 and "文件类型不被接受" in answer.text and "JPEG、PNG" in answer.text
    assert counts(engine) == before and stored_files(app) == []
    assert task_row(engine, task)["state"] == "scheduled"  # not even started
    assert "防护罩缺失" in answer.text  # what was typed is kept


def test_csrf_missing_is_refused(client: TestClient, engine: Engine, task: str) -> None:
    signed_in(client, engine, "sun.banzhang")
    before = counts(engine)
    answer = client.post("/inspection/item", data={"task": task, "item": "T01", "outcome": "pass"})
    assert answer.status_code == 403 and CSRF_REFUSED in answer.text
    answer = client.post(f"/inspection/{task}/submit", data={"version": "1"})
    assert answer.status_code == 403 and CSRF_REFUSED in answer.text
    assert counts(engine) == before


def test_an_oversized_note_is_refused_with_a_clear_message(client: TestClient, engine: Engine,
                                                           task: str) -> None:
    signed_in(client, engine, "sun.banzhang")
    csrf = csrf_of(client.get(f"/inspection/{task}").text)
    before = counts(engine)
    answer = save(client, csrf, task, "T01", "fail", "漏" * 100_000)
    assert answer.status_code == 422 and "说明过长：最多 2000 字，现为 100000 字" in answer.text
    assert counts(engine) == before
    unknown = save(client, csrf, task, "T99", "pass")
    assert unknown.status_code == 422 and "检查表中没有项目「T99」" in unknown.text
    odd = save(client, csrf, task, "T01", "maybe")
    assert odd.status_code == 422 and "请选择检查结论" in odd.text
    assert counts(engine) == before


def test_markup_in_a_note_is_stored_and_shown_as_text(client: TestClient, engine: Engine, task: str) -> None:
    signed_in(client, engine, "sun.banzhang")
    markup = '<script>alert(1)</script><img src=x onerror="alert(2)">'
    page = fill_all(client, task, {"T02": markup})
    assert markup not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    with engine.connect() as conn:
        draft = select(INSPECTION_DRAFT.c.note).where(INSPECTION_DRAFT.c.item == "T02")
        stored = conn.execute(draft).scalar()
    assert stored == markup
    assert submit(client, task, page).status_code == 303
    with engine.connect() as conn:
        description = conn.execute(select(HAZARD.c.description)).scalar()
        hazards = conn.execute(select(func.count()).select_from(HAZARD)).scalar()
    assert description == markup and hazards == 1
    shown = client.get(f"/inspection/{task}").text
    assert markup not in shown and "&lt;img src=x" in shown
