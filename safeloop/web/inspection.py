"""Inspection on a phone: 今日排查 (``/inspection/today``), a task's checklist filled item by item
as drafts and submitted once, the results with the hazards failed items opened, and the review.

A task's code is ``<plan>/<period>``, so its pages live at ``/inspection/<plan>/<period>``.
Every state change goes through the engine: the first saved item fires ``start`` (when the task
is still scheduled), the submit button fires ``submit`` with the drafts as its results, review /
return go through ``fire``. Drafts themselves are no business state (``safeloop.web.drafts``).
Photos take the same path as on /hazard/new (``receive``: size cap, type by content, images
only), posted to the fixed address ``/inspection/item`` so the app caps that body as an upload.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from pydantic import ValidationError
from sqlalchemy import select
from starlette.responses import Response

from core.errors import InvalidInput, NotFound, PermissionDenied, SafeloopError
from models.db import as_utc, utcnow
from models.tables import CHECKLIST_ITEM as ITEM
from models.tables import HAZARD, INSPECTION_PLAN, INSPECTION_TASK, PERSON, UNIT
from safeloop.api import queries
from safeloop.api.errors import kind_of, validation_fields
from safeloop.api.routes.bodies import body_model, split
from safeloop.api.routes.evidence import receive
from safeloop.api.routes.workflows import READ_ONLY
from safeloop.web import drafts, forms, views
from safeloop.web.pages import Visit, see_other
from safeloop.web.photos import IMAGES, PHOTO_KINDS, image_response
from states import engine
from states.actors import Lookups
from states.registry import WORKFLOWS
from states.workflow import EventRule

INSPECTION = WORKFLOWS["inspection"]
OWN_EVENTS = frozenset({"start", "submit"})  # fired by saving and submitting the checklist


def _code(visit: Visit) -> str:
    return f"{visit.params['plan']}/{visit.params['period']}"


def _path(code: str) -> str:
    return "/inspection/" + quote(code, safe="/")


def _task(visit: Visit, code: str) -> dict[str, Any]:
    """The task if this person sees it; else NotFound (404, as for a code that does not exist)."""
    return queries.entity(visit.session.connection(), INSPECTION, code, visit.scope.where(INSPECTION))


def _items(visit: Visit, template_id: int) -> list[dict[str, Any]]:
    rows = visit.session.connection().execute(
        select(ITEM.c.code, ITEM.c.text, ITEM.c.basis, ITEM.c.grade_if_failed)
        .where(ITEM.c.template_id == template_id).order_by(ITEM.c.position)).mappings()
    return [dict(r) for r in rows]


def _allowed(visit: Visit, row: dict[str, Any]) -> list[EventRule]:
    if visit.scope.read_only:
        return []
    return engine.allowed_events(visit.session, INSPECTION, row["id"], visit.principal.person_key)


def _write_refusal(visit: Visit, row: dict[str, Any], allowed: list[EventRule]) -> str | None:
    if visit.scope.read_only:
        return READ_ONLY
    return drafts.refusal(row, visit.principal.person_id, allowed, INSPECTION.state_label(row["state"]))


def _hazards(visit: Visit, task_id: int) -> dict[str, str]:
    """The hazard each failed item opened, by item code (the latest, after a return and resubmit)."""
    rows = visit.session.connection().execute(
        select(HAZARD.c.checklist_item, HAZARD.c.code).where(HAZARD.c.inspection_task_id == task_id)
        .order_by(HAZARD.c.id))
    return {item: code for item, code in rows if item}


def _submitted_photos(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each item's photos as the last ``submit`` event carried them (the task row keeps none)."""
    last = next((e for e in reversed(events) if e["event"] == "submit"), None)
    data = last.get("data") if last else None
    results = data.get("results", []) if isinstance(data, dict) else []
    return {r["item"]: list(r.get("evidence") or []) for r in results if isinstance(r, dict)}


