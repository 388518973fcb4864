"""What a template sees, and rendering it.

A message's context joins the outbox payload (written by ``states/`` with the labels it needs:
``entity_label``, ``state_label``, ``event_label``, ``level_label``), the audit row's facts (who,
comment, data), the entity's current row (unit, deadline, grade) and the directory's names. Only
``models/`` is read here, never a workflow: a payload written before it carried its labels still
renders, with the templates' own wording where a label is missing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from models.db import as_utc
from models.enums import HazardGrade
from models.tables import ENTITY_TABLES
from notifications import channels, store
from notifications.config import Clock, DispatchConfig
from notifications.messages import Message, payload_of
from notifications.recipients import Directory, PersonInfo
from notifications.templates import Rendered, TemplateSet, base_context, local_time, plain

Entities = dict[tuple[str, int], dict[str, Any]]


def load_entities(conn: Connection, rows: Sequence[dict[str, Any]]) -> Entities:
    """The current row of each workflow entity the outbox rows are about, by (type, id)."""
    wanted: dict[str, list[int]] = {}
    for r in rows:
        if r["entity_type"] in ENTITY_TABLES:
            wanted.setdefault(r["entity_type"], []).append(r["entity_id"])
    found: Entities = {}
    for kind, ids in wanted.items():
        for eid, row in store.rows_by_id(conn, ENTITY_TABLES[kind], ids).items():
            found[(kind, eid)] = row
    return found


class Renderer:
    """Builds each row's context and renders a message (a digest trimmed to the IM size limit)."""

    def __init__(self, templates: TemplateSet, config: DispatchConfig) -> None:
        self.templates = templates
        self.zone_name = config.zone
        self.zone = ZoneInfo(config.zone)
        self.digest_items = config.digest_items

    def context(self, row: dict[str, Any], directory: Directory, facts: dict[int, dict[str, Any]],
                entities: Entities, clock: Clock) -> dict[str, Any]:
        payload = payload_of(row)
        fact = facts.get(row["audit_seq"])
        if fact is not None and (fact["entity_type"], fact["entity_id"], fact["event"]) != (
                row["entity_type"], row["entity_id"], row["event"]):
            fact = None  # e.g. a checkpoint points at the chain's head, not at its own event
        entity = entities.get((row["entity_type"], row["entity_id"]), {})
        is_entity = row["entity_type"] in ENTITY_TABLES
        data = dict(fact["data"]) if fact else {}
        actor = payload.get("actor") or (fact["actor"] if fact else None)
        person = directory.by_key.get(actor) if actor else None
        unit = directory.units.get(entity.get("unit_id")) if entity.get("unit_id") else None
        deadline = payload.get("deadline") or entity.get("deadline")
        if deadline is None and entity.get("period_end") is not None:
            deadline = as_utc(entity["period_end"]) - timedelta(seconds=1)  # type: ignore[operator]
        level = data.get("level") if row["event"] == "escalate" else None
        grade = entity.get("grade")
        context = {k: v for k, v in payload.items() if k not in ("deadline",)}
        context.update(
            entity_type=row["entity_type"],
            # None in rows queued before payloads carried labels: templates show their own
            # zh-CN wording for a missing label (「通知」「事项」「—」), not an English type name.
            entity_label=payload.get("entity_label"),
            actor=actor,
            actor_name=person.name if person else ("系统" if actor in (None, "system") else actor),
            deadline=local_time(deadline, self.zone_name) or None,
            comment=fact["comment"] if fact else None, data=data, level=level,
            level_label=payload.get("level_label") if level else None,
            grade=grade, grade_label=_grade_label(grade),
            unit=unit.key if unit else None, unit_name=unit.name if unit else None,
            enterprise_name=directory.enterprise_names.get(entity.get("enterprise_id")),  # type: ignore[arg-type]
            now=local_time(clock.now(), self.zone_name), outbox_id=row["id"],
            payload=payload,
        )
        if is_entity:  # the engine always wrote these two; other writers may not
            context.setdefault("state_label", payload.get("state"))
            context.setdefault("event_label", row["event"])
        return context

    def render(self, message: Message, directory: Directory, people: list[PersonInfo],
               facts: dict[int, dict[str, Any]], entities: Entities, clock: Clock) -> Rendered:
        single = people[0] if len(people) == 1 else None
        who = {"recipient": {"key": single.key, "name": single.name}} if single else {}
        if single:
            who["as_"] = single.key  # type: ignore[assignment]
        contexts = [self.context(r, directory, facts, entities, clock) for r in message.rows]
        if len(message.rows) == 1 and not message.key.startswith("digest:"):
            return self.safe_render(message.template, base_context(**{**contexts[0], **who}))
        items = [{"code": c.get("code"), "title": c.get("title"), "deadline": c.get("deadline"),
                  "state_label": c.get("state_label")} for c in contexts]
        day = as_utc(message.lead["created_at"]).astimezone(self.zone).date().isoformat()  # type: ignore[union-attr]
        shown = min(len(items), self.digest_items)
        while True:
            context = base_context(**{
                "items": items[:shown], "count": len(items), "more": len(items) - shown,
                "day": day, "now": local_time(clock.now(), self.zone_name), **who})
            rendered = self.safe_render(message.template, context)
            size = len(f"{rendered.title}\n{plain(rendered.body)}".encode())
            if size <= channels.IM_LIMIT_BYTES or shown <= 1:
                return rendered
            shown -= 1

    def safe_render(self, name: str, context: dict[str, Any]) -> Rendered:
        """A template that fails at run time falls back to the generic one: send, don't drop."""
        try:
            return self.templates.render(name, context)
        except Exception:
            return self.templates.render("default", context)


def _grade_label(grade: Any) -> str | None:
    try:
        return HazardGrade(grade).label if grade else None
    except ValueError:
        return None
