"""Dispatch the outbox: claim due rows, resolve, render, send to every channel, record, retry.

Flow of one batch:
1. claim due rows with a lease (``store.claim``), plus the rest of any digest they belong to;
2. group them into messages (``messages``): due-soon reminders of one person and one local day
   become one digest, held until the digest hour if it has not come yet;
3. resolve each message to channels (``recipients`` and the routing's levels, tags and alert
   channels), render it (``context``) and send it to each channel separately (``sending``);
4. record each channel's delivery and each message's outcome: ``sent``, a retry after a backoff,
   or ``dead`` with an alert to the auditors.
Transitions never wait for any of this: the engine only wrote the outbox rows. This module runs
the loop and joins the parts; each part is a module of its own.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection
from sqlalchemy.engine import Engine

from notifications import store
from notifications.config import Clock, DispatchConfig, DispatchReport
from notifications.context import Entities, Renderer, load_entities
from notifications.messages import Grouper, Message, digest, payload_of, single
from notifications.recipients import Directory, Resolved, resolve_all
from notifications.routing import Routing
from notifications.sending import ALERT_TEMPLATES, Sender, delivery_key, outcome, unrouted_alert
from notifications.templates import Rendered, TemplateSet

# Callers import these from here: the dispatcher's configuration, report and delivery keys.
__all__ = ["DispatchConfig", "DispatchReport", "Dispatcher", "delivery_key", "dispatcher_id",
           "from_settings"]


def dispatcher_id() -> str:
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class Dispatcher:
    """Sends what the outbox holds; several may run at once (leases keep them apart)."""

    def __init__(self, engine: Engine, routing: Routing, templates: TemplateSet,
                 config: DispatchConfig | None = None, owner: str | None = None) -> None:
        self.engine = engine
        self.routing = routing
        self.templates = templates
        self.config = config or DispatchConfig()
        self.owner = owner or dispatcher_id()
        self.zone = ZoneInfo(self.config.zone)
        self.lease = timedelta(seconds=self.config.lease_s)
        self.grouper = Grouper(routing, templates, self.config, self.owner, self.lease)
        self.renderer = Renderer(templates, self.config)
        self.sender = Sender(self.config, self.owner, self.lease)

    # ---- the loop ---------------------------------------------------------------------------

    def run(self, as_of: datetime | None = None, *, max_batches: int | None = None) -> DispatchReport:
        """Dispatch until nothing is due, the batch limit or the time budget is reached."""
        clock = Clock(as_of or datetime.now(UTC))
        report = DispatchReport()
        started = time.monotonic()
        with self.engine.connect() as conn:
            directory = Directory(conn)
            conn.rollback()
            directory.check(self.routing)
            with ThreadPoolExecutor(max_workers=self.config.concurrency,
                                    thread_name_prefix="notify") as pool:
                while max_batches is None or report.batches < max_batches:
                    budget = self.config.run_budget_s
                    if budget is not None and time.monotonic() - started > budget:
                        break
                    rows = store.claim(conn, now=clock.now(), owner=self.owner, lease=self.lease,
                                       limit=self.config.batch_size)
                    if not rows:
                        break
                    rows += self.grouper.claim_siblings(conn, rows, clock)
                    report.batches += 1
                    report.claimed += len(rows)
                    self._batch(conn, pool, directory, rows, clock, report)
        report.seconds = time.monotonic() - started
        return report

    # ---- one batch --------------------------------------------------------------------------

    def _batch(self, conn: Connection, pool: ThreadPoolExecutor, directory: Directory,
               rows: list[dict[str, Any]], clock: Clock, report: DispatchReport) -> None:
        facts = store.audit_facts(conn, [r["audit_seq"] for r in rows])
        entities = load_entities(conn, rows)
        messages, skipped = self.grouper.group(conn, rows, clock, report)
        outcomes: list[dict[str, Any]] = []
        now = clock.now()
        for row in skipped:
            outcomes.append(outcome(row, "skipped", row["attempts"], None, "路由规则已关闭该类通知",
                                    None))
        report.skipped += len(skipped)
        unrouted: list[dict[str, Any]] = []
        for message in messages:
            resolved = self._resolve(message, directory, entities)
            message.channels = list(resolved.channels.values())
            if not message.channels:
                unrouted += message.rows
                for row in message.rows:
                    outcomes.append(outcome(row, "unrouted", row["attempts"], None,
                                            f"没有可用的通知渠道（接收人 {row['recipient']}）", None))
                continue
            message.people = resolved.people
        report.unrouted += len(unrouted)
        alerts = unrouted_alert(unrouted, now)
        report.alerts += len(alerts)
        if outcomes or alerts:
            store.record(conn, [], outcomes, alerts, self.owner)
        routed = [m for m in messages if m.channels]
        report.messages += len(routed)

        def render(message: Message) -> Rendered:
            return self.renderer.render(message, directory, message.people, facts, entities,
                                        clock)

        self.sender.send(conn, pool, routed, render, clock, report)

    def _resolve(self, message: Message, directory: Directory, entities: Entities) -> Resolved:
        """The message's channels: its recipients, the rule's extras by escalation level and
        unit, the alert channels for alerts; then only channels with the rule's tags."""
        lead = message.lead
        rule = self.routing.rule(lead["template"])
        entity = entities.get((lead["entity_type"], lead["entity_id"]), {})
        unit_id = entity.get("unit_id")
        extra = list(rule.also)
        tags = set(rule.tags)
        if rule.levels:
            level = payload_of(lead).get("level") or entity.get("escalation_level")
            sub = rule.levels.get(int(level)) if level else None
            if sub is not None:
                extra += sub.also
                tags |= sub.tags
        specs = list(message.specs)
        for spec in extra:
            converted = directory.unit_spec(spec, unit_id)
            if converted and converted not in specs:
                specs.append(converted)
        resolved = resolve_all(specs, directory, self.routing)
        if lead["template"] in ALERT_TEMPLATES:
            for channel in self.routing.alerts:
                resolved.add(channel)
        if tags:
            resolved.channels = {u: c for u, c in resolved.channels.items() if c.tags & tags}
        return resolved

    def preview(self, row: dict[str, Any], as_of: datetime | None = None) -> Rendered:
        """The message a row makes (its whole digest if it is in one), rendered as now."""
        clock = Clock(as_of or datetime.now(UTC))
        with self.engine.connect() as conn:
            directory = Directory(conn)
            rows = store.digest_members(conn, row["digest_of"]) if row["digest_of"] else [row]
            conn.rollback()
            facts = store.audit_facts(conn, [r["audit_seq"] for r in rows])
            entities = load_entities(conn, rows)
        message = digest(row["digest_of"], rows) if row["digest_of"] else single(row)
        resolved = self._resolve(message, directory, entities)
        return self.renderer.render(message, directory, resolved.people, facts, entities, clock)


def from_settings(engine: Engine, settings: Any, *, owner: str | None = None) -> Dispatcher:
    """A dispatcher with the configured templates, routing and limits (files checked here)."""
    from notifications import routing as routing_mod
    from notifications import templates as templates_mod

    templates = templates_mod.load_cached(settings.notify_templates, settings.timezone)
    routing = routing_mod.load_cached(settings.notify_routing, templates.names())
    return Dispatcher(engine, routing, templates, DispatchConfig.from_settings(settings), owner)