def _task_page(visit: Visit, code: str, *, status: int = 200, refusal: str | None = None,
               stale: bool = False, refused_item: str | None = None,
               posted: dict[str, str] | None = None) -> Response:
    row = _task(visit, code)
    allowed = _allowed(visit, row)  # ends the read transaction: the connection is taken after it
    conn = visit.session.connection()
    zone = visit.settings.timezone
    items = _items(visit, row["template_id"])
    writable = _write_refusal(visit, row, allowed) is None
    saved = drafts.load(visit.session.connection(), row["id"]) if writable else {}
    events = queries.timeline(conn, INSPECTION, row["id"])
    results = {r["item"]: r for r in (row.get("results") or []) if isinstance(r, dict)}
    photos = _submitted_photos(events)
    hazards = _hazards(visit, row["id"]) if results else {}
    people = views.names(conn, PERSON, [row.get("assignee_id"), row.get("inspector_id"),
                                        row.get("reviewer_id")])
    plan = conn.execute(select(INSPECTION_PLAN.c.name).where(INSPECTION_PLAN.c.id == row["plan_id"])).scalar()
    unit = conn.execute(select(UNIT.c.name).where(UNIT.c.id == row["unit_id"])).scalar()
    left, overdue = views.time_left(row["period_end"], utcnow(), zone) if row["state"] in drafts.OPEN_STATES \
        else ("", False)
    item_refusal = None
    if refused_item is not None and writable and any(i["code"] == refused_item for i in items):
        item_refusal, refusal = refusal, None  # shown at the item it is about
    actions = [{"rule": r, "fields": forms.fields_of(body_model(INSPECTION, r))}
               for r in allowed if r.name not in OWN_EVENTS]
    return visit.page(
        "inspection_task.html", status, row=row, code=code, path=_path(code), plan=plan or "",
        unit=unit or "", state_label=INSPECTION.state_label(row["state"]), items=items,
        writable=writable, drafts=saved, filled=sum(1 for i in items if i["code"] in saved),
        results=results, photos=photos, hazards=hazards, people=people, outcomes=drafts.OUTCOMES,
        due_text=views.local(row["period_end"], zone), left=left, overdue=overdue,
        may_submit=writable and any(r.name == "submit" for r in allowed), actions=actions,
        timeline=views.timeline_rows(conn, events, zone), refusal=refusal, stale=stale,
        refused_item=refused_item, item_refusal=item_refusal, posted=posted or {},
        note_max=drafts.NOTE_MAX)


# ---- pages ------------------------------------------------------------------------------------


def show(visit: Visit) -> Response:
    return _task_page(visit, _code(visit))


def today(visit: Visit) -> Response:
    """This person's open tasks (overdue, due today, later in the period) and those to review."""
    groups: dict[str, list[dict[str, Any]]] = {"late": [], "today": [], "open": [], "review": []}
    if not visit.scope.read_only:
        conn = visit.session.connection()
        now = utcnow()
        actor = Lookups(conn).actor(visit.principal.person_key)
        found, _ = queries.inbox(conn, [INSPECTION], actor, visit.scope, now, visit.settings.api_page_size)
        for task in _today_rows(visit, [int(i["id"]) for i in found]):
            groups[_group(task, now, visit.settings.timezone)].append(task)
    return visit.page("inspection_today.html", groups=groups, read_only=visit.scope.read_only,
                      total=sum(len(g) for g in groups.values()))


def _today_rows(visit: Visit, ids: list[int]) -> list[dict[str, Any]]:
    if not ids:
        return []
    task = INSPECTION_TASK
    conn = visit.session.connection()
    rows = conn.execute(
        select(task.c.id, task.c.code, task.c.state, task.c.period_start, task.c.period_end,
               task.c.assignee_id, task.c.inspector_id, INSPECTION_PLAN.c.name.label("plan"),
               UNIT.c.name.label("unit"))
        .join(INSPECTION_PLAN, INSPECTION_PLAN.c.id == task.c.plan_id)
        .join(UNIT, UNIT.c.id == task.c.unit_id)
        .where(task.c.id.in_(ids)).order_by(task.c.period_end, task.c.id)).mappings()
    shown = [dict(r) for r in rows]
    people = views.names(conn, PERSON, [t["assignee_id"] for t in shown])
    zone = visit.settings.timezone
    me = visit.principal.person_id
    out = []
    for t in shown:
        if t["state"] in drafts.OPEN_STATES and me not in (t["assignee_id"], t["inspector_id"]) and (
                t["inspector_id"] is not None or t["assignee_id"] is not None):
            continue  # someone else's task: the engine would refuse this person anyway
        left, late = views.time_left(t["period_end"], utcnow(), zone)
        out.append({**t, "path": _path(t["code"]), "state_label": INSPECTION.state_label(t["state"]),
                    "due_text": views.local(t["period_end"], zone), "left": left, "late": late,
                    "assignee": people.get(t["assignee_id"], "")})
    return out


