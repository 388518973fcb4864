"""A checklist's answers kept item by item while the inspector fills it in (``inspection_draft``).

Drafts are no business state: the engine never reads them and the trail does not record them
(the ``submit`` event carries the results). So this module writes them directly, but only after
the page has checked who may write (``refusal``) and what is written (``check``): one row per
task and item, a bounded note, at most one photo reference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from core.errors import InvalidInput
from models.db import is_sqlite, utcnow
from models.tables import INSPECTION_DRAFT as DRAFT
from states.workflow import EventRule

OUTCOMES = {"pass": "合格", "fail": "不合格", "na": "不适用"}
NOTE_MAX = 2000  # characters: a phone's note, not a report; the column holds no more
OPEN_STATES = ("scheduled", "in_progress")


def load(conn: Connection, task_id: int) -> dict[str, dict[str, Any]]:
    """The task's drafts by item code."""
    rows = conn.execute(select(DRAFT.c.item, DRAFT.c.outcome, DRAFT.c.note, DRAFT.c.evidence,
                               DRAFT.c.updated_at).where(DRAFT.c.task_id == task_id)).mappings()
    return {r["item"]: {**r, "evidence": list(r["evidence"] or [])} for r in rows}


def refusal(row: Mapping[str, Any], person_id: int, allowed: Sequence[EventRule],
            state_label: str) -> str | None:
    """Why this person may not write the task's drafts, or None: the task is open, they are its
    inspector (once started) or assignee (when it names one), and their roles may submit it."""
    if row["state"] not in OPEN_STATES:
        return f"任务当前状态为「{state_label}」，检查表不能再修改"
    if row["inspector_id"] is not None and row["inspector_id"] != person_id:
        return "只有开始检查的检查人可以填写此任务的检查表"
    if row["inspector_id"] is None and row["assignee_id"] is not None and row["assignee_id"] != person_id:
        return "该任务已指定检查人，其他人不能代为填写"
    if not any(rule.name == "submit" for rule in allowed):
        return "您在此任务的单位没有检查的角色，不能填写检查表"
    return None


def check(items: Mapping[str, Any], item: str, outcome: str, note: str) -> None:
    """The posted answer is for an item of the checklist, with a known outcome and a bounded note."""
    if item not in items:
        raise InvalidInput(f"检查表中没有项目「{item[:64]}」", field="item")
    if outcome not in OUTCOMES:
        raise InvalidInput("请选择检查结论：合格、不合格或不适用", field="outcome")
    if len(note) > NOTE_MAX:
        raise InvalidInput(f"说明过长：最多 {NOTE_MAX} 字，现为 {len(note)} 字；请精简后再保存，"
                           "详细情况可拍照附上", field="note")


def save(session: Session, task_id: int, item: str, outcome: str, note: str,
         photo: Mapping[str, Any] | None, person_id: int) -> None:
    """Write one item's draft (insert or overwrite) in the caller's transaction; a save without
    a new photo keeps the photo saved before."""
    values: dict[str, Any] = {"task_id": task_id, "item": item, "outcome": outcome, "note": note,
                              "person_id": person_id, "updated_at": utcnow()}
    if photo is not None:
        values["evidence"] = [{k: photo[k] for k in ("sha256", "name", "size", "path")}]
    dialect = sqlite if is_sqlite(str(session.get_bind().url)) else postgresql
    stmt = dialect.insert(DRAFT).values(values)
    changed = {k: stmt.excluded[k] for k in values if k not in ("task_id", "item")}
    session.connection().execute(stmt.on_conflict_do_update(index_elements=["task_id", "item"],
                                                            set_=changed))


def results(items: Sequence[str], drafts: Mapping[str, Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The ``submit`` event's results from the drafts, in checklist order (missing items left
    out: the engine names them)."""
    return [{"item": code, "outcome": drafts[code]["outcome"], "note": drafts[code]["note"],
             "evidence": list(drafts[code]["evidence"])} for code in items if code in drafts]