def _group(task: dict[str, Any], now: datetime, zone: str) -> str:
    if task["state"] == "submitted":
        return "review"
    end = as_utc(task["period_end"])
    if end is not None and end < now:
        return "late"
    here = ZoneInfo(zone)
    last_day = (end - timedelta(microseconds=1)).astimezone(here).date() if end is not None else None
    if last_day is not None and last_day <= now.astimezone(here).date():
        return "today"
    return "open"


# ---- a draft item -----------------------------------------------------------------------------


def save_item(visit: Visit) -> Response:
    """Save one item's answer (and photo) as a draft; fire ``start`` first if the task is still
    scheduled. A refused save writes nothing: no draft, no event, no photo."""
    form = visit.form or {}
    code, item = form.get("task", "")[:200], form.get("item", "")[:64]
    outcome, note = form.get("outcome", ""), form.get("note", "").strip()
    posted = {"outcome": outcome, "note": note[: drafts.NOTE_MAX]}
    row = _task(visit, code)  # out of scope: 404 before anything is read from the form
    try:
        refusal = _write_refusal(visit, row, _allowed(visit, row))
        if refusal is not None:
            raise PermissionDenied(refusal)
        drafts.check({i["code"]: i for i in _items(visit, row["template_id"])}, item, outcome, note)
        # The photo's row commits with ``start`` (the engine commits), the draft after it: a
        # refused photo or start writes nothing; a start that stands without its draft is
        # still what happened (the inspector began).
        visit.session.rollback()
        ref = None
        photo = visit.files.get("photo")
        if photo is not None and (photo.filename or photo.size):
            ref = receive(visit.session, visit.settings.storage_dir, photo.file, photo.filename,
                          visit.settings.api_max_upload_bytes, kinds=IMAGES, accepted=PHOTO_KINDS)
        if row["state"] == "scheduled":
            engine.fire(visit.session, INSPECTION, row["id"], "start", actor=visit.principal.person_key,
                        expected_version=int(row["version"]))
        drafts.save(visit.session, row["id"], item, outcome, note, ref, visit.principal.person_id)
        visit.session.commit()
    except SafeloopError as exc:
        visit.session.rollback()  # also removes a photo file this save added to the store
        kind, status = kind_of(exc)
        if _htmx(visit):
            return _item_fragment(visit, code, item, status, refusal=exc.message, posted=posted)
        return _task_page(visit, code, status=status, refusal=exc.message, stale=kind == "conflict",
                          refused_item=item, posted=posted)
    if _htmx(visit):
        return _item_fragment(visit, code, item, saved_now=True)
    return see_other(f"{_path(code)}#item-{quote(item)}")


def _htmx(visit: Visit) -> bool:
    return visit.request.headers.get("HX-Request") == "true"


def _item_fragment(visit: Visit, code: str, item: str, status: int = 200, *, refusal: str | None = None,
                   posted: dict[str, str] | None = None, saved_now: bool = False) -> Response:
    """One item's block of the checklist, for htmx to swap in place; after a save also the
    page's progress, state and submit form's version (out of band), which the save changed."""
    row = _task(visit, code)
    may_submit = saved_now and any(r.name == "submit" for r in _allowed(visit, row))
    items = {i["code"]: i for i in _items(visit, row["template_id"])}
    if item not in items:
        return visit.page("error.html", status, title="无法保存", message=refusal or "检查项不存在")
    saved = drafts.load(visit.session.connection(), row["id"])
    return visit.page("inspection_saved.html", status, row=row, code=code, path=_path(code),
                      i=items[item], d=saved.get(item), outcomes=drafts.OUTCOMES, refusal=refusal,
                      posted=posted or {}, saved_now=saved_now, note_max=drafts.NOTE_MAX,
                      may_submit=may_submit, filled=sum(1 for c in items if c in saved), total=len(items),
                      state_label=INSPECTION.state_label(row["state"]))


# ---- submit, review, return ------------------------------------------------------------------


def _version(form: dict[str, str]) -> int:
    version = form.get("version", "")
    if not version.isdigit() or len(version) > 12:
        raise InvalidInput("页面缺少版本号，请重新加载后再操作", field="version")
    return int(version)


def submit(visit: Visit) -> Response:
    """Submit the drafts once, through the engine's ``submit`` (its guards check the checklist is
    complete and failed items explained; a second submit is refused by its state machine)."""
    code = _code(visit)
    row = _task(visit, code)
    try:
        if visit.scope.read_only:
            raise PermissionDenied(READ_ONLY)
        version = _version(visit.form or {})
        items = [i["code"] for i in _items(visit, row["template_id"])]
        saved = drafts.load(visit.session.connection(), row["id"])
        results = drafts.results(items, saved)
        if not results and row["state"] in drafts.OPEN_STATES:
            raise InvalidInput(f"检查表还有 {len(items)} 项未填写，请逐项填写并保存后再提交")
        visit.session.rollback()
        engine.fire(visit.session, INSPECTION, row["id"], "submit", actor=visit.principal.person_key,
                    data={"results": results}, expected_version=version)
    except SafeloopError as exc:
        visit.session.rollback()
        kind, status = kind_of(exc)
        return _task_page(visit, code, status=status, refusal=exc.message, stale=kind == "conflict")
    return see_other(_path(code))


def fire(visit: Visit) -> Response:
    """Review, return (with a reason) or cancel the task: the entity page's form, for a code
    with a slash."""
    code, name = _code(visit), visit.params["event"]
    form = visit.form or {}
    row = _task(visit, code)
    rule = INSPECTION.events.get(name)
    if rule is None or name in OWN_EVENTS:
        raise NotFound(f"{INSPECTION.label}没有操作「{name[:40]}」")
    try:
        if visit.scope.read_only:
            raise PermissionDenied(READ_ONLY)
        version = _version(form)
        model = body_model(INSPECTION, rule)
        try:
            body = model.model_validate(forms.values_from(model, form, visit.settings.timezone))
        except ValidationError as exc:
            raise InvalidInput(validation_fields(exc.errors())[0]) from exc
        data, comment, role = split(body)
        visit.session.rollback()
        engine.fire(visit.session, INSPECTION, row["id"], rule.name, actor=visit.principal.person_key,
                    role=role, comment=comment, data=data, expected_version=version)
    except SafeloopError as exc:
        visit.session.rollback()
        kind, status = kind_of(exc)
        return _task_page(visit, code, status=status, refusal=exc.message, stale=kind == "conflict")
    return see_other(_path(code))


# ---- photos -----------------------------------------------------------------------------------


def photo(visit: Visit) -> Response:
    """A photo of this task (a draft's or one its trail carries), for a person who sees the task."""
    code, sha = _code(visit), visit.params["sha"]
    row = _task(visit, code)
    conn = visit.session.connection()
    known = {e["sha256"] for d in drafts.load(conn, row["id"]).values() for e in d["evidence"]}
    known |= {e["sha256"] for e in queries.evidence_refs(queries.timeline(conn, INSPECTION, row["id"]))}
    return image_response(conn, visit.settings.storage_dir, sha, known)


def mount(app: Any, page: Callable[..., Any]) -> None:
    """Before the generic entity pages: ``/inspection/today`` is no task's code."""
    add = app.router.add_route
    add("/inspection/today", page(today), methods=["GET"], include_in_schema=False)
    add("/inspection/item", page(save_item, uploads=True), methods=["POST"], include_in_schema=False)
    add("/inspection/{plan}/{period}", page(show), methods=["GET"], include_in_schema=False)
    add("/inspection/{plan}/{period}/submit", page(submit), methods=["POST"], include_in_schema=False)
    add("/inspection/{plan}/{period}/events/{event}", page(fire), methods=["POST"], include_in_schema=False)
    add("/inspection/{plan}/{period}/photos/{sha}", page(photo), methods=["GET"], include_in_schema=False)

